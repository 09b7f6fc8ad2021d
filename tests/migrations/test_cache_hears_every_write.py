"""Every write reaches the response cache, whoever makes it.

Writes and DDL made around the app's sessions (a data migration, ``flask db
restore``, ``flask counters recount``, a ``psql`` session) reach a caching
instance: after each, its next reads equal an uncached instance's. On
PostgreSQL the database itself notifies (revision e7f98158c3b0's triggers);
on SQLite ``PRAGMA data_version`` sees every commit.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import make_url

from app import close_app
from app.data.change_feed import CHANNEL, parse_payload
from app.db.exit_codes import ExitCode
from app.models import Base
from tests import databases
from tests.apps import make_app
from tests.databases import statements_run
from tests.factories import auth, create_article, favorite, register
from tests.listening import wait_for, wait_until_listening
from tests.migrations.flask_db import FlaskDb, cli, drop_event_triggers

DATA_REVISION = '''"""bios written by a data migration"""

from alembic import op

revision = "da7a00000001"
down_revision = {head!r}
branch_labels = None
depends_on = None
phase = "expand"


def upgrade():
    op.execute("UPDATE users SET bio = 'written by a data migration'")


def downgrade():
    pass
'''
TABLE_REVISION = '''"""badges"""

import sqlalchemy as sa
from alembic import op

revision = "bad9e0000001"
down_revision = {head!r}
branch_labels = None
depends_on = None
phase = "expand"


def upgrade():
    op.create_table("badges", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("badges")
'''

RENAME_REVISION = '''"""rename users.bio in one step (what breaks the running release)"""

from alembic import op

revision = "4e4a0e000001"
down_revision = {head!r}
branch_labels = None
depends_on = None
phase = "contract"


def upgrade():
    op.alter_column("users", "bio", new_column_name="biography")


def downgrade():
    op.alter_column("users", "biography", new_column_name="bio")
'''

# SQLite needs no triggers: PRAGMA data_version sees every commit.
postgresql_only = pytest.mark.parametrize("database_url", [databases.POSTGRESQL], indirect=True)


def add_revision(migrations: Path, name: str, template: str) -> None:
    head = (migrations / "HEAD").read_text().strip()
    (migrations / "versions" / f"{name}.py").write_text(template.format(head=head))


def outside_sql(url: str, statement: str) -> None:
    """Run ``statement`` the way ``psql`` or ``sqlite3`` would: its own connection, committed."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(str(make_url(url).database))) as connection:
            connection.execute(statement)
            connection.commit()
        return
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)


@pytest.fixture
def tooling(
    app_for: Callable[..., Flask], empty_database: str, migrations_dir: Path, tmp_path: Path
) -> FlaskDb:
    """``flask db …`` (the operator's tools) on a database migrated to the head."""
    flask_db = cli(app_for(empty_database, migrations_dir, BACKUP_DIRECTORY=tmp_path / "backups"))
    assert flask_db("run").exit_code == ExitCode.OK
    return flask_db


@pytest.fixture
def instances(tooling: FlaskDb, empty_database: str) -> Iterator[tuple[FlaskClient, FlaskClient]]:
    """A caching instance (listening) and an uncached one, on the migrated database."""
    cached, uncached = make_app(empty_database), make_app(empty_database, RESPONSE_CACHE=False)
    wait_until_listening(cached)
    yield cached.test_client(), uncached.test_client()
    close_app(cached)
    close_app(uncached)


def _answer(client: FlaskClient, url: str) -> tuple[int, bytes]:
    response = client.get(url)
    return response.status_code, response.get_data()


class Reads:
    """Hot reads of one user and their article, on a caching and an uncached instance."""

    def __init__(self, instances: tuple[FlaskClient, FlaskClient]) -> None:
        self.cached, self.uncached = instances
        jake = register(self.uncached, username="jake", email="jake@example.com")
        self.jake = jake
        self.slug = create_article(self.uncached, jake)["slug"]
        self.urls = [
            "/api/profiles/jake",
            "/api/articles",
            "/api/articles?limit=1",
            f"/api/articles/{self.slug}",
        ]

    def warm(self, *more: str) -> None:
        """Every read answered from the cache (earlier writes' notices may still arrive)."""
        for url in (*self.urls, *more):
            wait_for(lambda url=url: self.cached.get(url).headers.get("X-Cache") == "hit")

    def stale(self, *more: str) -> list[str]:
        """The reads whose cached answer differs from the uncached one."""
        return [
            url
            for url in (*self.urls, *more)
            if _answer(self.cached, url) != _answer(self.uncached, url)
        ]

    def wait_fresh(self, *more: str) -> None:
        wait_for(lambda: self.stale(*more) == [])


