"""Scratch databases: a new, empty SQLite file or PostgreSQL database, gone afterwards.

``flask db gate`` runs its run → revert → run on them, and the throwaway
environment (scripts/throwaway/: the tests, the benchmarks, ``make fuzz``,
``make conformance`` and the end-to-end tests) serves the app on them.

PostgreSQL is reached through ``GATE_POSTGRES_URL``, else ``TEST_POSTGRES_URL``
(the test suite's setting), else the local server as user ``postgres``; a
caller may name another server. A uniquely named database,
``conduit_<label>_<12 hex digits>``, is created there and dropped afterwards
(``WITH (FORCE)``, so connections left open do not keep it). With ``CI=true``
an unreachable server fails the gate; elsewhere it is skipped with a line that
says so.
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
KINDS = ("sqlite", "postgresql")


class ScratchUnavailable(RuntimeError):
    """The PostgreSQL server for scratch databases cannot be reached, or refused to create one."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def postgres_server_url(url: str | None = None) -> URL:
    """``url``, else ``GATE_POSTGRES_URL``, else ``TEST_POSTGRES_URL``, else the local server."""
    raw = (
        url
        or os.environ.get("GATE_POSTGRES_URL")
        or os.environ.get("TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES_URL
    )
    return make_url(normalize_database_url(raw))


@contextmanager
def scratch_database(
    kind: str,
    *,
    label: str = "scratch",
    server_url: str | None = None,
    directory: Path | None = None,
    icu_locale: str | None = None,
) -> Iterator[str]:
    """The URL of a new, empty database of ``kind`` (``sqlite`` or ``postgresql``).

    SQLite: ``conduit.db`` in ``directory`` (the caller's to remove), else in a
    temporary folder removed afterwards. PostgreSQL: ``conduit_<label>_<hex>``
    on ``server_url`` (see :func:`postgres_server_url`), collating with ICU's
    ``icu_locale`` when given, dropped afterwards.

    Raises :class:`ScratchUnavailable` when PostgreSQL cannot be reached or
    refuses the ``CREATE DATABASE``.
    """
    if kind == "sqlite":
        if directory is not None:
            yield f"sqlite:///{directory / 'conduit.db'}"
            return
        with tempfile.TemporaryDirectory(prefix="conduit-scratch-") as folder:
            yield f"sqlite:///{Path(folder) / 'conduit.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"a scratch database is one of {', '.join(KINDS)}, not {kind!r}")
    with _postgres_database(postgres_server_url(server_url), label, icu_locale) as url:
        # Plain postgresql://, which psycopg reads too; the app picks its driver itself.
        yield url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def _postgres_database(server: URL, label: str, icu_locale: str | None) -> Iterator[URL]:
    url = create_postgres_database(server, label, icu_locale)
    try:
        yield url
    finally:
        drop_postgres_database(url, server)


def create_postgres_database(server: URL, label: str, icu_locale: str | None = None) -> URL:
    """Create ``conduit_<label>_<12 hex digits>`` on ``server``; its URL.

    For callers that outlive a ``with`` block (deploy/release-demo.sh creates
    one here and drops it with :func:`drop_postgres_database` in its exit
    trap). Raises :class:`ScratchUnavailable` as :func:`scratch_database` does.
    """
    name = f"conduit_{label}_{uuid.uuid4().hex[:12]}"
    create = f'CREATE DATABASE "{name}"'
    if icu_locale is not None:
        # LOCALE_PROVIDER: PostgreSQL 15+. The locale is the caller's constant, not user input.
        create += (
            f" LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}' LOCALE 'C.UTF-8' TEMPLATE template0"
        )
    try:
        _run_on_server(server, create)
    except SQLAlchemyError as error:
        first_line = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ScratchUnavailable(
            f"PostgreSQL at {server.render_as_string(hide_password=True)}: {first_line} "
            "(set GATE_POSTGRES_URL or TEST_POSTGRES_URL)"
        ) from None
    return server.set(database=name)


def drop_postgres_database(url: URL, server: URL | None = None) -> None:
    """Drop ``url``'s database if it exists, closing the connections still open to it.

    Connects to ``server`` (default: :func:`postgres_server_url`), which names
    another database of the same PostgreSQL server.
    """
    statement = f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'
    _run_on_server(server or postgres_server_url(), statement)


def _run_on_server(server: URL, statement: str) -> None:
    """One statement outside a transaction, on ``server``."""
    admin = create_engine(
        server,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


@contextmanager
def scratch_sqlite() -> Iterator[Engine]:
    """An engine on a new, empty SQLite file, removed afterwards."""
    with scratch_database("sqlite") as url:
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def scratch_postgres() -> Iterator[Engine]:
    """An engine on a new, empty PostgreSQL database, dropped afterwards."""
    with scratch_database("postgresql", label="gate") as url:
        engine = create_engine(normalize_database_url(url))
        try:
            yield engine
        finally:
            engine.dispose()
