"""Authoring: ``flask db generate`` (autogenerate, then the review printed) and ``create``."""

from __future__ import annotations

import re

import click
from alembic import command
from alembic.script import Script, ScriptDirectory
from flask.cli import with_appcontext

from app.db import history
from app.db.alembic_setup import alembic_config, script_directory
from app.db.commands._common import PHASE_CHOICE, _engine, _fail, _handles_errors, _url
from app.db.diagnose import BANNER_ATTRIBUTE, BLIND_SPOTS_ATTRIBUTE, DatabaseBehindHead, diagnose
from app.db.lint import LintError, lint_revision, render_sql, report
from app.db.phases import EXPAND, phase_of
from app.db.status import read_status
from app.extensions import db

DATA_MIGRATION_ATTRIBUTE = "data_migration"
PHASE_ATTRIBUTE = "phase"  # create --phase, read by script.py.mako


def _message(name: str) -> str:
    """``AddUserTable`` → ``add user table`` (the file name's slug comes from it)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").strip().lower()


def _refuse_several_heads(script: ScriptDirectory) -> None:
    """A new revision needs one head to follow: the project's advice, not Alembic's merge."""
    heads = list(script.get_heads())
    if len(heads) > 1:
        _fail(f"Error: {history.several_heads_advice(heads)}")


@click.command("generate")
@click.argument("name")
@with_appcontext
@_handles_errors
def generate(name: str) -> None:
    """Generate a migration from model changes (autogenerate), then review it."""
    script = script_directory()
    _refuse_several_heads(script)
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
    _refuse_several_heads(script_directory())
    config = alembic_config()
    config.attributes[DATA_MIGRATION_ATTRIBUTE] = data
    config.attributes[PHASE_ATTRIBUTE] = phase
    created = command.revision(config, message=_message(name))
    assert isinstance(created, Script)
    click.echo(f"Created {created.path} ({phase})")
