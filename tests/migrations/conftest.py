"""Fixtures for the migration tests: a scratch copy of migrations/, an empty database, a CLI.

The helpers they use, and that tests import, are in tests/migrations/flask_db.py.

Every test gets its own copy of the migrations directory (nothing is ever
written into the real one) and an empty database: a fresh SQLite file, or the
session's PostgreSQL database with its ``public`` schema reset.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_alembic
from flask import Flask
from sqlalchemy import Column, Engine, Integer, Table, create_engine

from app import MIGRATIONS_DIRECTORY, close_app
from app.config import normalize_database_url
from app.db.history import read_head_file
from app.db.released import RELEASED_FILE_NAME
from app.extensions import db
from tests.apps import make_app
from tests.migrations.flask_db import (
    AddRevision,
    DefineBadges,
    FlaskDb,
    cli,
    drop_event_triggers,
    flask_alembic_config,
    git,
    reset_postgres_schema,
)


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """The URL of an empty database (SQLite file or PostgreSQL, per parametrization).

    PostgreSQL: its event triggers are dropped afterwards, since they are
    database-wide and would notify later tests' listeners of their DDL.
    """
    if database_url.startswith("postgresql"):
        reset_postgres_schema(database_url)
    yield database_url
    if database_url.startswith("postgresql"):
        drop_event_triggers(database_url)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> str:
    """An empty SQLite database, for behaviour that does not depend on the backend."""
    return f"sqlite:///{tmp_path / 'conduit.db'}"


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    """A scratch copy of the project's migrations directory, without ``RELEASED``.

    Its commit is not in the scratch repositories the tests make; a test of the
    previous-release gate writes the ``RELEASED`` it needs.
    """
    target = tmp_path / "migrations"
    shutil.copytree(
        MIGRATIONS_DIRECTORY,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", RELEASED_FILE_NAME),
    )
    return target


@pytest.fixture
def app_for() -> Iterator[Callable[..., Flask]]:
    """``app_for(url, migrations_dir, **overrides)``: an app on that database and directory."""
    made: list[Flask] = []

    def build(url: str, migrations: Path, **overrides: Any) -> Flask:
        app = make_app(url, MIGRATIONS_DIRECTORY=str(migrations), **overrides)
        made.append(app)
        return app

    yield build
    for app in made:
        close_app(app)


@pytest.fixture
def flask_db(app_for: Callable[..., Flask], empty_database: str, migrations_dir: Path) -> FlaskDb:
    """``flask db …`` on an empty database (both backends) and a scratch migrations copy."""
    return cli(app_for(empty_database, migrations_dir))


@pytest.fixture
def sqlite_flask_db(
    app_for: Callable[..., Flask], sqlite_database: str, migrations_dir: Path
) -> FlaskDb:
    """``flask db …`` on an empty SQLite database and a scratch migrations copy."""
    return cli(app_for(sqlite_database, migrations_dir))


@pytest.fixture
def engine_for() -> Iterator[Callable[[str], Engine]]:
    engines: list[Engine] = []

    def build(url: str) -> Engine:
        engine = create_engine(normalize_database_url(url))
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.dispose()


@pytest.fixture
def migration_app(app_for: Callable[..., Flask], empty_database: str) -> Flask:
    """The app on the empty database, with the project's real migrations/."""
    return app_for(empty_database, Path(MIGRATIONS_DIRECTORY))


@pytest.fixture
def alembic_engine(empty_database: str, engine_for: Callable[[str], Engine]) -> Engine:
    """pytest-alembic's engine: the empty database's."""
    return engine_for(empty_database)


@pytest.fixture
def alembic_config(migration_app: Flask) -> Iterator[pytest_alembic.Config]:
    """pytest-alembic's configuration: the real migrations, read through the app (Flask-Migrate)."""
    with migration_app.app_context():  # env.py reads the app
        yield pytest_alembic.Config(alembic_config=flask_alembic_config(migration_app))


@pytest.fixture
def alembic_runner(
    alembic_config: pytest_alembic.Config, alembic_engine: Engine
) -> Iterator[pytest_alembic.MigrationContext]:
    """pytest-alembic's runner (its plugin is disabled: see pyproject.toml)."""
    with pytest_alembic.runner(config=alembic_config, engine=alembic_engine) as runner:
        yield runner


@pytest.fixture
def repo(tmp_path: Path, migrations_dir: Path) -> Path:
    """A git repository whose main branch holds a copy of migrations/."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.move(migrations_dir, root / "migrations")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "migrations")
    git(root, "commit", "--quiet", "-m", "migrations")
    return root


@pytest.fixture
def add_revision(migrations_dir: Path) -> AddRevision:
    """``add_revision(name, upgrade_body)``: a hand-written revision after the current head."""

    def add(name: str, body: str) -> Path:
        (head,) = read_head_file(migrations_dir)
        path = migrations_dir / "versions" / f"29990101_000000_{name}.py"
        path.write_text(
            f'"""{name}"""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
            f"revision = {name!r}\ndown_revision = {head!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade():\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n\n\n"
            "def downgrade():\n    pass\n"
        )
        (migrations_dir / "HEAD").write_text(name + "\n")
        return path

    return add


@pytest.fixture
def define_badges() -> Iterator[DefineBadges]:
    """``define_badges(*columns)``: a ``badges`` model (id plus these columns) for this test."""

    def define(*columns: Column) -> Table:
        existing = db.metadata.tables.get("badges")
        if existing is not None:
            db.metadata.remove(existing)
        return Table("badges", db.metadata, Column("id", Integer, primary_key=True), *columns)

    yield define
    existing = db.metadata.tables.get("badges")
    if existing is not None:
        db.metadata.remove(existing)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "alembic: pytest-alembic's built-in migration tests")
