"""The migration workflow as ``flask db`` subcommands, added to Flask-Migrate's group.

generate, create, run, revert, status, verify, accept, lint, gate, sql,
backup and restore. Flask-Migrate's own subcommands (upgrade, downgrade,
migrate, current, …) stay as they are. Exit codes: :class:`ExitCode`.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click
from alembic import command
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate.cli import db as db_group
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.data.change_feed import announce_every_table
from app.data.database import connection_problem
from app.db import history
from app.db.alembic_setup import (
    alembic_config,
    migrations_directory,
    script_directory,
    set_verbose,
)
from app.db.audit import ACCEPT, FORGET, RESTORE, most_recent, record
from app.db.backup import (
    BackupError,
    backup,
    backup_path,
    read_backup,
    restore,
    restore_command,
)
from app.db.backup_check import check_backup_tables
from app.db.diagnose import (
    BANNER_ATTRIBUTE,
    BLIND_SPOTS_ATTRIBUTE,
    DatabaseBehindHead,
    MigrationRefused,
    diagnose,
)
from app.db.exit_codes import ExitCode
from app.db.gate import gate_problems
from app.db.lint import (
    LintError,
    LintResult,
    lint_revision,
    quiet_alembic,
    record_review,
    render_sql,
    report,
)
from app.db.lock import migration_lock
from app.db.phases import (
    CONTRACT,
    EXPAND,
    PHASES,
    PhaseOrderError,
    RunPlan,
    contract_revisions,
    out_of_order,
    pending_revisions,
    phase_of,
    run_plan,
)
from app.db.release_command import release
from app.db.sqlite_batch import leftover_batch_tables
from app.db.status import MigrationStatus, RevisionStatus, State, read_status
from app.extensions import db

DATA_MIGRATION_ATTRIBUTE = "data_migration"
PHASE_ATTRIBUTE = "phase"  # create --phase, read by script.py.mako


# --- plumbing ---------------------------------------------------------------


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


def _message(name: str) -> str:
    """``AddUserTable`` → ``add user table`` (the file name's slug comes from it)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").strip().lower()


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


# --- authoring ----------------------------------------------------------------


@click.command("generate")
@click.argument("name")
@with_appcontext
@_handles_errors
def generate(name: str) -> None:
    """Generate a migration from model changes (autogenerate), then review it."""
    script = script_directory()
    heads = list(script.get_heads())
    if len(heads) > 1:
        _fail(f"Error: {history.several_heads_advice(heads)}")
    engine = _engine()
    with engine.connect() as connection:
        status = read_status(script, connection)
        if status.elsewhere:
            raise DatabaseBehindHead("Cannot generate a migration: " + status.elsewhere_recipe())
        if status.pending or set(status.current) != set(status.heads):
            causes = diagnose(connection, db.metadata, script, _url(engine), empty_revision=False)
            raise DatabaseBehindHead(
                "Cannot generate a migration: the database is not at head.\n"
                + "\n".join(f"  - {cause}" for cause in causes)
            )
    config = alembic_config("autogenerate")
    written = command.revision(config, message=_message(name), autogenerate=True)
    created = [s for s in (written if isinstance(written, list) else [written]) if s is not None]
    for written_script in created:
        click.echo(f"Generated {written_script.path} ({phase_of(written_script)})")
        banners = config.attributes.get(BANNER_ATTRIBUTE) or {}
        for operation in banners.get(written_script.revision, []):
            click.echo(f"  DESTRUCTIVE: {operation}")
    if len(created) > 1:
        click.echo(
            "The change has operations of both phases: its expand revision runs before the "
            "new code ships, its contract revision after every replica runs it "
            "(docs/migrations.md, Releasing)."
        )
    notes = config.attributes.get(BLIND_SPOTS_ATTRIBUTE) or []
    if notes:
        click.echo("Autogenerate cannot see everything in this change; check by hand:")
        for note in notes:
            click.echo(f"  - {note}")
    for written_script in created:
        _review(written_script)


def _review(created: Script) -> None:
    click.echo("\nPostgreSQL SQL of the upgrade (review it before production):\n")
    click.echo(render_sql(alembic_config, created))
    try:
        result = lint_revision(alembic_config, created)
    except LintError as error:
        click.echo(f"Lint skipped: {error}")
        return
    click.echo("\n".join(report(result)))
    if result.blocking:
        click.echo(
            "Check these hazards; once you have, record the review (the revision file "
            f'stays as it is): make migration-review rev={created.revision} why="<why it is safe>"'
        )
    click.echo(
        "Next: review the file, `make migration-run`, then test the way back: "
        "`make migration-revert && make migration-run`."
    )


PHASE_CHOICE = click.Choice(PHASES)


@click.command("create")
@click.argument("name")
@click.option("--data", is_flag=True, help="Use the data-migration template.")
@click.option(
    "--phase",
    type=PHASE_CHOICE,
    default=EXPAND,
    show_default=True,
    help="contract: runs only after every replica runs the new code.",
)
@with_appcontext
@_handles_errors
def create(name: str, data: bool, phase: str) -> None:
    """Create an empty migration (--data: a data-migration template; --phase contract)."""
    config = alembic_config()
    config.attributes[DATA_MIGRATION_ATTRIBUTE] = data
    config.attributes[PHASE_ATTRIBUTE] = phase
    created = command.revision(config, message=_message(name))
    assert isinstance(created, Script)
    click.echo(f"Created {created.path} ({phase})")


# --- running --------------------------------------------------------------------


@click.command("run")
@click.option(
    "--phase",
    type=PHASE_CHOICE,
    default=None,
    help="expand: up to the first contract revision (before the new code ships); "
    "contract: the rest (after every replica runs it). Default: everything (development).",
)
@with_appcontext
@_handles_errors
def run(phase: str | None) -> None:
    """Apply pending migrations: locked, verified, backed up first in production."""
    engine = _engine()
    with migration_lock(engine):
        status = _status(engine)
        if len(status.heads) > 1:
            _fail(f"Error: nothing was applied. {history.several_heads_advice(status.heads)}")
        if status.elsewhere and not _production():
            click.echo(f"Warning: {status.elsewhere_recipe()}", err=True)
            click.echo("Nothing was applied; the database stays as it is (development).")
            return
        _refuse_tampered(status, "Nothing was applied.")
        if status.problems:
            _fail("Error: " + "; ".join(status.problems))
        if not status.pending:
            click.echo(f"No pending migrations: the database is at head ({_at(status)}).")
            return
        plan = _plan(status, phase)
        if not plan.revisions:
            click.echo(
                f"Nothing to apply in the expand phase: the next pending revision, "
                f"{status.pending[0].revision}, is a contract revision "
                "(make migration-run phase=contract, once every replica runs the new code)."
            )
            return
        if _production():
            _backup_now(engine, f"before-upgrade-{'-'.join(status.heads)}")
        started = time.perf_counter()
        command.upgrade(alembic_config(), plan.target)
        elapsed = time.perf_counter() - started
    click.echo(f"Applied {len(plan.revisions)} migration(s) in {elapsed:.2f}s:")
    for script in plan.revisions:
        click.echo(f"  {script.revision}  {phase_of(script):<8}  {Path(script.path).name}")
    left = len(status.pending) - len(plan.revisions)
    if left:
        click.echo(f"{left} contract revision(s) left for `make migration-run phase=contract`.")


def _plan(status: MigrationStatus, phase: str | None) -> RunPlan:
    """What this run applies; refuses (exit 7) what the phases forbid."""
    scripts = script_directory()
    current = status.current[0] if status.current else None
    try:
        plan = run_plan(scripts, current, phase)
    except PhaseOrderError as error:
        _fail(f"Error: nothing was applied: {error}", ExitCode.PHASE)
    misplaced = out_of_order(pending_revisions(scripts, current)) if phase == EXPAND else []
    if misplaced:
        click.echo(
            f"Warning: expand revision(s) {', '.join(s.revision for s in misplaced)} follow a "
            "contract revision: this run stops before them, and the contract run refuses "
            "until they are moved before it.",
            err=True,
        )
    if phase is None and _production() and status.current:  # on an empty database no release serves
        contract = contract_revisions(plan.revisions)
        if contract:
            _fail(
                "Error: nothing was applied: contract revision(s) "
                f"{', '.join(s.revision for s in contract)} break the release still serving. "
                "In production, run `make migration-run phase=expand`, deploy the new code to "
                "every replica, then `make migration-run phase=contract`.",
                ExitCode.PHASE,
            )
    return plan


@click.command("revert")
@with_appcontext
@_handles_errors
def revert() -> None:
    """Revert the last applied migration (one step; run it again for more)."""
    engine = _engine()
    with migration_lock(engine):
        status = _status(engine)
        _refuse_tampered(status, "Nothing was reverted.")
        if status.problems:
            _fail("Error: " + "; ".join(status.problems))
        if not status.current:
            click.echo("Nothing to revert: no migration is applied (the database is at base).")
            return
        target = "-1"
        if len(status.heads) > 1:
            click.echo(f"Warning: {history.several_heads_advice(status.heads)}", err=True)
        if len(status.current) > 1:  # one step down the branch applied last
            with engine.connect() as connection:
                target = f"{most_recent(connection, status.current)}@-1"
        _warn_one_way(status.current)
        if _production():
            _backup_now(engine, f"before-revert-{'-'.join(status.current)}")
        command.downgrade(alembic_config(), target)
        after = _status(engine)
    reverted = [r for r in _applied(status) if r not in _applied(after)]
    click.echo(f"Reverted {', '.join(reverted) or 'nothing'}; the database is now at {_at(after)}.")


def _warn_one_way(current: tuple[str, ...]) -> None:
    """Say so when the revision to revert is a contract one: its downgrade restores no data."""
    scripts = script_directory()
    for revision in current:
        script = scripts.get_revision(revision)
        if script is not None and phase_of(script) == CONTRACT:
            click.echo(
                f"Warning: {revision} is a contract revision, one-way where its downgrade "
                "cannot bring data back: the columns and tables it dropped come back empty. "
                "In production, restore the backup taken before it instead (make db-restore).",
                err=True,
            )


def _applied(status: MigrationStatus) -> list[str]:
    return [r.revision for r in status.revisions if r.state in (State.APPLIED, State.CHANGED)]


def _refuse_tampered(status: MigrationStatus, nothing_done: str) -> None:
    """Refuse on changed or missing revisions, except amendments in development.

    An amendment: a changed revision whose file exists only on this branch
    (not on main), outside production. That is the everyday "generate, apply,
    tweak, re-apply" loop; in production the checksum rule stays absolute.
    """
    amended = _amendments(status)
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


def _amendments(status: MigrationStatus) -> list[RevisionStatus]:
    changed = status.having(State.CHANGED)
    if _production() or not changed:
        return []
    branch_only = history.branch_only(Path(migrations_directory()) / "versions")
    versions = Path(migrations_directory()) / "versions"
    return [r for r in changed if (versions / str(r.filename)).resolve() in branch_only]


def _at(status: MigrationStatus) -> str:
    return ", ".join(status.current) or "base"


# --- inspecting -------------------------------------------------------------------


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


# --- review and CI ------------------------------------------------------------------


@click.command("lint")
@click.argument("revisions", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Lint every revision.")
@with_appcontext
@_handles_errors
def lint(revisions: tuple[str, ...], everything: bool) -> None:
    """squawk over new revisions' SQL (default: those not on main); hazards fail."""
    script = script_directory()
    chosen = _lint_selection(script, revisions, everything)
    if not chosen:
        click.echo("No new revisions to lint.")
        return
    results: list[LintResult] = []
    for found in chosen:
        results.append(lint_revision(alembic_config, found))
        click.echo("\n".join(report(results[-1])))
    blocking = [r for r in results if r.blocking]
    if blocking:
        _fail(
            f"{len(blocking)} revision(s) with unreviewed hazards. Check each one; then record "
            "the review, which leaves the revision file untouched: "
            + "; ".join(
                f'make migration-review rev={r.script.revision} why="<why it is safe>"'
                for r in blocking
            )
        )
    click.echo(f"{len(results)} revision(s) linted, no unreviewed hazards.")


def _lint_selection(
    script: ScriptDirectory, revisions: tuple[str, ...], everything: bool
) -> list[Script]:
    every = list(reversed(list(script.walk_revisions())))
    if everything:
        return every
    if revisions:
        found = [script.get_revision(r) for r in revisions]
        return [f for f in found if f is not None]
    versions = Path(migrations_directory()) / "versions"
    root = history.repository_root(versions)
    branch, base = history.main_base(root)
    added = {p.resolve() for p in history.added_since(root, base, versions)}
    click.echo(f"Revisions added since {branch} ({base[:12]}): {len(added)}")
    return [s for s in every if Path(s.path).resolve() in added]


@click.command("review")
@click.argument("revision")
@click.argument("reason")
@with_appcontext
@_handles_errors
def review(revision: str, reason: str) -> None:
    """Record that a revision's lint hazards were checked (in migrations/reviewed.txt)."""
    if not reason.strip():
        _fail("Say why the hazards are safe.", ExitCode.USAGE)
    found = script_directory().get_revision(revision)
    if found is None:
        _fail(f"Error: no revision {revision}")
    assert found is not None
    path = record_review(migrations_directory(), found.revision, reason)
    click.echo(f"Recorded the review of {found.revision} in {path}; commit it with the revision.")


@click.command("gate")
@with_appcontext
@_handles_errors
def gate() -> None:
    """CI gate: one head (migrations/HEAD); run, revert, run on scratch SQLite and PostgreSQL
    databases, which then match the models; no revision already on main modified."""
    problems = gate_problems()
    for problem in problems:
        click.echo(f"FAIL  {problem}", err=True)
    if problems:
        _fail(f"{len(problems)} migration check(s) failed.")
    click.echo("Migration checks passed.")


# --- backups ----------------------------------------------------------------------


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
    with migration_lock(engine):
        if _has_database(engine):
            _backup_now(engine, "before-restore")
        restore(engine.url, file)
        with engine.begin() as connection:
            # The backup's name and checksum, in the audit table of the restored database.
            record(connection, revision=",".join(contents.revisions), direction=RESTORE, path=file)
            announce_every_table(connection)  # every replica's response cache starts afresh
    engine.dispose()  # pooled connections may have cached the old schema
    after = _status(engine)
    click.echo(f"Restored {_url(engine)} from {file}.")
    click.echo(_position(after))


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _has_database(engine: Engine) -> bool:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        return bool(database) and Path(str(database)).is_file()
    return True


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


COMMANDS = (
    generate,
    create,
    run,
    revert,
    status,
    clean,
    verify,
    accept,
    sql,
    lint,
    review,
    gate,
    release,
    backup_database,
    restore_database,
)


def add_workflow_subcommands(_app: Flask) -> None:
    """Add the workflow's subcommands to Flask-Migrate's ``flask db`` group."""
    from app.db.discard import discard  # its own module; registered here alone

    for subcommand in (*COMMANDS, discard):
        db_group.add_command(subcommand)
