"""Committing a request's changes as one unit, and what a failed unit answers.

Every write commits through :func:`commit`. Whatever the database raises
while a request runs (in a statement, a flush or the commit) is answered by
the app's handler (app/web/database_errors.py) after the request's
transaction is rolled back, so a failed request writes nothing. The mapping,
in one place (:func:`translate`):

- a row the request needed vanished under it (a concurrent delete):
  foreign-key violation, ``ObjectDeletedError``, ``StaleDataError``,
  ``NoResultFound`` → **404** ``{"<article|comment|profile>": ["not found"]}``;
- a concurrent request took a unique value first (username, email, slug)
  → **422** ``{"<field>": ["has already been taken"]}`` (slugs are retried
  with another suffix first, ``app.articles.service``);
- a value the database refuses (``DataError``: validation missed it)
  → **422** ``{"body": ["is invalid"]}``;
- PostgreSQL gave up on the transaction to resolve a conflict (deadlock,
  serialization failure) → **409** ``{"body": ["conflicts with a concurrent
  change, please retry"]}``;
- the database is unreachable, the connection died mid-request, the pool is
  exhausted, SQLite stayed locked past its busy timeout, or a PostgreSQL lock
  was not granted within ``DATABASE_LOCK_TIMEOUT`` (a migration holding a
  table, say) → **503** ``{"database": [...]}`` with ``Retry-After``;
- the SQL names a column or table the database does not have (the schema
  changed under the running release: app/data/schema_drift.py) → **503**
  ``{"database": ["schema does not match this release, please retry"]}``
  with ``Retry-After``; the process then suspects drift and ``/readyz``
  answers 503 until the schema matches the models again.

Anything else is a bug: logged with its traceback, answered 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoResultFound,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from app.data import schema_drift
from app.errors import ApiError
from app.extensions import db
from app.models import Base

log = logging.getLogger(__name__)

TAKEN = "has already been taken"
RETRY_AFTER_SECONDS = 1
# What a vanished row is called in the answer, by table and by mapped class.
_FIELD_FOR_TABLE = {"articles": "article", "comments": "comment", "users": "profile"}
_FIELD_FOR_CLASS = {"Article": "article", "Comment": "comment", "User": "profile"}
_TABLE_IN_MESSAGE = re.compile(r"table '(\w+)'")
_CLASS_IN_MESSAGE = re.compile(r"'<(\w+) at ")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
# PostgreSQL SQLSTATEs: class 23 integrity, class 40 transaction rollback.
_FOREIGN_KEY_VIOLATION = "23503"
_UNIQUE_VIOLATION = "23505"
_TRANSACTION_ROLLBACK = "40"
_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out (app/config.py: DATABASE_LOCK_TIMEOUT)


def commit(explain_conflict: Callable[[], None] | None = None) -> None:
    """Commit the request's changes; on failure roll back and answer as :func:`translate` says.

    ``explain_conflict`` re-runs the request's own checks after the rollback
    of a constraint violation, so the answer can name every field now taken.
    """
    try:
        db.session.commit()
    except IntegrityError as error:
        discard()
        if explain_conflict is not None:
            explain_conflict()
        raise (translate(error) or _conflict()) from None


def end_reads() -> None:
    """End the request's transaction before slow work, when nothing was written yet.

    On SQLite a request that may write holds the database's single write
    lock from its first statement (``BEGIN IMMEDIATE``, app.data.database). Work
    that takes long without the database (hashing a password with argon2,
    about half a second) must not hold it: every other write would queue
    behind it, and past the busy timeout answer 503. Objects read so far are
    reloaded when next used.
    """
    db.session.rollback()


def translate(error: SQLAlchemyError) -> ApiError | None:
    """The answer for a database error; ``None`` when it is a bug (a 500)."""
    if isinstance(error, IntegrityError):
        return _integrity_error(error)
    if isinstance(error, DataError):  # a value the column cannot hold slipped past validation
        return ApiError(422, {"body": ["is invalid"]})
    if isinstance(error, ObjectDeletedError | StaleDataError | NoResultFound):
        return _not_found(_vanished(str(error)))
    if isinstance(error, DBAPIError) and _sqlstate(error).startswith(_TRANSACTION_ROLLBACK):
        return _conflict()
    if isinstance(error, DBAPIError) and schema_drift.missing_object(error):
        return _unavailable("schema does not match this release, please retry")
    if isinstance(error, OperationalError | InterfaceError | PoolTimeoutError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    ):
        busy = isinstance(error, DBAPIError) and (
            "database is locked" in str(error.orig) or _sqlstate(error) == _LOCK_NOT_AVAILABLE
        )
        return _unavailable("is busy, please retry" if busy else "is not reachable, please retry")
    return None


def discard() -> None:
    """Roll the session back; if the connection is dead, drop it instead of raising.

    A rollback on a connection the server closed fails; raised from an error
    handler or a teardown, that would reach the WSGI server, which answers
    with its own HTML page. Invalidating discards the connection without a
    round trip (the pool opens a new one when next asked).
    """
    try:
        db.session.rollback()
    except SQLAlchemyError as error:
        log.warning("Rollback failed, discarding the connection: %s", error.__class__.__name__)
        _invalidate()


def close_session(_exception: BaseException | None = None) -> None:
    """End the context's session without letting a dead connection raise.

    A request that opened none (a response cache hit) has none to close:
    asking the scoped session for one would build it just to close it.
    """
    if not db.session.registry.has():
        return
    try:
        db.session.close()
    except SQLAlchemyError as error:
        log.warning("Closing the session failed: %s", error.__class__.__name__)
        _invalidate()


def _invalidate() -> None:
    """Drop the session's connections unused (no rollback on the wire); never raises."""
    try:
        db.session().invalidate()
    except Exception:  # the connection is already unusable; nothing left to undo
        log.warning("Discarding the connection failed", exc_info=True)


