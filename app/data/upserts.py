"""``INSERT … ON CONFLICT`` on PostgreSQL and SQLite: writes that cannot lose a race.

Each helper is one statement, so two requests writing the same row at once
never see a uniqueness error: one inserts, the other does nothing (or adds).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import Base


def _insert(model: type[Base], dialect: str | None = None) -> Any:
    """The dialect's ``INSERT``, which knows ``ON CONFLICT`` (PostgreSQL and SQLite).

    ``dialect`` defaults to the session's.
    """
    if (dialect or db.session.get_bind().dialect.name) == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def insert_ignoring_conflicts_on(model: type[Base], on: list[str], dialect: str) -> Any:
    """``INSERT … ON CONFLICT (<on>) DO NOTHING`` with no values: run it with a row as parameters.

    Build it once per dialect and reuse it: building a statement costs more
    CPU than running it. Only a conflict on the unique index over ``on``
    skips the row; any other violation raises ``IntegrityError`` as a plain
    insert would. Column defaults (``default=``) fill the columns the row leaves out.
    """
    return _insert(model, dialect).on_conflict_do_nothing(index_elements=on)


def insert_ignoring_conflicts(
    model: type[Base], rows: list[dict[str, Any]], returning: Any = None
) -> list[Any]:
    """``INSERT … ON CONFLICT DO NOTHING``: idempotent writes with no race window.

    With ``returning`` (a column), the values of the rows actually inserted.
    The statement is built once per model, dialect and ``returning`` and the
    rows go as its parameters: ``.values(rows)`` would be compiled anew for
    each call. With ``returning``, SQLAlchemy sends them as one multi-row
    ``INSERT`` ("insertmanyvalues"); without, the driver's executemany runs
    the statement once per row, in one round trip (psycopg's pipeline).
    """
    if not rows:
        return []
    statement = _ignoring_conflicts(model, db.session.get_bind().dialect.name, returning)
    if returning is None:
        db.session.execute(statement, rows)
        return []
    return list(db.session.scalars(statement, rows))


@functools.cache
def _ignoring_conflicts(model: type[Base], dialect: str, returning: Any) -> Any:
    statement = _insert(model, dialect).on_conflict_do_nothing()
    return statement if returning is None else statement.returning(returning)


def insert_selected_ignoring_conflicts_statement(
    model: type[Base], columns: list[str], rows: Any, dialect: str
) -> Any:
    """``INSERT … SELECT … ON CONFLICT DO NOTHING``: rows found and written in one round trip.

    ``rows`` is a select whose columns fill ``columns`` (and must have a
    ``WHERE``: SQLite reads ``ON`` after a bare ``FROM`` as a join's); give it
    bound parameters, build the statement once per dialect and run it with
    their values (add ``.returning(column)`` for the rows actually inserted).
    """
    return _insert(model, dialect).from_select(columns, rows).on_conflict_do_nothing()


def upsert_adding_statement(
    model: type[Base], *, key: dict[str, Any], column: str, delta: int
) -> Any:
    """``INSERT … ON CONFLICT DO UPDATE SET column = column + delta``: one atomic statement."""
    statement = _insert(model).values({**key, column: delta})
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={column: getattr(model, column) + statement.excluded[column]},
    )
