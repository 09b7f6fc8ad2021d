"""Apps for tests: made, given fresh tables, reset, or served by gunicorn (closed: app.close_app).

The one home of these helpers: fixtures (tests/conftest.py) and test modules
import them from here, never from a conftest.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import make_url, text

from app import close_app, create_app
from app.extensions import db
from scripts import throwaway
from tests import databases
from tests.listening import HeldNotices, late_notices, wait_until_listening
from tests.serving import ServedApp

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-for-production-rules"


def make_app(database_url: str, **overrides: Any) -> Flask:
    """An app for a test; throttling off (tests sign in often from one address) unless asked.

    Unless asked, it folds the running totals after every write that moves
    them (``COUNTERS_FOLD_INTERVAL`` 0), before the write answers: no fold
    commits later in a thread of its own, behind a test's back (on SQLite
    that commit moves every cached answer). The paced folds, the default,
    are tested in tests/test_counters.py and serve every gunicorn test.
    """
    return create_app(
        {
            "APP_ENV": "testing",
            "SECRET_KEY": TEST_SECRET_KEY,
            "DATABASE_URL": database_url,
            "RATELIMIT_ENABLED": "off",
            "COUNTERS_FOLD_INTERVAL": "0",
            **overrides,
        }
    )


# One SQLite file per test process with the models' tables, copied for each test
# that asks for a new SQLite file: a copy costs a fraction of create_all.
_TEMPLATE_HOME = tempfile.TemporaryDirectory(prefix="conduit-tables-")
_sqlite_template: Path | None = None


def _new_sqlite_file(database_url: str) -> Path | None:
    """The SQLite file ``database_url`` names if it does not exist yet; else ``None``."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(str(url.database))
    return None if path.exists() else path


def _create_tables(app: Flask) -> None:
    """The models' tables afresh, and no migration stamp: on the shared test database an
    earlier test may have left a migrated schema, whose ``alembic_version`` a test of
    these tables would otherwise read (the metrics said such a database was at head)."""
    _drop_tables(app)
    with app.app_context():
        db.create_all()


def _drop_tables(app: Flask) -> None:
    """Drop every table the models know, and Alembic's version table."""
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def _copy_sqlite_template(target: Path) -> None:
    """Copy the models' tables into ``target``, a new SQLite file (template: once a process)."""
    global _sqlite_template
    if _sqlite_template is None:
        template = Path(_TEMPLATE_HOME.name) / "tables.db"
        app = make_app(f"sqlite:///{template}")
        try:
            _create_tables(app)
        finally:
            close_app(app)
        _sqlite_template = template
    shutil.copyfile(_sqlite_template, target)


@contextmanager
def app_with_tables(database_url: str, **overrides: Any) -> Iterator[Flask]:
    """An app on ``database_url`` with the models' tables created afresh; closed afterwards.

    A new SQLite file starts as a copy of a file holding the tables; any other
    database gets ``drop_all`` then ``create_all``.
    """
    new_file = _new_sqlite_file(database_url)
    if new_file is not None:
        _copy_sqlite_template(new_file)
    app = make_app(database_url, **overrides)
    if new_file is None:
        _create_tables(app)
    try:
        yield app
    finally:
        close_app(app)


@contextmanager
def apps_on(database_url: str, **defaults: Any) -> Iterator[Callable[..., Flask]]:
    """``make(**overrides)``: apps sharing ``database_url``, tables created by the first.

    Several instances of one deployment in a test (a cached reader and a
    writer, two throttling replicas); every app made is closed afterwards.
    """
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = make_app(database_url, **{**defaults, **overrides})
        if not made:
            with app.app_context():
                db.drop_all()
                db.create_all()
        made.append(app)
        return app

    try:
        yield make
    finally:
        for app in made:
            close_app(app)


@contextmanager
def writer_reader_uncached(database_url: str) -> Iterator[tuple[Any, Any, Any]]:
    """Test clients of three instances on fresh tables: a writer, a cached reader whose
    change feed listens, and one with no response cache (fresh answers to compare with)."""
    with app_with_tables(database_url) as writer_app:
        reader_app = make_app(database_url)
        uncached_app = make_app(database_url, RESPONSE_CACHE=False)
        try:
            wait_until_listening(reader_app)
            yield tuple(a.test_client() for a in (writer_app, reader_app, uncached_app))
        finally:
            close_app(reader_app)
            close_app(uncached_app)


@dataclass
class LateInstances:
    """Test clients of three instances on one database (:func:`instances_with_late_notices`)."""

    here: FlaskClient  # cached and listening; what it hears from the others, ``notices`` holds
    there: FlaskClient  # cached and listening
    uncached: FlaskClient  # no response cache: fresh answers to compare with
    notices: HeldNotices


@contextmanager
def instances_with_late_notices(database_url: str) -> Iterator[LateInstances]:
    """Three instances on fresh tables, ``here`` hearing the others' writes only when told.

    A replica whose listener is slow: after ``notices.hold()``, the writes
    ``there`` commits reach ``here`` at ``notices.release()`` (or the end).
    """
    with app_with_tables(database_url) as here_app, late_notices(here_app) as notices:
        there_app = make_app(database_url)
        uncached_app = make_app(database_url, RESPONSE_CACHE=False)
        try:
            wait_until_listening(here_app)
            wait_until_listening(there_app)
            yield LateInstances(
                here_app.test_client(),
                there_app.test_client(),
                uncached_app.test_client(),
                notices,
            )
        finally:
            close_app(there_app)
            close_app(uncached_app)


def reset_database(app: Flask) -> None:
    """Drop every table the models know, and Alembic's version table.

    PostgreSQL: the whole ``public`` schema, with the functions and the
    database-wide event triggers the migrations install.
    """
    _drop_tables(app)
    with app.app_context(), db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))


@contextmanager
def served_on(engine_name: str, workdir: Path, label: str, **settings: str) -> Iterator[ServedApp]:
    """gunicorn serving a freshly migrated SQLite file or throwaway PostgreSQL database.

    Two worker processes with four threads each unless ``settings`` say otherwise.
    """
    if engine_name == "postgresql":
        databases.require_postgres()
    with throwaway.environment(
        engine_name,
        settings={
            "APP_ENV": "testing",
            "SECRET_KEY": TEST_SECRET_KEY,
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "4",
            **settings,
        },
        workdir=workdir,
        label=f"test_{label}",
        server_url=databases.POSTGRES_URL,
    ) as served:
        app = make_app(served.database_url)
        try:
            yield ServedApp(served.base_url, served.database_url, app, served.server)
        finally:
            close_app(app)
