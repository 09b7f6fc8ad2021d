"""Inspecting: ``flask db status``, ``clean``, ``verify``, ``accept`` and ``sql``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask.cli import with_appcontext

from app.db import history
from app.db.alembic_setup import alembic_config, migrations_directory, script_directory
from app.db.audit import ACCEPT, FORGET, record
from app.db.commands._common import (
    _engine,
    _fail,
    _handles_errors,
    _report_tampered,
    _status,
    _url,
)
from app.db.exit_codes import ExitCode
from app.db.lint import render_sql
from app.db.lock import migration_lock
from app.db.sqlite_batch import leftover_batch_tables
from app.db.status import RevisionStatus, State, read_status


@click.command("status")
@click.option(
    "--check",
    is_flag=True,
    help="Exit 3 when revisions are pending (for CI and scripts); without it, pending is 0.",
)
@with_appcontext
@_handles_errors
def status(check: bool) -> None:
    """One line per revision, oldest first: [X] applied, [ ] pending, [M] changed, [?] missing."""
    engine = _engine()
    current = _status(engine)
    click.echo(f"Migrations in {migrations_directory()} for {_url(engine)}")
    for revision in current.revisions:
        click.echo(revision.line)
    for problem in current.problems:
        click.echo(f"Problem: {problem}")
    for note in current.leftover_notes:
        click.echo(f"Problem: {note}")
    if len(current.heads) > 1:
        click.echo(f"Problem: {history.several_heads_advice(current.heads)}")
    if current.elsewhere:
        click.echo(f"Problem: {current.elsewhere_recipe()}")
    click.echo(current.summary())
    code = current.exit_code
    if code is ExitCode.PENDING and not check:
        code = ExitCode.OK  # a report, as `typeorm migration:show` and `showmigrations`
    click.get_current_context().exit(int(code))


@click.command("clean")
@with_appcontext
@_handles_errors
def clean() -> None:
    """SQLite: drop the _alembic_tmp_* tables a failed batch migration left behind."""
    engine = _engine()
    with migration_lock(engine), engine.begin() as connection:
        leftovers = leftover_batch_tables(connection)
        for name in leftovers:
            connection.exec_driver_sql(f'DROP TABLE "{name}"')
    if not leftovers:
        click.echo("Nothing to clean: no table left behind by a failed batch migration.")
        return
    click.echo(f"Dropped {', '.join(leftovers)} (left behind by a failed batch migration).")


@click.command("verify")
@with_appcontext
@_handles_errors
def verify() -> None:
    """Fail if an applied migration's file changed or disappeared since it was applied."""
    current = _status(_engine())
    if current.tampered:
        _report_tampered(current)
        click.get_current_context().exit(int(ExitCode.CHANGED))
    applied = len(current.having(State.APPLIED))
    click.echo(f"{applied} applied migration(s) match the files they were applied from.")
    for note in current.leftover_notes:
        click.echo(f"Note: {note}")
    if current.unrecorded:
        click.echo(
            f"{len(current.unrecorded)} applied before checksums were recorded; "
            "`flask db accept --all` records them."
        )


@click.command("accept")
@click.argument("revisions", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every changed, missing or unrecorded.")
@with_appcontext
@_handles_errors
def accept(revisions: tuple[str, ...], everything: bool) -> None:
    """Accept a reviewed change to an applied migration (records its new checksum)."""
    if not revisions and not everything:
        _fail("Name the revision(s) to accept, or pass --all.", ExitCode.USAGE)
    engine = _engine()
    script = script_directory()
    with migration_lock(engine), engine.begin() as connection:
        current = read_status(script, connection)
        by_id = {r.revision: r for r in current.revisions}
        chosen: list[RevisionStatus] = (
            current.tampered + current.unrecorded
            if everything
            else [by_id[r] if r in by_id else _unknown(r) for r in revisions]
        )
        for revision in chosen:
            _accept_one(connection, script, revision)
    if not chosen:
        click.echo("Nothing to accept: every applied migration matches its recorded checksum.")


def _unknown(revision: str) -> RevisionStatus:
    raise CommandError(f"{revision} is not an applied revision of this database")


def _accept_one(connection: Any, script: ScriptDirectory, revision: RevisionStatus) -> None:
    if revision.state is State.PENDING:
        raise CommandError(f"{revision.revision} is not applied; there is nothing to accept")
    if revision.state is State.MISSING:
        record(connection, revision=revision.revision, direction=FORGET, path=None)
        click.echo(f"Accepted: {revision.revision} was removed ({revision.filename or 'no file'}).")
        return
    if revision.state is State.APPLIED and revision.checksum_recorded:
        click.echo(f"{revision.revision} already matches its recorded checksum.")
        return
    path = script.get_revision(revision.revision).path
    record(connection, revision=revision.revision, direction=ACCEPT, path=path)
    click.echo(f"Accepted the current {Path(path).name} for {revision.revision}.")


@click.command("sql")
@click.argument("revision", default="head")
@with_appcontext
@_handles_errors
def sql(revision: str) -> None:
    """Print the PostgreSQL SQL of one revision's upgrade (offline, no server needed)."""
    found = script_directory().get_revision(revision)
    if found is None:
        _fail(f"Error: no revision {revision}")
    assert found is not None
    click.echo(render_sql(alembic_config, found))
