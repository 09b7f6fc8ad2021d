"""Throwaway databases for the test suite: a SQLite file or a PostgreSQL database.

PostgreSQL is reached through ``TEST_POSTGRES_URL`` (default: the local server,
user ``postgres``, trust auth, its ``postgres`` maintenance database, which every
PostgreSQL has). Each test session creates its own database (one per xdist
worker) and drops it at the end. ``DATABASE_URL`` is never read.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from tests.environment import IN_CI as IN_CI  # re-exported: the tests import it from here

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL

HOW_TO_ENABLE = (
    f"PostgreSQL is not reachable at {POSTGRES_URL}: start it, or point TEST_POSTGRES_URL "
    "at a server where the user may create databases (CI=true makes this a failure)"
)


def postgres_unavailable_reason() -> str | None:
    """``None`` when the test server answers, else why not."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except psycopg.OperationalError as error:
        return f"{HOW_TO_ENABLE} ({str(error).strip().splitlines()[0]})"


def _url_for(database: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(POSTGRES_URL)
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    host = info.get("host", "127.0.0.1")
    port = info.get("port", 5432)
    return f"postgresql://{user}{password}@{host}:{port}/{database}"


# A database whose default collation is ICU's American English, where "a" < "A"
# < "b" (PostgreSQL 15+: LOCALE_PROVIDER). Text ordered without an explicit
# collation follows the database's; this one differs from C.UTF-8 and SQLite.
ICU_LOCALE = "en-US"


@contextmanager
def throwaway_postgres_database(label: str, *, icu_locale: str | None = None) -> Iterator[str]:
    """Create a uniquely named database (``icu_locale``: its collation); yield the URL; drop it."""
    name = f"conduit_test_{label}_{uuid.uuid4().hex[:8]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if icu_locale is not None:
        create += sql.SQL(
            " LOCALE_PROVIDER icu ICU_LOCALE {} LOCALE 'C.UTF-8' TEMPLATE template0"
        ).format(sql.Literal(icu_locale))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(create)
    try:
        yield _url_for(name)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
