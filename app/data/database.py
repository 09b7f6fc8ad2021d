"""Connection settings the application relies on, and connection errors in one line.

SQLite runs with pysqlite's own transaction handling switched off and
SQLAlchemy emitting ``BEGIN`` itself, as SQLAlchemy documents for pysqlite
("Serializable isolation / Savepoints / Transactional DDL"). Without it the
driver starts a transaction only before an ``INSERT``/``UPDATE``/``DELETE``
and a ``RELEASE SAVEPOINT`` commits: one request's writes would land in
several transactions. With it a request is one transaction, and savepoints
and rollbacks behave as on PostgreSQL.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from flask import has_request_context, request
from sqlalchemy import URL, Connection, Engine, event

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SQLITE_BUSY_TIMEOUT_MS = 5000


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: enforce foreign keys (cascades), let readers and a writer overlap."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # The driver emits no BEGIN/COMMIT of its own; _begin_sqlite does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _begin_sqlite(connection: Connection) -> None:
    """Start SQLite transactions explicitly.

    A request that may write takes the write lock up front (``BEGIN
    IMMEDIATE``): concurrent writers then queue on the busy timeout instead
    of failing at once with ``database is locked`` when a read-then-write
    transaction tries to upgrade its lock. Everything else begins deferred.
    """
    if connection.dialect.name != "sqlite":
        return
    if has_request_context() and request.method not in SAFE_METHODS:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


_MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]+)" does not exist')


def connection_problem(error: BaseException, url: URL) -> str | None:
    """One line for a database that cannot be reached, naming the setting and the fix.

    Recognises a PostgreSQL database that does not exist (with the
    ``createdb`` command that creates it) and a server that does not answer;
    ``None`` for any other error. The password never appears.
    """
    text = str(getattr(error, "orig", None) or error).strip()
    missing = _MISSING_DATABASE.search(text)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if missing:
        command = ["createdb"]
        if url.host:
            command += ["-h", url.host]
        if url.port:
            command += ["-p", str(url.port)]
        if url.username:
            command += ["-U", url.username]
        command.append(missing["name"])
        return (
            f'DATABASE_URL names the database "{missing["name"]}", which does not exist on '
            f"{where}: create it with `{' '.join(command)}`, or point DATABASE_URL at another"
        )
    if "Connection refused" in text or "could not translate host name" in text:
        return (
            f"DATABASE_URL: no PostgreSQL server answers at {where}: start it, "
            "or point DATABASE_URL at one"
        )
    return None
