"""The migration workflow as ``flask db`` subcommands, added to Flask-Migrate's group.

generate, create, run, revert, status, verify, accept, lint, gate, sql,
backup and restore. Flask-Migrate's own subcommands (upgrade, downgrade,
migrate, current, …) stay as they are. Exit codes: :class:`ExitCode`.
"""

from __future__ import annotations

import functools
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from flask import Flask, current_app, g
from flask.cli import with_appcontext
from flask_migrate.cli import db as db_group
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import SQLAlchemyError

from app.database import connection_problem
from app.db import history
from app.db.audit import ACCEPT, FORGET, include_name, record
from app.db.backup import BackupError, backup, backup_path, restore, restore_command
from app.db.diagnose import (
    BANNER_ATTRIBUTE,
    DatabaseBehindHead,
    MigrationRefused,
    diagnose,
)
from app.db.exit_codes import ExitCode
from app.db.lint import (
    QUIET_ATTRIBUTE,
    LintError,
    LintResult,
    lint_revision,
    render_sql,
    report,
)
from app.db.lock import migration_lock
from app.db.status import MigrationStatus, RevisionStatus, State, read_status
from app.extensions import db

DATA_MIGRATION_ATTRIBUTE = "data_migration"


# --- plumbing ---------------------------------------------------------------


def _fail(message: str, code: ExitCode = ExitCode.FAILED) -> None:
    click.echo(message, err=True)
    click.get_current_context().exit(int(code))


def _handles_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Known failures become one message on stderr and exit code 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except MigrationRefused as error:
            _fail(f"Error: {error}", error.exit_code)
        except (CommandError, SQLAlchemyError, BackupError, LintError, history.GitError) as error:
            _fail(f"Error: {connection_problem(error, db.engine.url) or str(error).strip()}")
        return None

    return wrapper


def _directory() -> str:
    return str(getattr(g, "directory", None) or current_app.extensions["migrate"].directory)


def _config(*opts: str) -> Config:
    config: Config = current_app.extensions["migrate"].migrate.get_config(
        _directory(), opts=list(opts)
    )
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _engine() -> Engine:
    engine: Engine = db.engine
    return engine


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _status(engine: Engine) -> MigrationStatus:
    with engine.connect() as connection:
        return read_status(_script(), connection)


