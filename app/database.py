"""Connection settings the application relies on.

SQLite runs with pysqlite's own transaction handling switched off and
SQLAlchemy emitting ``BEGIN`` itself, as SQLAlchemy documents for pysqlite
("Serializable isolation / Savepoints / Transactional DDL"). Without it the
driver starts a transaction only before an ``INSERT``/``UPDATE``/``DELETE``
and a ``RELEASE SAVEPOINT`` commits: one request's writes would land in
several transactions. With it a request is one transaction, and savepoints
and rollbacks behave as on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import has_request_context, request
from sqlalchemy import Connection, Engine, event

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
