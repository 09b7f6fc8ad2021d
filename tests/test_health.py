"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask_migrate import upgrade

from app.extensions import db
from app.health.service import migration_heads
from tests.conftest import make_app, reset_database

FIRST_REVISION = "1e9c63baa778"


@pytest.fixture
def unmigrated_app(database_url: str) -> Iterator[Flask]:
    """An app on an empty database with no schema at all."""
    app = make_app(database_url)
    reset_database(app)
    yield app
    reset_database(app)
    with app.app_context():
        db.engine.dispose()


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
        "errors": {"database": ["has no migrations applied (run flask db upgrade)"]}
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