def _message(name: str) -> str:
    """``AddUserTable`` → ``add user table`` (the file name's slug comes from it)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").strip().lower()


def _production() -> bool:
    return current_app.config.get("APP_ENV") == "production"


def _backup_now(engine: Engine, label: str) -> Path:
    directory = current_app.config["BACKUP_DIRECTORY"]
    path = backup(engine.url, backup_path(directory, engine.url, label))
    click.echo(f"Backup written: {path}")
    click.echo(f"Restore it with: {restore_command(path)}")
    return path


def _report_tampered(status: MigrationStatus) -> None:
    click.echo("Applied migrations changed since they were applied:", err=True)
    for revision in status.tampered:
        why = (
            "its file is missing"
            if revision.state is State.MISSING
            else "its file changed since it was applied"
        )
        click.echo(f"  {revision.line}  <- {why}", err=True)
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
    script = _script()
    if len(script.get_heads()) > 1:
        _fail("Error: more than one head: merge them first (flask db merge heads).")
    engine = _engine()
    with engine.connect() as connection:
        status = read_status(script, connection)
        if status.pending or set(status.current) != set(status.heads):
            causes = diagnose(connection, db.metadata, script, _url(engine))
            raise DatabaseBehindHead(
                "Cannot generate a migration: the database is not at head.\n"
                + "\n".join(f"  - {cause}" for cause in causes)
            )
    config = _config("autogenerate")
    created = command.revision(config, message=_message(name), autogenerate=True)
    assert isinstance(created, Script)
    click.echo(f"Generated {created.path}")
    for operation in config.attributes.get(BANNER_ATTRIBUTE) or []:
        click.echo(f"  DESTRUCTIVE: {operation}")
    _review(created)


def _review(created: Script) -> None:
    click.echo("\nPostgreSQL SQL of the upgrade (review it before production):\n")
    click.echo(render_sql(_config, created))
    try:
        result = lint_revision(_config, created)
    except LintError as error:
        click.echo(f"Lint skipped: {error}")
        return
    click.echo("\n".join(report(result)))
    if result.blocking:
        click.echo(
            "Check these hazards; once you have, mark the revision with the line\n"
            "  # migration-lint: reviewed <why it is safe>"
        )
    click.echo(
        "Next: review the file, `make migration-run`, then test the way back: "
        "`make migration-revert && make migration-run`."
    )


@click.command("create")
@click.argument("name")
@click.option("--data", is_flag=True, help="Use the data-migration template.")
@with_appcontext
@_handles_errors
def create(name: str, data: bool) -> None:
    """Create an empty migration (--data: a data-migration template)."""
    config = _config()
    config.attributes[DATA_MIGRATION_ATTRIBUTE] = data
    created = command.revision(config, message=_message(name))
    assert isinstance(created, Script)
    click.echo(f"Created {created.path}")


# --- running --------------------------------------------------------------------


@click.command("run")
@with_appcontext
@_handles_errors
def run() -> None:
    """Apply pending migrations: locked, verified, backed up first in production."""
    engine = _engine()
    with migration_lock(engine):
        status = _status(engine)
        if status.tampered:
            _report_tampered(status)
            _fail("Nothing was applied.", ExitCode.CHANGED)
        if status.problems:
            _fail("Error: " + "; ".join(status.problems))
        if not status.pending:
            click.echo(f"No pending migrations: the database is at head ({_at(status)}).")
            return
        if _production():
            _backup_now(engine, f"before-upgrade-{'-'.join(status.heads)}")
        started = time.perf_counter()
        command.upgrade(_config(), "heads")
        elapsed = time.perf_counter() - started
    click.echo(f"Applied {len(status.pending)} migration(s) in {elapsed:.2f}s:")
    for revision in status.pending:
        click.echo(f"  {revision.revision}  {revision.filename}")


@click.command("revert")
@with_appcontext
@_handles_errors
def revert() -> None:
    """Revert the last applied migration (one step; run it again for more)."""
    engine = _engine()
    with migration_lock(engine):
        status = _status(engine)
        if status.tampered:
            _report_tampered(status)
            _fail("Nothing was reverted.", ExitCode.CHANGED)
        if status.problems:
            _fail("Error: " + "; ".join(status.problems))
        if not status.current:
            click.echo("Nothing to revert: no migration is applied (the database is at base).")
            return
        if _production():
            _backup_now(engine, f"before-revert-{'-'.join(status.current)}")
        command.downgrade(_config(), "-1")
        after = _status(engine)
    click.echo(f"Reverted {', '.join(status.current)}; the database is now at {_at(after)}.")


def _at(status: MigrationStatus) -> str:
    return ", ".join(status.current) or "base"


# --- inspecting -------------------------------------------------------------------


@click.command("status")
@with_appcontext
@_handles_errors
def status() -> None:
    """One line per revision, oldest first: [X] applied, [ ] pending, [M] changed, [?] missing."""
    engine = _engine()
    current = _status(engine)
    click.echo(f"Migrations in {_directory()} for {_url(engine)}")
    for revision in current.revisions:
        click.echo(revision.line)
    for problem in current.problems:
        click.echo(f"Problem: {problem}")
    click.echo(current.summary())
    click.get_current_context().exit(int(current.exit_code))


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
    script = _script()
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
    found = _script().get_revision(revision)
    if found is None:
        _fail(f"Error: no revision {revision}")
    assert found is not None
    click.echo(render_sql(_config, found))


# --- review and CI ------------------------------------------------------------------


@click.command("lint")
@click.argument("revisions", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Lint every revision.")
@with_appcontext
@_handles_errors
def lint(revisions: tuple[str, ...], everything: bool) -> None:
    """squawk over new revisions' SQL (default: those not on main); hazards fail."""
    script = _script()
    chosen = _lint_selection(script, revisions, everything)
    if not chosen:
        click.echo("No new revisions to lint.")
        return
    results: list[LintResult] = []
    for found in chosen:
        results.append(lint_revision(_config, found))
        click.echo("\n".join(report(results[-1])))
    blocking = [r for r in results if r.blocking]
    if blocking:
        _fail(
            f"{len(blocking)} revision(s) with unreviewed hazards. Check each one; then add "
            "the line `# migration-lint: reviewed <why it is safe>` to the revision."
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
    versions = Path(_directory()) / "versions"
    root = history.repository_root(versions)
    branch, base = history.main_base(root)
    added = {p.resolve() for p in history.added_since(root, base, versions)}
    click.echo(f"Revisions added since {branch} ({base[:12]}): {len(added)}")
    return [s for s in every if Path(s.path).resolve() in added]


@click.command("gate")
@with_appcontext
@_handles_errors
def gate() -> None:
    """CI gate: one head named by migrations/HEAD, models match migrations, main untouched."""
    script = _script()
    problems = _head_problems(script) + _model_problems() + _main_branch_problems()
    for problem in problems:
        click.echo(f"FAIL  {problem}", err=True)
    if problems:
        _fail(f"{len(problems)} migration check(s) failed.")
    click.echo("Migration checks passed.")


def _head_problems(script: ScriptDirectory) -> list[str]:
    heads = list(script.get_heads())
    problems = []
    if len(heads) != 1:
        problems.append(
            f"{len(heads)} heads ({', '.join(heads)}): history must stay linear; rebase your "
            "revision onto the other (set its down_revision) and regenerate it."
        )
    named = history.read_head_file(_directory())
    if sorted(named) != sorted(heads):
        problems.append(
            f"migrations/HEAD names {', '.join(named) or 'nothing'} but the head is "
            f"{', '.join(heads) or 'none'}: new revisions rewrite it; fix it by hand after a merge."
        )
    else:
        click.echo(f"ok    one head, {heads[0] if heads else 'none'}, named by migrations/HEAD")
    return problems


def model_differences() -> list[Any]:
    """Alembic's diff between the models and a scratch SQLite database upgraded to head.

    Empty when every model change has its migration. Needs an app context.
    """
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'gate.db'}")
        try:
            with engine.connect() as connection:
                config = _config()
                config.attributes["connection"] = connection
                config.attributes[QUIET_ATTRIBUTE] = True
                command.upgrade(config, "heads")
                context = MigrationContext.configure(
                    connection,
                    opts={"compare_type": True, "include_name": include_name},
                )
                diffs: list[Any] = compare_metadata(context, db.metadata)
                return diffs
        finally:
            engine.dispose()


