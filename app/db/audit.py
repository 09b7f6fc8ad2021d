"""The migration audit table: what was applied or reverted, when, and from which file.

Every applied (or reverted) revision adds a row with the SHA-256 of its file,
the time, the direction and the duration. ``flask db verify`` compares the
checksums with the files on disk; ``flask db accept`` records a reviewed change.

The table belongs to the tooling, not to the schema: it is created on the
first recorded step, autogenerate ignores it (``include_name``), and it stays
when the schema is downgraded to base, as the history of what happened.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    select,
)

AUDIT_TABLE_NAME = "migration_audit"
VERSION_TABLE_NAME = "alembic_version"
# Tables in the database that are not part of the application's schema.
TOOLING_TABLES = frozenset({AUDIT_TABLE_NAME, VERSION_TABLE_NAME})

UPGRADE = "upgrade"
DOWNGRADE = "downgrade"
ACCEPT = "accept"  # a reviewed change to an applied file: its new checksum
FORGET = "forget"  # an applied revision whose file was removed on purpose
RESTORE = "restore"  # the database was replaced by a backup (revision: the backup's)

audit_metadata = MetaData()
audit_table = Table(
    AUDIT_TABLE_NAME,
    audit_metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", String(64), nullable=False, index=True),
    Column("filename", String(255), nullable=True),
    Column("checksum", String(64), nullable=True),
    Column("direction", String(16), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Integer, nullable=True),
    Column("recorded_by", String(255), nullable=False),
)


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Autogenerate's ``include_name``: compare the application's tables, not the audit table."""
    return not (type_ == "table" and name == AUDIT_TABLE_NAME)


def file_checksum(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a revision file, with line endings normalised (checkouts may differ)."""
    content = Path(path).read_bytes().replace(b"\r\n", b"\n")
    return hashlib.sha256(content).hexdigest()


def _recorded_by() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"[:255]


def record(
    connection: Connection,
    *,
    revision: str,
    direction: str,
    path: str | os.PathLike[str] | None,
    duration_ms: int | None = None,
) -> None:
    """Add one row (creating the table on first use), in the caller's transaction."""
    audit_table.create(connection, checkfirst=True)
    connection.execute(
        audit_table.insert().values(
            revision=revision,
            filename=Path(path).name if path else None,
            checksum=file_checksum(path) if path and Path(path).exists() else None,
            direction=direction,
            recorded_at=datetime.now(UTC),
            duration_ms=duration_ms,
            recorded_by=_recorded_by(),
        )
    )


@dataclass(frozen=True)
class AuditEntry:
    """What the audit table says about one revision (its latest rows)."""

    revision: str
    filename: str | None
    applied: bool  # the latest row is an upgrade or an acceptance
    checksum: str | None  # from the latest upgrade or acceptance
    upgraded: bool = False  # some run applied it here (an upgrade row), not only accepted


def read_audit(connection: Connection) -> dict[str, AuditEntry]:
    """The latest state of every revision the audit table knows (empty if there is no table)."""
    if not inspect(connection).has_table(AUDIT_TABLE_NAME):
        return {}
    rows = connection.execute(
        select(
            audit_table.c.revision,
            audit_table.c.filename,
            audit_table.c.checksum,
            audit_table.c.direction,
        ).order_by(audit_table.c.id)
    )
    entries: dict[str, AuditEntry] = {}
    for revision, filename, checksum, direction in rows:
        if direction == RESTORE:  # a record of the restore, not of a revision
            continue
        previous = entries.get(revision)
        upgraded = direction == UPGRADE or (previous is not None and previous.upgraded)
        if direction in (UPGRADE, ACCEPT):
            entries[revision] = AuditEntry(revision, filename, True, checksum, upgraded)
        else:
            entries[revision] = AuditEntry(
                revision,
                filename or (previous.filename if previous else None),
                False,
                previous.checksum if previous else None,
                upgraded,
            )
    return entries


# The key, in the Alembic configuration's ``attributes``, of the revisions a run finished.
COMPLETED_STEPS = "completed_steps"
# Set in the connection's ``info`` by a step that committed part of itself (a backfill's
# batches, app/db/backfill.py): the recorder then commits the step's version row too.
COMMITTED_MID_STEP = "committed_mid_step"


class AuditRecorder:
    """An ``on_version_apply`` callback that records each step with its duration.

    Alembic calls it after each step; the duration is the time since the run
    started or since the previous step ended. A step that committed part of
    itself (:data:`COMMITTED_MID_STEP`) is committed whole here, its version
    row with it, when the run is one transaction (SQLite): otherwise a later
    revision's failure rolled back its version row but not what it had
    committed, and the next run repeated it ("duplicate column").
    """

    def __init__(self, completed: list[str] | None = None) -> None:
        self._since = time.perf_counter()
        # The revisions whose step finished in this run, in order (``flask db run`` names
        # the one after the last as the one that failed).
        self.completed = completed if completed is not None else []

    def start(self) -> None:
        self._since = time.perf_counter()

    def __call__(
        self, *, ctx: MigrationContext, step: MigrationInfo, heads: Any, run_args: Any
    ) -> None:
        now = time.perf_counter()
        duration_ms = round((now - self._since) * 1000)
        self._since = now
        if ctx.as_sql or step.is_stamp or ctx.connection is None:
            return
        script = step.up_revision
        assert isinstance(script, Script)
        self.completed.append(script.revision)
        record(
            ctx.connection,
            revision=script.revision,
            direction=UPGRADE if step.is_upgrade else DOWNGRADE,
            path=script.path,
            duration_ms=duration_ms,
        )
        if ctx.connection.info.pop(COMMITTED_MID_STEP, False) and not ctx.opts.get(
            "transaction_per_migration"
        ):
            with ctx.autocommit_block():  # commits the step, then the run goes on in a new one
                pass


def most_recent(connection: Connection, revisions: tuple[str, ...]) -> str:
    """Of these applied revisions, the one applied last (by the audit table; else the last)."""
    if inspect(connection).has_table(AUDIT_TABLE_NAME):
        found = connection.execute(
            select(audit_table.c.revision)
            .where(audit_table.c.revision.in_(revisions), audit_table.c.direction == UPGRADE)
            .order_by(audit_table.c.id.desc())
            .limit(1)
        ).scalar()
        if found is not None:
            return str(found)
    return revisions[-1]