@pytest.fixture
def reads(instances: tuple[FlaskClient, FlaskClient]) -> Reads:
    return Reads(instances)


def test_a_psql_update_reaches_the_cache(reads: Reads, empty_database: str) -> None:
    reads.warm()

    outside_sql(empty_database, "UPDATE users SET bio = 'fixed by hand'")

    reads.wait_fresh()
    assert reads.cached.get("/api/profiles/jake").get_json()["profile"]["bio"] == "fixed by hand"


def test_a_psql_change_of_a_session_key_refuses_a_remembered_token(
    reads: Reads, empty_database: str
) -> None:
    """The token's user is remembered (app/data/known_users.py) until its row changes."""
    me = lambda: reads.cached.get("/api/user", headers=auth(reads.jake))  # noqa: E731
    assert me().status_code == 200
    with statements_run(reads.cached.application) as statements:
        assert me().status_code == 200
    assert not any("FROM users" in statement for statement in statements), statements

    outside_sql(empty_database, "UPDATE users SET session_key = 'revoked-by-hand'")

    wait_for(lambda: me().status_code == 401)


def test_a_data_migration_reaches_the_cache(
    reads: Reads, tooling: FlaskDb, migrations_dir: Path
) -> None:
    add_revision(migrations_dir, "da7a00000001_bios", DATA_REVISION)
    reads.warm()

    assert tooling("run").exit_code == ExitCode.OK

    reads.wait_fresh()
    bio = reads.cached.get("/api/profiles/jake").get_json()["profile"]["bio"]
    assert bio == "written by a data migration"


def test_a_restore_forgets_an_article_it_removes(
    reads: Reads, tooling: FlaskDb, tmp_path: Path
) -> None:
    """On PostgreSQL the event trigger does not hear a restore (its ``DROP SCHEMA``
    drops the trigger's function first): ``flask db restore`` announces itself."""
    backup = tmp_path / "before-the-article.backup"
    assert tooling("backup", "--output", str(backup)).exit_code == ExitCode.OK
    removed = create_article(reads.uncached, reads.jake)["slug"]
    reads.warm(f"/api/articles/{removed}")

    assert tooling("restore", str(backup), "--yes").exit_code == ExitCode.OK

    reads.wait_fresh(f"/api/articles/{removed}")
    assert reads.cached.get(f"/api/articles/{removed}").status_code == 404
    listed = [a["slug"] for a in reads.cached.get("/api/articles").get_json()["articles"]]
    assert listed == [reads.slug]
    reads.warm()  # the listener outlived the restore: answers are cached again


def test_a_recount_reaches_the_cache(reads: Reads, empty_database: str) -> None:
    outside_sql(empty_database, "UPDATE counters SET value = 42")
    reads.warm()
    assert reads.cached.get("/api/articles").get_json()["articlesCount"] == 42

    result = reads.uncached.application.test_cli_runner().invoke(args=["counters", "recount"])

    assert result.exit_code == 0, result.output
    reads.wait_fresh()
    assert reads.cached.get("/api/articles").get_json()["articlesCount"] == 1


def test_a_column_rename_is_never_served_from_the_cache(reads: Reads, empty_database: str) -> None:
    reads.warm()

    outside_sql(empty_database, "ALTER TABLE users RENAME COLUMN bio TO biography")
    reads.wait_fresh()
    during = reads.cached.get("/api/profiles/jake")
    outside_sql(empty_database, "ALTER TABLE users RENAME COLUMN biography TO bio")
    reads.wait_fresh()

    assert during.status_code == 503
    assert reads.cached.get("/api/profiles/jake").status_code == 200


@postgresql_only
def test_a_migration_run_announces_its_ddl_even_without_the_event_trigger(
    reads: Reads, tooling: FlaskDb, migrations_dir: Path, empty_database: str
) -> None:
    drop_event_triggers(empty_database)  # as if the migrations ran as a plain role
    add_revision(migrations_dir, "4e4a0e000001_rename_bio", RENAME_REVISION)
    reads.warm()

    assert tooling("run").exit_code == ExitCode.OK
    reads.wait_fresh()
    during = reads.cached.get("/api/profiles/jake").status_code
    assert tooling("revert").exit_code == ExitCode.OK
    reads.wait_fresh()

    assert during == 503
    assert reads.cached.get("/api/profiles/jake").status_code == 200


