"""Review and CI: ``flask db lint``, ``review`` and ``gate``.

``lint`` runs squawk over new revisions, ``review`` records that a revision's
hazards were checked, ``gate`` is the CI gate.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from app.db.alembic_setup import alembic_config, migrations_directory, script_directory
from app.db.commands._common import _fail, _handles_errors
from app.db.exit_codes import ExitCode
from app.db.gate import gate_problems
from app.db.lint import LintResult, lint_revision, lint_selection, record_review, report


@click.command("lint")
@click.argument("revisions", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Lint every revision.")
@with_appcontext
@_handles_errors
def lint(revisions: tuple[str, ...], everything: bool) -> None:
    """squawk over new revisions' SQL (default: those not on main); hazards fail."""
    script = script_directory()
    versions = Path(migrations_directory()) / "versions"
    chosen, how = lint_selection(script, revisions, everything, versions)
    if how:
        click.echo(how)
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
