"""Database backups before production migrations, and restoring them.

``replace_database`` is the whole restore: under the migration lock, a backup
of what is there first, then the restore, recorded in the restored database.

SQLite: the online backup API (consistent while the application runs).
PostgreSQL: ``pg_dump`` in custom format; restoring drops the ``public``
schema and replays the dump in one transaction (``pg_restore | psql -1``), so
tables created after the backup do not linger. The password never appears on
a command line: it is handed to the tools through ``PGPASSWORD``.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, Engine

from app.data.change_feed import announce_every_table
from app.db.audit import RESTORE, record
from app.db.lock import migration_lock

RESET_PUBLIC_SCHEMA = "DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n"
SQLITE_HEADER = b"SQLite format 3\x00"
VERSION_TABLE = "alembic_version"


class BackupError(RuntimeError):
    """A backup or restore failed; the message says why."""


def backup_path(directory: str | Path, url: URL, label: str) -> Path:
    """``<directory>/<database>-<UTC time>-<label>.<ext>``."""
    name = Path(url.database or "database").stem
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    suffix = ".sqlite3" if url.get_backend_name() == "sqlite" else ".dump"
    safe_label = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "backup"
    return Path(directory) / f"{name}-{stamp}-{safe_label}{suffix}"


def backup(url: URL, destination: Path) -> Path:
    """Write a backup of the database at ``url`` to ``destination``."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    backend = url.get_backend_name()
    if backend == "sqlite":
        _sqlite_copy(_sqlite_file(url), destination)
    elif backend == "postgresql":
        dump = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges"]
        _run([*dump, f"--file={destination}", *_libpq_args(url)], url)
    else:  # pragma: no cover
        raise BackupError(f"no backup method for {backend}")
    return destination


def restore(url: URL, source: Path) -> None:
    """Replace the database at ``url`` with the backup in ``source``."""
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    backend = url.get_backend_name()
    if backend == "sqlite":
        _sqlite_copy(source, _sqlite_file(url))
    elif backend == "postgresql":
        _restore_postgresql(url, source)
    else:  # pragma: no cover
        raise BackupError(f"no restore method for {backend}")


@dataclass(frozen=True)
class BackupContents:
    """What a backup file holds, read without touching the database it would replace."""

    revisions: tuple[str, ...]  # alembic_version's rows
    tables: frozenset[str]


def read_backup(url: URL, source: Path) -> BackupContents:
    """Check that ``source`` is a readable backup for this backend; say what it holds.

    SQLite: a SQLite file that passes ``PRAGMA integrity_check``. PostgreSQL: a
    custom-format dump that ``pg_restore --list`` reads. Either way the
    ``alembic_version`` table and its row. Raises :class:`BackupError` (one line).
    """
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    if source.stat().st_size == 0:
        raise BackupError(f"{source} is empty (0 bytes): not a backup")
    backend = url.get_backend_name()
    if backend == "sqlite":
        contents = _read_sqlite_backup(source)
    elif backend == "postgresql":
        contents = _read_postgresql_backup(url, source)
    else:  # pragma: no cover
        raise BackupError(f"no restore method for {backend}")
    if VERSION_TABLE not in contents.tables:
        raise BackupError(
            f"{source} has no {VERSION_TABLE} table: not a backup of this application's database"
        )
    if not contents.revisions:
        raise BackupError(f"{source} records no migration ({VERSION_TABLE} is empty)")
    return contents


def _read_sqlite_backup(source: Path) -> BackupContents:
    with source.open("rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise BackupError(f"{source} is not a SQLite database")
    try:
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as con:
            integrity = [row[0] for row in con.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                raise BackupError(f"{source} fails PRAGMA integrity_check: {integrity[0]}")
            tables = frozenset(
                row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            )
            revisions: tuple[str, ...] = ()
            if VERSION_TABLE in tables:
                revisions = tuple(
                    row[0] for row in con.execute("SELECT version_num FROM alembic_version")
                )
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{source} cannot be read as a SQLite database: {error}") from None
    return BackupContents(revisions, tables)


TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (?P<schema>\S+) (?P<name>\S+) ", re.MULTILINE)


def _read_postgresql_backup(url: URL, source: Path) -> BackupContents:
    toc = _run(["pg_restore", "--list", str(source)], url).decode(errors="replace")
    tables = frozenset(m.group("name") for m in TOC_TABLE.finditer(toc) if m["schema"] == "public")
    revisions: tuple[str, ...] = ()
    if VERSION_TABLE in tables:
        data = _run(
            ["pg_restore", "--data-only", f"--table={VERSION_TABLE}", "--file=-", str(source)], url
        ).decode(errors="replace")
        revisions = tuple(_copy_rows(data))
    return BackupContents(revisions, tables)


def _copy_rows(sql: str) -> list[str]:
    """The first column of the rows of the dump's ``COPY … FROM stdin`` block."""
    rows: list[str] = []
    inside = False
    for line in sql.splitlines():
        if line.startswith("COPY "):
            inside = True
        elif inside and line == "\\.":
            inside = False
        elif inside and line:
            rows.append(line.split("\t")[0])
    return rows


def replace_database(
    engine: Engine,
    source: Path,
    contents: BackupContents,
    back_up_first: Callable[[Engine], object],
) -> None:
    """Replace ``engine``'s database with the checked backup ``source`` holding ``contents``.

    Under the migration lock (no run or other restore meanwhile):
    ``back_up_first(engine)`` when there is a database to lose, the restore,
    then, in the restored database, an audit row naming the backup and its
    checksum and every table announced changed (every replica's response
    cache starts afresh). Pooled connections are dropped at the end: they may
    have cached the old schema.
    """
    with migration_lock(engine):
        if _has_database(engine):
            back_up_first(engine)
        restore(engine.url, source)
        with engine.begin() as connection:
            # The backup's name and checksum, in the audit table of the restored database.
            record(
                connection, revision=",".join(contents.revisions), direction=RESTORE, path=source
            )
            announce_every_table(connection)  # every replica's response cache starts afresh
    engine.dispose()  # pooled connections may have cached the old schema


def _has_database(engine: Engine) -> bool:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        return bool(database) and Path(str(database)).is_file()
    return True


def restore_command(source: Path) -> str:
    return f"make db-restore file={source}"


def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _sqlite_copy(source: Path, destination: Path) -> None:
    if not source.exists():
        raise BackupError(f"no SQLite database at {source}")
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(destination)) as dst:
        src.backup(dst)


def _libpq_args(url: URL) -> list[str]:
    args = ["--dbname", url.database or "postgres"]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    return args


def _environment(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def _run(command: list[str], url: URL, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(  # noqa: S603 - arguments built above, no shell
            command, input=stdin, capture_output=True, env=_environment(url), check=False
        )
    except FileNotFoundError:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL client tools)") from None
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _restore_postgresql(url: URL, source: Path) -> None:
    sql = _run(["pg_restore", "--no-owner", "--no-privileges", "--file=-", str(source)], url)
    psql = ["psql", "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1"]
    _run([*psql, *_libpq_args(url)], url, stdin=RESET_PUBLIC_SCHEMA.encode() + sql)
