"""Running: ``flask db run`` and ``revert``.

``run`` applies pending revisions, locked, verified, by phase and backed up first
in production; ``revert`` goes back one step.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import click
from alembic import command
from flask.cli import with_appcontext
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.db import history
from app.db.alembic_setup import alembic_config, is_verbose, script_directory
from app.db.audit import COMPLETED_STEPS, most_recent
from app.db.commands._common import (
    PHASE_CHOICE,
    _at,
    _backup_now,
    _engine,
    _fail,
    _handles_errors,
    _production,
    _refuse_never_ran,
    _refuse_tampered,
    _status,
)
from app.db.exit_codes import ExitCode
from app.db.lock import migration_lock
from app.db.phases import (
    CONTRACT,
    EXPAND,
    PhaseOrderError,
    RunPlan,
    contract_revisions,
    out_of_order,
    pending_revisions,
    phase_of,
    run_plan,
)
from app.db.status import MigrationStatus


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
        _refuse_never_ran(status, "nothing was applied")
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
            _backup_before_upgrade(engine, status)
        started = time.perf_counter()
        config = alembic_config()
        try:
            command.upgrade(config, plan.target)
        except Exception as error:  # a revision's own code raised: name it, say where we are
            if is_verbose():
                raise
            _fail(_failed_run(engine, plan, config.attributes.get(COMPLETED_STEPS, []), error))
        elapsed = time.perf_counter() - started
    click.echo(f"Applied {len(plan.revisions)} migration(s) in {elapsed:.2f}s:")
    for script in plan.revisions:
        click.echo(f"  {script.revision}  {phase_of(script):<8}  {Path(script.path).name}")
    left = len(status.pending) - len(plan.revisions)
    if left:
        click.echo(f"{left} contract revision(s) left for `make migration-run phase=contract`.")


def _failed_run(engine: Engine, plan: RunPlan, completed: list[str], error: Exception) -> str:
    """One message for a run a revision stopped: which one, why, and where the database is.

    ``completed``: the revisions whose step finished (the failed one is the
    next). Where the database stands is read again: SQLite runs are one
    transaction, except what a ``backfill()`` committed; on PostgreSQL each
    revision is its own, so those before the failed one stay applied.
    """
    failed = next((s for s in plan.revisions if s.revision not in completed), None)
    named = f"{failed.revision} ({Path(failed.path).name})" if failed else "a revision"
    try:
        after = _status(engine)
    except SQLAlchemyError as lost:  # the database went away: say what is known
        return (
            f"Error: {named} failed: {type(error).__name__}: {str(error).strip()[:300]}. "
            f"The database could not be read afterwards ({type(lost).__name__}): "
            "`make migration-show` once it answers says where it stands."
        )
    applied = set(_applied(after))
    done = [s.revision for s in plan.revisions if s.revision in applied]
    reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
    kept = f"{len(done)} revision(s) of this run stayed applied ({', '.join(done)})"
    return (
        f"Error: {named} failed: {type(error).__name__}: {reason}. "
        f"The database is at {_at(after)}; "
        f"{kept if done else 'nothing of this run stayed applied'}. "
        "Fix the revision and run `make migration-run` again (`-v` shows the traceback)."
    )


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
        _refuse_never_ran(status, "nothing was reverted", among=status.current)
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
    return [r.revision for r in status.revisions if r.state.applied]


def _backup_before_upgrade(engine: Engine, status: MigrationStatus) -> None:
    _backup_now(engine, f"before-upgrade-{'-'.join(status.heads)}")


def guard_upgrade(group: click.Group) -> None:
    """Flask-Migrate's ``flask db upgrade``, with ``run``'s safeguards in production.

    Before it applies anything in production it refuses what ``run`` refuses
    (applied revisions whose files changed or are gone, revisions that never
    ran below the database's) and takes a backup when revisions are pending.
    Development, ``--sql`` and everything else stay Flask-Migrate's. Wraps the
    group's command once (the group is shared by every app made in a process).
    """
    command_ = group.commands.get("upgrade")
    if command_ is None or command_.callback is None or hasattr(command_.callback, "guarded"):
        return
    upgrade = command_.callback

    @with_appcontext
    @functools.wraps(upgrade)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not _production() or kwargs.get("sql"):
            return upgrade(*args, **kwargs)
        engine = _engine()
        # Held from the check to the end of the upgrade (which takes it again, re-entrantly):
        # replicas starting together check, back up and apply one at a time.
        with migration_lock(engine):
            status = _status(engine)
            _refuse_tampered(status, "Nothing was applied (use `flask db run`).")
            _refuse_never_ran(status, "nothing was applied")
            if status.pending:
                _backup_before_upgrade(engine, status)
            return upgrade(*args, **kwargs)

    guarded.guarded = upgrade  # type: ignore[attr-defined]
    command_.callback = guarded
