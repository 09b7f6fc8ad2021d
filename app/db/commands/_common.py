"""What the ``flask db`` workflow commands share.

Failing in one line (and ``-v`` for Alembic's log), the engine and the status,
a backup before a change, and refusing revisions changed since they were applied.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click
from alembic.util import CommandError
from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.data.database import connection_problem
from app.db import history
from app.db.alembic_setup import script_directory, set_verbose
from app.db.amendments import amendments
from app.db.backup import BackupError, backup, backup_path, restore_command
from app.db.diagnose import MigrationRefused
from app.db.exit_codes import ExitCode
from app.db.lint import LintError, quiet_alembic
from app.db.phases import PHASES
from app.db.status import MigrationStatus, RevisionStatus, State, read_status
from app.extensions import db

PHASE_CHOICE = click.Choice(PHASES)


def _fail(message: str, code: ExitCode = ExitCode.FAILED) -> None:
    click.echo(message, err=True)
    click.get_current_context().exit(int(code))


def _handles_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Known failures become one message on stderr and exit code 1; ``-v`` shows Alembic's log.

    Without ``-v`` Alembic's own lines ("Context impl …", "Will assume
    transactional DDL", "Running upgrade …", "Detected sequence …") stay out
    of the workflow's output.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, verbose: bool = False, **kwargs: Any) -> Any:
        set_verbose(verbose)
        try:
            with nullcontext() if verbose else quiet_alembic():
                return function(*args, **kwargs)
        except MigrationRefused as error:
            _fail(f"Error: {error}", error.exit_code)
        except (CommandError, SQLAlchemyError, BackupError, LintError, history.GitError) as error:
            _fail(f"Error: {connection_problem(error, db.engine.url) or str(error).strip()}")
        return None

    verbose = click.option("-v", "--verbose", is_flag=True, help="Show Alembic's own log lines.")
    return verbose(wrapper)


def _engine() -> Engine:
    engine: Engine = db.engine
    return engine


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _status(engine: Engine) -> MigrationStatus:
    with engine.connect() as connection:
        return read_status(script_directory(), connection)


def _production() -> bool:
    return current_app.config.get("APP_ENV") == "production"


def _backup_now(engine: Engine, label: str, output: Path | None = None) -> Path:
    """Back the database up to ``output``, or to a labelled file in the backup directory."""
    if output is None:
        output = backup_path(current_app.config["BACKUP_DIRECTORY"], engine.url, label)
    path = backup(engine.url, output)
    click.echo(f"Backup written: {path}")
    click.echo(f"Restore it with: {restore_command(path)}")
    return path


def _report_tampered(status: MigrationStatus, tampered: list[RevisionStatus] | None = None) -> None:
    click.echo("Applied migrations changed since they were applied:", err=True)
    for revision in status.tampered if tampered is None else tampered:
        why = (
            "its file is missing"
            if revision.state is State.MISSING
            else "its file changed since it was applied"
        )
        click.echo(f"  {revision.line}  <- {why}", err=True)
    if status.elsewhere:
        click.echo(status.elsewhere_recipe(), err=True)
        return
    click.echo(
        "Never edit an applied migration: undo the edit (git checkout -- <file>) and write a "
        "new revision. If the change is reviewed and harmless (comments, formatting), or the "
        "file was removed on purpose, record that with `make migration-accept rev=<id>`.",
        err=True,
    )


def _refuse_tampered(status: MigrationStatus, nothing_done: str) -> None:
    """Refuse on changed or missing revisions, except amendments in development
    (the rule: app/db/amendments.py)."""
    amended = amendments(status, production=_production())
    blocking = [r for r in status.tampered if r not in amended]
    if blocking:
        _report_tampered(status, blocking)
        _fail(nothing_done, ExitCode.CHANGED)
    for revision in amended:
        click.echo(
            f"Warning: {revision.revision} ({revision.filename}) changed since it was applied. "
            "Its file exists only on this branch, so in development that is an amendment: "
            "`make migration-revert` then `make migration-run` applies the new version. "
            "Once it is on main, it is immutable.",
            err=True,
        )


def _refuse_never_ran(
    status: MigrationStatus, nothing_done: str, among: tuple[str, ...] | None = None
) -> None:
    """Refuse (exit 1) when a revision counted as applied never ran here (a rebase: the
    recipe, ``MigrationStatus.never_ran_recipe``); ``among``: only when it is one of these."""
    never_ran = {r.revision for r in status.never_ran}
    if never_ran and (among is None or never_ran & set(among)):
        _fail(f"Error: {nothing_done}. {status.never_ran_recipe()}")


def _at(status: MigrationStatus) -> str:
    return ", ".join(status.current) or "base"
