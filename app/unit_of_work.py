"""Committing a request's changes as one unit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from app.errors import ApiError
from app.extensions import db
from app.models import Base


def commit(explain_conflict: Callable[[], None] | None = None) -> None:
    """Commit, or roll everything back and answer 422 on a uniqueness conflict.

    The checks made before a write catch the ordinary cases; this covers the
    race where a concurrent request took the same unique value in between.
    ``explain_conflict`` re-runs those checks after the rollback so the answer
    names the field that is now taken.
    """
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if explain_conflict is not None:
            explain_conflict()
        raise ApiError(
            422, {"body": ["conflicts with a concurrent change, please retry"]}
        ) from None


def _insert(model: type[Base]) -> Any:
    """The dialect's ``INSERT``, which knows ``ON CONFLICT`` (PostgreSQL and SQLite)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def insert_ignoring_conflicts(model: type[Base], rows: list[dict[str, Any]]) -> None:
    """``INSERT … ON CONFLICT DO NOTHING``: idempotent writes with no race window."""
    if not rows:
        return
    db.session.execute(_insert(model).values(rows).on_conflict_do_nothing())


def upsert_adding(model: type[Base], *, key: dict[str, Any], column: str, delta: int) -> None:
    """``INSERT … ON CONFLICT DO UPDATE SET column = column + delta``: one atomic statement."""
    statement = _insert(model).values({**key, column: delta})
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=list(key),
            set_={column: getattr(model, column) + statement.excluded[column]},
        )
    )
