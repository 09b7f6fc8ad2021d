"""Helpers for the migration tests: ``flask db`` in-process, revisions, scratch databases, git.

The fixtures that build on these (``flask_db``, ``empty_database``, ``repo``,
``add_revision``, ``define_badges``…) live in tests/migrations/conftest.py;
tests import the helpers and types from here, never from a conftest.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from alembic.config import Config
from click.testing import Result
from flask import Flask
from sqlalchemy import Engine, Table, inspect

FlaskDb = Callable[..., Result]
"""``flask_db("status")`` runs ``flask db status`` and returns click's :class:`Result`."""

AddRevision = Callable[[str, str], Path]
"""``add_revision(name, upgrade_body)``: the path of a hand-written revision after the head."""

DefineBadges = Callable[..., Table]
"""``define_badges(*columns)``: a ``badges`` model (id plus these columns) for one test."""


def cli(app: Flask) -> FlaskDb:
    """``flask_db("status")`` runs ``flask db status`` in-process for ``app``."""

    def invoke(*args: str, **kwargs: Any) -> Result:
        return app.test_cli_runner().invoke(args=["db", *args], catch_exceptions=False, **kwargs)

    return invoke


def flask_alembic_config(app: Flask) -> Config:
    """The Alembic configuration Flask-Migrate builds for ``app``."""
    with app.app_context():
        config: Config = app.extensions["migrate"].migrate.get_config(
            app.extensions["migrate"].directory
        )
    return config


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def revision_files(migrations: Path) -> list[Path]:
    """The revision files of a migrations directory, by name."""
    return sorted((migrations / "versions").glob("*.py"))


def reset_postgres_schema(url: str) -> None:
    """Drop and recreate the ``public`` schema of the PostgreSQL database at ``url``."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
        connection.execute("CREATE SCHEMA public")


DROP_EVENT_TRIGGERS = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN SELECT evtname FROM pg_event_trigger LOOP
        EXECUTE format('DROP EVENT TRIGGER %I', name);
    END LOOP;
END
$$
"""


def drop_event_triggers(url: str) -> None:
    """Drop every event trigger of the PostgreSQL database at ``url`` (they are database-wide)."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(DROP_EVENT_TRIGGERS)


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``git -C repo …`` with a fixed identity; never raises on a non-zero exit."""
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_IDENTITY},
        check=False,
    )
