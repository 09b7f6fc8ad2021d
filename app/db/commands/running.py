"""Running: ``flask db run`` and ``revert``.

``run`` applies pending revisions, locked, verified, by phase and backed up first
in production; ``revert`` goes back one step.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from alembic import command
from flask.cli import with_appcontext

from app.db import history
from app.db.alembic_setup import alembic_config, script_directory
from app.db.audit import most_recent
from app.db.commands._common import (
    PHASE_CHOICE,
    _at,
    _backup_now,
    _engine,
    _fail,
    _handles_errors,
    _production,
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
from app.db.status import MigrationStatus, State


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
