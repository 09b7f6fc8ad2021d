"""SQLite: foreign keys off while migrations run, checked afterwards.

SQLite's batch migrations copy a table, drop the original and rename the
copy. The application enforces foreign keys on every connection
(``app.data.database``), so that drop would cascade: dropping ``tags`` to add a
column deletes every ``article_tags`` row. Alembic's batch documentation says
to switch enforcement off around such migrations; ``PRAGMA foreign_keys``
only takes effect outside a transaction, so it goes straight to the driver
(SQLAlchemy would begin one first: ``app.data.database``). Before the run's
transaction commits, ``PRAGMA foreign_key_check`` must find nothing, or the
run fails and rolls back.

A batch copy that failed outside a transaction left its ``_alembic_tmp_<table>``
behind, and every later batch on that table failed. Runs are now one
transaction (``migrations/env.py``); :func:`leftover_batch_tables` finds what
an older or interrupted run left, and ``flask db status`` reports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, inspect

BATCH_TABLE_PREFIX = "_alembic_tmp_"


class ForeignKeyViolation(RuntimeError):
    """A migration left rows that reference missing rows."""


@contextmanager
def foreign_keys_off(connection: Connection) -> Iterator[None]:
    """On SQLite (and a connection not yet in a transaction): no cascades during the run."""
    if connection.dialect.name != "sqlite" or connection.in_transaction():
        yield
        return
    _pragma_outside_transaction(connection, "PRAGMA foreign_keys = OFF")
    try:
        yield
        if connection.in_transaction():
            connection.commit()
    finally:
        if connection.in_transaction():
            connection.rollback()
        _pragma_outside_transaction(connection, "PRAGMA foreign_keys = ON")


def _pragma_outside_transaction(connection: Connection, pragma: str) -> None:
    connection.connection.driver_connection.execute(pragma)  # type: ignore[union-attr]


def check_foreign_keys(connection: Connection) -> None:
    """SQLite: fail (inside the run's transaction, so it rolls back) on dangling references."""
    if connection.dialect.name != "sqlite":
        return
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        raise ForeignKeyViolation(
            f"the migration left rows with dangling foreign keys: {violations[:5]}"
        )


def leftover_batch_tables(connection: Connection) -> list[str]:
    """``_alembic_tmp_*`` tables: a batch copy that an interrupted run left behind."""
    if connection.dialect.name != "sqlite":
        return []
    names = inspect(connection).get_table_names()
    return sorted(name for name in names if name.startswith(BATCH_TABLE_PREFIX))
