"""A schema the running code does not match: noticed by requests, cleared by readiness.

A request whose SQL names a column or table the database does not have
(PostgreSQL SQLSTATE ``42703`` undefined_column or ``42P01`` undefined_table;
SQLite ``no such column`` / ``no such table``) has met a schema change this
release was not written for: a rename or drop run too early, a ``psql`` fix.
It is answered 503 with ``Retry-After`` (app/data/unit_of_work.py), and the
process *suspects drift*: the first such error is logged with the database's
message (which names the column), and ``/readyz`` answers 503 naming what is
missing until the models' tables and columns all exist again (compared with
SQLAlchemy's inspector), which clears the suspicion.

The suspicion is per process and per app (``app.extensions``); readiness is
asked of each process in turn, so every worker clears its own.
"""

from __future__ import annotations

import logging
import re
import threading

from flask import Flask, current_app, has_app_context
from sqlalchemy import Connection, MetaData, inspect
from sqlalchemy.exc import DBAPIError

EXTENSION = "schema_drift"
UNDEFINED_COLUMN = "42703"
UNDEFINED_TABLE = "42P01"
_SQLITE_MISSING = re.compile(r"no such (?:column|table): \S+")

log = logging.getLogger(__name__)


class Suspicion:
    """Whether a request of this process met a schema its code does not match."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.problem: str | None = None  # the database's message of the first drift error

    def noticed(self, problem: str) -> None:
        with self._lock:
            first, self.problem = self.problem is None, self.problem or problem
        if first:
            log.error("Schema drift: %s; answering 503 until the schema fits the models", problem)
        else:
            log.debug("Schema drift: %s", problem)

    def clear(self) -> None:
        with self._lock:
            if self.problem is not None:
                log.warning("Schema drift over: the models' tables and columns all exist again")
            self.problem = None


def missing_object(error: DBAPIError) -> str | None:
    """The database's words for what is missing (``column users_1.bio does not exist``,
    ``no such column: users_1.bio``); ``None`` when ``error`` is not schema drift."""
    orig = error.orig
    if getattr(orig, "sqlstate", None) in (UNDEFINED_COLUMN, UNDEFINED_TABLE):
        primary = getattr(getattr(orig, "diag", None), "message_primary", None)
        return str(primary or orig).strip().splitlines()[0]
    found = _SQLITE_MISSING.search(str(orig))
    return found[0] if found else None


def suspicion() -> Suspicion | None:
    if not has_app_context():
        return None
    return current_app.extensions.get(EXTENSION)


def differences(connection: Connection, metadata: MetaData) -> list[str]:
    """What the models need that the database lacks: ``table users``, ``column users.bio``.

    Tables and columns only (names, not types): what a query can fail on by name.
    """
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    missing: list[str] = []
    for name, table in sorted(metadata.tables.items()):
        if name not in existing:
            missing.append(f"table {name}")
            continue
        columns = {column["name"] for column in inspector.get_columns(name)}
        missing += [f"column {name}.{c.name}" for c in table.columns if c.name not in columns]
    return missing


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Suspicion()