def _difference(diff: Any) -> str:
    """One Alembic diff in a few words: ``add_column users.nickname``, ``add_table counters``."""
    if isinstance(diff, list):  # modify_* diffs come grouped per column
        return ", ".join(_difference(item) for item in diff)
    operation, *rest = diff
    if operation.startswith("modify_"):
        return f"{operation} {rest[1]}.{rest[2]}"
    if operation in ("add_column", "remove_column"):
        return f"{operation} {rest[1]}.{rest[2].name}"
    named = getattr(rest[0], "name", None) if rest else None
    return f"{operation} {named}" if named else str(diff)


def describe_differences(diffs: list[Any]) -> str:
    listed = "; ".join(_difference(diff) for diff in diffs[:10])
    more = f" and {len(diffs) - 10} more" if len(diffs) > 10 else ""
    return (
        f"the models changed without a migration (make migration-generate name=…): {listed}{more}"
    )


def _model_problems() -> list[str]:
    """Upgrade a scratch SQLite database to head, compare it with the models."""
    try:
        diffs = model_differences()
    except Exception as error:  # reported as a failed check, not a traceback
        return [f"upgrading a scratch SQLite database to head failed: {error!r}"]
    if diffs:
        return [describe_differences(diffs)]
    click.echo("ok    the models match the migrations")
    return []


def _main_branch_problems() -> list[str]:
    versions = Path(_directory()) / "versions"
    try:
        root = history.repository_root(versions)
        branch, base = history.main_base(root)
        modified = history.modified_since(root, base, versions)
    except history.GitError as error:
        click.echo(f"skip  comparison with the main branch: {error}")
        return []
    if modified:
        return [
            f"revisions already on {branch} were modified: {', '.join(modified)}; "
            "write a new revision instead"
        ]
    click.echo(f"ok    no revision on {branch} ({base[:12]}) was modified")
    return []


# --- backups ----------------------------------------------------------------------


@click.command("backup")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@with_appcontext
@_handles_errors
def backup_command(output: Path | None) -> None:
    """Back up the database (SQLite online backup, pg_dump for PostgreSQL)."""
    engine = _engine()
    if output is None:
        _backup_now(engine, "manual")
        return
    path = backup(engine.url, output)
    click.echo(f"Backup written: {path}")
    click.echo(f"Restore it with: {restore_command(path)}")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
@_handles_errors
def restore_command_(file: Path) -> None:
    """Replace the database with a backup made by `flask db backup`."""
    engine = _engine()
    with migration_lock(engine):
        restore(engine.url, file)
    engine.dispose()  # pooled connections may have cached the old schema
    click.echo(f"Restored {_url(engine)} from {file}.")


COMMANDS = (
    generate,
    create,
    run,
    revert,
    status,
    verify,
    accept,
    sql,
    lint,
    gate,
    backup_command,
    restore_command_,
)


def register_db_commands(_app: Flask) -> None:
    """Add the workflow's subcommands to Flask-Migrate's ``flask db`` group."""
    for subcommand in COMMANDS:
        db_group.add_command(subcommand)
