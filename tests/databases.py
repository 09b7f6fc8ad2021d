"""Throwaway databases for the test suite: a SQLite file or a PostgreSQL database; and Redis.

PostgreSQL is reached through ``TEST_POSTGRES_URL`` (default: the local server,
user ``postgres``, trust auth, its ``postgres`` maintenance database, which every
PostgreSQL has). Each test session creates its own database (one per xdist
worker) and drops it at the end, through the throwaway environment
(scripts/throwaway/) that also serves the app for the concurrency tests.
``DATABASE_URL`` is never read.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.sql.elements import (
    ReleaseSavepointClause,
    RollbackToSavepointClause,
    SavepointClause,
)

from scripts import throwaway
from tests.environment import IN_CI as IN_CI  # re-exported: the tests import it from here

# The parameters of every database-parametrized fixture: each half carries its
# database's marker, which ``--databases`` deselects by (tests/conftest.py) and
# ``-m postgresql`` / ``-m "not postgresql"`` select by.
SQLITE = pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite")
POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.postgresql, id="postgresql")
POSTGRESQL_ICU = pytest.param("postgresql-icu", marks=pytest.mark.postgresql, id="postgresql-icu")
PARAMS = (SQLITE, POSTGRESQL)

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL

HOW_TO_ENABLE = (
    f"PostgreSQL is not reachable at {POSTGRES_URL}: start it, or point TEST_POSTGRES_URL "
    "at a server where the user may create databases (CI=true makes this a failure)"
)


def terminate_backends(
    database: str, stop: threading.Event, every: float, application_name: str | None = None
) -> int:
    """End every connection to ``database`` (only ``application_name``'s, if given) every
    ``every`` seconds until ``stop`` is set; returns how many were ended."""
    query = (
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %(database)s AND pid <> pg_backend_pid() "
        "AND (%(name)s::text IS NULL OR application_name = %(name)s)"
    )
    parameters = {"database": database, "name": application_name}
    ended = 0
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        while not stop.is_set():
            ended += admin.execute(query, parameters).fetchone()[0]  # type: ignore[index]
            time.sleep(every)
    return ended


def postgres_unavailable_reason() -> str | None:
    """``None`` when the test server answers, else why not."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except psycopg.OperationalError as error:
        return f"{HOW_TO_ENABLE} ({str(error).strip().splitlines()[0]})"


def require_postgres() -> None:
    """Skip the calling test when the test server does not answer; under ``CI=true``, fail."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


# A database whose default collation is ICU's American English, where "a" < "A"
# < "b" (PostgreSQL 15+: LOCALE_PROVIDER). Text ordered without an explicit
# collation follows the database's; this one differs from C.UTF-8 and SQLite.
ICU_LOCALE = "en-US"


def throwaway_postgres_database(
    label: str, *, icu_locale: str | None = None
) -> AbstractContextManager[str]:
    """A new database named for ``label`` (``icu_locale``: its collation), dropped afterwards.

    The throwaway environment's (scripts/throwaway/), on the test server.
    """
    return throwaway.database(
        "postgresql", label=f"test_{label}", server_url=POSTGRES_URL, icu_locale=icu_locale
    )


# Redis, for the shared rate-limit counts (app/web/throttling.py): ``TEST_REDIS_URL``,
# default the local server's database 0. Each test keeps its keys under a prefix of its
# own and removes them afterwards.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_URL = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL


def redis_unavailable_reason() -> str | None:
    """``None`` when the test Redis answers, else why not."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
        return None
    except redis.RedisError as error:
        return (
            f"Redis is not reachable at {REDIS_URL}: start it, or point TEST_REDIS_URL at one "
            f"(CI=true makes this a failure) ({error})"
        )
    finally:
        client.close()


def remove_redis_keys(pattern: str) -> None:
    """Delete every key of the test Redis matching ``pattern`` (``SCAN``'s glob)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=pattern):
            client.delete(key)
    finally:
        client.close()


def lock_waiters(watch: psycopg.Connection) -> int:
    """How many sessions of ``watch``'s PostgreSQL database wait on a lock."""
    row = watch.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()
    return int(row[0]) if row else 0


def reads_a_user_by_id(statement: str) -> bool:
    """The token's user read by id (``Session.get``: app/security.py, app/data/known_users.py)."""
    return statement.startswith("SELECT users.") and "WHERE users.id = " in statement


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


@contextmanager
def statements_run(app: Flask, *, transaction_control: bool = True) -> Iterator[list[str]]:
    """The SQL statements ``app`` runs inside the block, in order.

    ``transaction_control=False`` leaves out ``BEGIN``/``COMMIT``/``ROLLBACK``:
    SQLite's ``BEGIN`` is sent as a statement (``app.data.database``),
    PostgreSQL's by the driver, unseen here.
    """
    from app.extensions import db

    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if transaction_control or not statement.lstrip().upper().startswith(TRANSACTION_CONTROL):
            statements.append(statement)

    with app.app_context():
        engine: Engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


_SAVEPOINTS = (SavepointClause, ReleaseSavepointClause, RollbackToSavepointClause)


@contextmanager
def compiled_anew(app: Flask) -> Iterator[list[str]]:
    """What this thread runs inside the block that SQLAlchemy's compiled cache did not supply.

    Each statement as ``"<CacheStats name>: <statement>"``. Savepoints and
    ``exec_driver_sql`` text (the change feed's ``NOTIFY``) are not compiled
    from a construct and are left out.
    """
    from app.extensions import db

    with app.app_context():
        engine: Engine = db.engine
    owner = threading.get_ident()
    found: list[str] = []

    def ran(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: Any
    ) -> None:
        compiled = context.compiled
        if threading.get_ident() != owner or compiled is None:
            return
        if isinstance(compiled.statement, _SAVEPOINTS):
            return
        if context.cache_hit is not CacheStats.CACHE_HIT:
            found.append(f"{context.cache_hit.name}: {' '.join(statement.split())[:160]}")

    event.listen(engine, "after_cursor_execute", ran)
    try:
        yield found
    finally:
        event.remove(engine, "after_cursor_execute", ran)
