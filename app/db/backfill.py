"""Batched backfills for data migrations: keyset batches, each committed, resumable.

In a data-migration revision::

    comments = sa.table("comments", sa.column("id", sa.Integer),
                        sa.column("body", sa.Text), sa.column("body_length", sa.Integer))
    backfill(comments, {"body_length": sa.func.length(comments.c.body)},
             pending=comments.c.body_length.is_(None))

updates the rows ``pending`` selects, ``batch_size`` primary keys at a time
(``WHERE pending AND id > last AND id <= last + batch_size``: each batch is
one short statement over an index range, however sparse the keys), commits
each batch, sleeps ``pause`` seconds between batches (``BACKFILL_PAUSE``),
and prints ``rows done / total`` with the rate about once a second (on stderr).

Commits: inside a revision the batches run in an autocommit block, so each
``UPDATE`` is its own transaction and no row stays locked past its batch (on
SQLite too, where the run is otherwise one transaction: what the run did
before is committed with the first batch, and the revision, its version row
included, when it ends, ``app.db.audit.AuditRecorder``); a batch that times
out on a lock is retried (``app.db.lock_retry``). Keep schema changes out of
a backfill's revision: what it did before the backfill is committed with the
first batch, so if the backfill then fails, running the revision again
repeats them. Outside a revision (a
script, a test) pass ``connection=``: it commits after each batch.

Resuming needs no state of its own: ``pending`` is the state. A run starts at
the lowest primary key still pending, so after an interruption the finished
batches are skipped, rows the new code writes meanwhile (already right) are
never touched, and there is no cursor table to create, trust or clean up. The
one condition: ``pending`` must turn false for a row once ``values`` are set
(an ``IS NULL`` on the column being filled is the usual form).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.sql import ColumnElement, TableClause

from app.db.audit import COMMITTED_MID_STEP
from app.db.lock_retry import retrying

DEFAULT_BATCH_SIZE = 10_000
PROGRESS_EVERY = 1.0  # seconds between progress lines


@dataclass
class Progress:
    """Rows updated so far out of ``total`` pending at the start; ``rate`` in rows per second."""

    table: str
    total: int
    done: int = 0
    started: float = 0.0

    @property
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def line(self) -> str:
        share = 100 * self.done / self.total if self.total else 100.0
        return (
            f"backfill {self.table}: {self.done:,}/{self.total:,} rows ({share:.0f}%), "
            f"{self.rate:,.0f} rows/s"
        )


def _rowcount(bind: Connection, statement: sa.Update) -> int:
    return bind.execute(statement).rowcount


def _default_pause() -> float:
    from flask import current_app, has_app_context

    return float(current_app.config.get("BACKFILL_PAUSE", 0.1)) if has_app_context() else 0.1


@contextmanager
def _batches_committed(connection: Connection | None) -> Iterator[Connection]:
    """The connection to update through: the given one, or the revision's in autocommit."""
    if connection is not None:
        yield connection
        return
    from alembic import op

    context = op.get_context()
    assert context.connection is not None
    context.connection.info[COMMITTED_MID_STEP] = True  # the recorder commits the rest (audit)
    with context.autocommit_block():
        yield op.get_bind()


def _progress_to_stderr(line: str) -> None:
    """Progress is a diagnostic, like Alembic's own lines: stderr, so stdout stays the output."""
    print(line, file=sys.stderr, flush=True)


def backfill(
    table: TableClause,
    values: dict[str, Any],
    pending: ColumnElement[bool],
    *,
    key: str = "id",
    batch_size: int = DEFAULT_BATCH_SIZE,
    pause: float | None = None,
    connection: Connection | None = None,
    echo: Callable[[str], None] | None = None,
) -> Progress:
    """Set ``values`` on every row of ``table`` where ``pending`` holds, in committed batches.

    ``key``: an integer primary key column. Returns the final :class:`Progress`.
    Raises what the database raises once lock retries are spent.
    """
    pause = _default_pause() if pause is None else pause
    echo = echo or _progress_to_stderr
    column = table.c[key]
    with _batches_committed(connection) as bind:
        low, high, total = bind.execute(
            sa.select(sa.func.min(column), sa.func.max(column), sa.func.count()).where(pending)
        ).one()
        progress = Progress(table.name, int(total), started=time.monotonic())
        if not total:
            echo(f"backfill {table.name}: nothing pending")
            return progress
        last, shown = low - 1, 0.0
        while last < high:
            batch = (
                sa.update(table)
                .where(pending, column > last, column <= last + batch_size)
                .values(values)
            )
            updated = retrying(
                partial(_rowcount, bind, batch),
                f"{table.name} batch after {key} {last}",
                before_retry=bind.rollback if connection is not None else None,
            )
            if connection is not None and bind.in_transaction():
                bind.commit()
            progress.done += max(updated, 0)
            last += batch_size
            if time.monotonic() - shown >= PROGRESS_EVERY or last >= high:
                echo(progress.line())
                shown = time.monotonic()
            if pause and last < high:
                time.sleep(pause)
    return progress
