"""Scratch databases for ``flask db gate``: a SQLite file, and a PostgreSQL database of its own.

PostgreSQL is reached through ``GATE_POSTGRES_URL``, else ``TEST_POSTGRES_URL``
(the test suite's setting), else the local server as user ``postgres``. The
gate creates a uniquely named database there and drops it afterwards. With
``CI=true`` an unreachable server fails the gate; elsewhere it is skipped
with a line that says so.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from app.config import normalize_database_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_SECONDS = 5


class ScratchUnavailable(RuntimeError):
    """The PostgreSQL server for scratch databases cannot be reached."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def postgres_server_url() -> URL:
    raw = (
        os.environ.get("GATE_POSTGRES_URL")
        or os.environ.get("TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES_URL
    )
    return make_url(normalize_database_url(raw))


@contextmanager
def scratch_sqlite() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'scratch.db'}")
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def scratch_postgres() -> Iterator[Engine]:
    """An engine on a new, empty PostgreSQL database, dropped afterwards."""
    server = postgres_server_url()
    name = f"conduit_gate_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        server,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except SQLAlchemyError as error:
            first_line = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise ScratchUnavailable(
                f"PostgreSQL at {server.render_as_string(hide_password=True)}: {first_line} "
                "(set GATE_POSTGRES_URL or TEST_POSTGRES_URL)"
            ) from None
        engine = create_engine(server.set(database=name))
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
