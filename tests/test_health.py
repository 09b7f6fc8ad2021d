"""Liveness and readiness probes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from app import MIGRATIONS_DIRECTORY, close_app
from app.extensions import db
from app.health.service import migration_heads
from tests.apps import make_app, reset_database

FIRST_REVISION = "1e9c63baa778"


@pytest.fixture
def unmigrated_app(database_url: str) -> Iterator[Flask]:
    """An app on an empty database with no schema at all."""
    app = make_app(database_url)
    reset_database(app)
    yield app
    reset_database(app)
    close_app(app)


def test_healthz_answers_without_a_database() -> None:
    app = make_app("postgresql://postgres@127.0.0.1:1/nowhere")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    app = make_app("postgresql://postgres@127.0.0.1:1/nowhere")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"errors": {"database": ["is not reachable"]}}


def test_readyz_is_ready_at_the_migrations_head(unmigrated_app: Flask) -> None:
    with unmigrated_app.app_context():
        upgrade()
        (head,) = migration_heads()
    response = unmigrated_app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "revision": head}


def test_readyz_is_503_when_the_schema_is_behind_the_head(unmigrated_app: Flask) -> None:
    with unmigrated_app.app_context():
        upgrade(revision=FIRST_REVISION)
        (head,) = migration_heads()
    response = unmigrated_app.test_client().get("/readyz")
    assert response.status_code == 503
    (message,) = response.get_json()["errors"]["database"]
    assert f"schema is at {FIRST_REVISION}" in message
    assert f"head is {head}" in message


def test_readyz_is_503_when_no_migration_was_applied(unmigrated_app: Flask) -> None:
    response = unmigrated_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "errors": {"database": ["has no migrations applied (run flask db run)"]}
    }


def test_probes_are_documented(client) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["paths"]["/healthz"]["get"]["operationId"] == "GetHealth"
    assert spec["paths"]["/readyz"]["get"]["operationId"] == "GetReadiness"
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]
    assert {"HealthResponse", "ReadinessResponse"} <= set(spec["components"]["schemas"])


def test_an_unreachable_database_is_logged_with_the_fix(caplog) -> None:
    app = make_app("postgresql://postgres@127.0.0.1:1/nowhere")

    app.test_client().get("/readyz")

    (warning,) = [r for r in caplog.records if r.name == "app.health.service"]
    assert warning.getMessage() == (
        "Readiness: the database is not reachable: DATABASE_URL: no PostgreSQL server answers "
        "at 127.0.0.1:1: start it, or point DATABASE_URL at one"
    )


# --- a rolling release: two releases serve one schema ------------------------

CONTRACT_REVISION = '''"""drop users.bio (contract)"""

from alembic import op

revision = "c0c0c0c0c0c0"
down_revision = {head!r}
branch_labels = None
depends_on = None
phase = "contract"


def upgrade():
    op.drop_column("users", "bio")


def downgrade():
    pass
'''
LATER_RELEASE_REVISION = "0123456789ab"  # a revision this code does not know


@pytest.fixture
def release_with_contract(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    """This release ships one more revision, a contract one; the database is at its
    expand target (everything before it applied)."""
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIRECTORY, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    head = (migrations / "HEAD").read_text().strip()
    (migrations / "versions" / "c0c0c0c0c0c0_drop_bio.py").write_text(
        CONTRACT_REVISION.format(head=head)
    )
    app = make_app(database_url, MIGRATIONS_DIRECTORY=str(migrations))
    reset_database(app)
    with app.app_context():
        upgrade(revision=head)
    yield app
    reset_database(app)
    close_app(app)


def _stamp(app: Flask, revision: str) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_readyz_is_ready_with_only_contract_revisions_pending(release_with_contract) -> None:
    response = release_with_contract.test_client().get("/readyz")

    assert response.status_code == 200


def test_readyz_is_503_when_an_expand_revision_is_pending_before_a_contract_one(
    release_with_contract,
) -> None:
    _stamp(release_with_contract, FIRST_REVISION)

    response = release_with_contract.test_client().get("/readyz")

    assert response.status_code == 503
    (message,) = response.get_json()["errors"]["database"]
    assert f"schema is at {FIRST_REVISION}" in message


def test_readyz_is_ready_ahead_of_the_head_while_the_models_fit(unmigrated_app) -> None:
    with unmigrated_app.app_context():
        upgrade()
    _stamp(unmigrated_app, LATER_RELEASE_REVISION)

    response = unmigrated_app.test_client().get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "revision": LATER_RELEASE_REVISION}


def test_readyz_is_503_ahead_of_the_head_when_a_models_column_is_gone(unmigrated_app) -> None:
    with unmigrated_app.app_context():
        upgrade()
        with db.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE users RENAME COLUMN bio TO biography")
    _stamp(unmigrated_app, LATER_RELEASE_REVISION)

    response = unmigrated_app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {
        "errors": {
            "database": [
                f"schema is at {LATER_RELEASE_REVISION}: this release needs column users.bio"
            ]
        }
    }


def test_readyz_keeps_the_head_this_process_started_with_when_files_change_in_place(
    tmp_path: Path, database_url: str
) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIRECTORY, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    head = (migrations / "HEAD").read_text().strip()
    app = make_app(database_url, MIGRATIONS_DIRECTORY=str(migrations))
    reset_database(app)
    with app.app_context():
        upgrade(revision=head)
    client = app.test_client()
    assert client.get("/readyz").status_code == 200

    next_release = CONTRACT_REVISION.format(head=head).replace('"contract"', '"expand"')
    (migrations / "versions" / "c0c0c0c0c0c0_next_release.py").write_text(next_release)

    assert client.get("/readyz").status_code == 200
    reset_database(app)
    close_app(app)
