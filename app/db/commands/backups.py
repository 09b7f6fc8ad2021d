"""Backups: ``flask db backup`` and ``restore`` (checked, confirmed, backed up first)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from app.db.backup import BackupError, read_backup, replace_database
from app.db.backup_check import check_backup_tables
from app.db.commands._common import _at, _backup_now, _engine, _fail, _handles_errors, _status, _url
from app.db.status import MigrationStatus


@click.command("backup")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@with_appcontext
@_handles_errors
def backup_database(output: Path | None) -> None:
    """Back up the database (SQLite online backup, pg_dump for PostgreSQL)."""
    _backup_now(_engine(), "manual", output)


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@with_appcontext
@_handles_errors
def restore_database(file: Path, yes: bool) -> None:
    """Replace the database with a backup made by `flask db backup`.

    The backup is checked first (readable, an alembic_version row, the
    application's tables at that revision), the current database is backed
    up, and the restore is recorded in the restored database's audit table.
    """
    engine = _engine()
    try:
        contents = read_backup(engine.url, file)
        check_backup_tables(file, contents)
    except BackupError as error:
        _fail(f"Refused: {error}. Nothing was changed.")
    if not yes and _interactive():
        click.confirm(
            f"Replace every table of {_url(engine)} with {file} "
            f"(at {', '.join(contents.revisions)})? The current database is backed up first.",
            abort=True,
        )
    replace_database(engine, file, contents, lambda engine: _backup_now(engine, "before-restore"))
    after = _status(engine)
    click.echo(f"Restored {_url(engine)} from {file}.")
    click.echo(_position(after))


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _position(status: MigrationStatus) -> str:
    """Where the database stands against the code's head, in one line."""
    at = _at(status)
    head = ", ".join(status.heads) or "none"
    if status.pending:
        return (
            f"The database is at {at}; the code's head is {head}: {len(status.pending)} "
            "revision(s) pending (make migration-run)."
        )
    if status.tampered:
        return f"The database is at {at}; the code's head is {head}: see make migration-verify."
    return f"The database is at {at}, the code's head."