# --- PostgreSQL: the triggers themselves -------------------------------------


def _catalog(url: str, query: str) -> list[str]:
    with psycopg.connect(url) as connection:
        return sorted(str(row[0]) for row in connection.execute(query))


TRIGGERED_TABLES = "SELECT tgrelid::regclass FROM pg_trigger WHERE tgname = 'conduit_changes'"
EVENT_TRIGGERS = "SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'conduit%'"
FUNCTIONS = "SELECT proname FROM pg_proc WHERE proname LIKE 'conduit%'"


@postgresql_only
def test_every_application_table_notifies(tooling: FlaskDb, empty_database: str) -> None:

    assert _catalog(empty_database, TRIGGERED_TABLES) == sorted(Base.metadata.tables)
    assert _catalog(empty_database, EVENT_TRIGGERS) == [
        "conduit_changes_ddl",
        "conduit_changes_drop",
    ]


@postgresql_only
def test_a_table_created_by_a_later_revision_notifies_too(
    tooling: FlaskDb, empty_database: str, migrations_dir: Path
) -> None:
    add_revision(migrations_dir, "bad9e0000001_badges", TABLE_REVISION)

    assert tooling("run").exit_code == ExitCode.OK

    assert "badges" in _catalog(empty_database, TRIGGERED_TABLES)


@postgresql_only
def test_reverting_the_revision_removes_every_trigger_and_function(
    tooling: FlaskDb, empty_database: str
) -> None:

    assert _catalog(empty_database, FUNCTIONS) != []

    # Down to the revision before e7f98158c3b0 (later revisions revert first).
    assert tooling("downgrade", "234cf5ebce0c").exit_code == ExitCode.OK

    assert _catalog(empty_database, TRIGGERED_TABLES) == []
    assert _catalog(empty_database, EVENT_TRIGGERS) == []
    assert _catalog(empty_database, FUNCTIONS) == []


@pytest.fixture
def owned_by_a_plain_role(postgres_url: str, worker_id: str) -> Iterator[str]:
    """A database owned by a role that is not a superuser (it may create its tables)."""
    name = f"conduit_plain_{worker_id}"
    admin = make_url(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"DROP ROLE IF EXISTS {name}")
        connection.execute(f"CREATE ROLE {name} LOGIN")
        connection.execute(f"CREATE DATABASE {name} OWNER {name}")
    yield admin.set(username=name, database=name).render_as_string(hide_password=False)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"DROP ROLE IF EXISTS {name}")


def test_without_a_superuser_the_event_trigger_is_skipped_with_a_warning(
    owned_by_a_plain_role: str,
    app_for: Callable[..., Flask],
    migrations_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flask_db = cli(app_for(owned_by_a_plain_role, migrations_dir))

    with caplog.at_level(logging.WARNING, logger="app.db.change_triggers"):
        assert flask_db("run").exit_code == ExitCode.OK

    assert _catalog(owned_by_a_plain_role, TRIGGERED_TABLES) == sorted(Base.metadata.tables)
    assert _catalog(owned_by_a_plain_role, EVENT_TRIGGERS) == []
    assert any("needs a superuser" in record.getMessage() for record in caplog.records)


@pytest.fixture
def listening(empty_database: str) -> Iterator[Callable[[], list[str]]]:
    """``heard()``: the payloads on the change feed's channel since the fixture began listening."""
    with psycopg.connect(empty_database, autocommit=True) as connection:
        connection.execute(f"LISTEN {CHANNEL}")
        payloads: list[str] = []

        def heard() -> list[str]:
            # Quiet for half a second: every notification of the writes before is in.
            while batch := list(connection.notifies(timeout=0.5)):
                payloads.extend(notification.payload for notification in batch)
            return payloads

        yield heard


@postgresql_only
def test_an_app_write_sends_one_notification_and_the_triggers_none(
    reads: Reads, listening: Callable[[], list[str]]
) -> None:
    """A favorite writes a row and reads others in one transaction: the app sends its keys."""
    listening()

    favorite(reads.cached, reads.jake, reads.slug)

    (payload,) = listening()
    _origin, keys, tables = parse_payload(payload)
    assert "favorites:1" in keys
    assert tables == []


@postgresql_only
def test_a_write_on_another_connection_still_notifies_through_the_triggers(
    reads: Reads, listening: Callable[[], list[str]], empty_database: str
) -> None:
    listening()

    outside_sql(empty_database, "UPDATE users SET bio = 'fixed by hand'")

    assert listening() == ["users"]