def _integrity_error(error: IntegrityError) -> ApiError | None:
    orig = error.orig
    sqlstate = _sqlstate(error)
    constraint = _constraint(getattr(getattr(orig, "diag", None), "constraint_name", None))
    sqlite_name = getattr(orig, "sqlite_errorname", "")
    if sqlstate == _FOREIGN_KEY_VIOLATION or sqlite_name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        referred = (
            constraint.referred_table.name if isinstance(constraint, ForeignKeyConstraint) else ""
        )
        return _not_found(_FIELD_FOR_TABLE.get(referred, "body"))
    if sqlstate == _UNIQUE_VIOLATION or sqlite_name in (
        "SQLITE_CONSTRAINT_UNIQUE",
        "SQLITE_CONSTRAINT_PRIMARYKEY",
    ):
        columns = _unique_columns(constraint, str(orig))
        if len(columns) == 1:
            return ApiError(422, {columns[0]: [TAKEN]})
        return _conflict()
    return None


def _sqlstate(error: DBAPIError) -> str:
    return str(getattr(error.orig, "sqlstate", None) or "")


def _constraint(name: str | None) -> Any:
    """The model's constraint called ``name`` (PostgreSQL reports names; SQLite does not)."""
    if not name:
        return None
    for table in Base.metadata.tables.values():
        for constraint in (*table.constraints, *table.indexes):
            if getattr(constraint, "name", None) == name:
                return constraint
    return None


def _unique_columns(constraint: Any, message: str) -> list[str]:
    if isinstance(constraint, UniqueConstraint) or getattr(constraint, "unique", False):
        return [column.name for column in constraint.columns]
    match = _SQLITE_UNIQUE.search(message)  # "UNIQUE constraint failed: users.email"
    if match:
        return [column.strip().rpartition(".")[2] for column in match[1].split(",")]
    return []


def _vanished(message: str) -> str:
    table = _TABLE_IN_MESSAGE.search(message)
    if table:
        return _FIELD_FOR_TABLE.get(table[1], "body")
    mapped = _CLASS_IN_MESSAGE.search(message)
    return _FIELD_FOR_CLASS.get(mapped[1], "body") if mapped else "body"


def _conflict() -> ApiError:
    return ApiError(409, {"body": ["conflicts with a concurrent change, please retry"]})


def _unavailable(message: str) -> ApiError:
    return ApiError(503, {"database": [message]}, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _not_found(field: str) -> ApiError:
    return ApiError(404, {field: ["not found"]})
