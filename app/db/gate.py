"""The CI gate's checks (``flask db gate``): one head, run-revert-run, main's revisions untouched.

- one head, and ``migrations/HEAD`` names it;
- run, revert, run on scratch SQLite and PostgreSQL databases, which then
  match the models (:func:`model_differences` also serves the development
  server's warning);
- no revision already on the main branch modified;
- the previous release's code against the new revisions (app/db/release_gate.py).

Each check prints its ``ok`` / ``skip`` line and returns its problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import Engine

from app.db import history
from app.db.alembic_setup import alembic_config, migrations_directory, script_directory
from app.db.audit import include_name
from app.db.lint import QUIET_ATTRIBUTE
from app.db.release_gate import release_gate_problems
from app.db.scratch import ScratchUnavailable, in_ci, scratch_postgres, scratch_sqlite
from app.extensions import db


def gate_problems() -> list[str]:
    """Every check's problems, in order (empty when the gate passes)."""
    script = script_directory()
    return (
        _head_problems(script)
        + _scratch_problems()
        + _main_branch_problems()
        + release_gate_problems()
    )


def _head_problems(script: ScriptDirectory) -> list[str]:
    heads = list(script.get_heads())
    problems = []
    if len(heads) != 1:
        problems.append(history.several_heads_advice(heads))
    named = history.read_head_file(migrations_directory())
    if len(heads) > 1:
        return problems
    if sorted(named) != sorted(heads):
        problems.append(
            f"migrations/HEAD names {', '.join(named) or 'nothing'} but the head is "
            f"{', '.join(heads) or 'none'}: new revisions rewrite it; fix it by hand after a merge."
        )
    else:
        click.echo(f"ok    one head, {heads[0] if heads else 'none'}, named by migrations/HEAD")
    return problems


def comparison_options() -> dict[str, Any]:
    """The comparisons autogenerate makes (``compare_type``, ``compare_server_default``, set
    on Flask-Migrate's ``Migrate`` in ``app.extensions``), so the gate sees what ``generate``
    sees; the tooling's own tables are left out. Needs an app context."""
    configured = current_app.extensions["migrate"].configure_args
    options = {key: value for key, value in configured.items() if key.startswith("compare_")}
    return {**options, "include_name": include_name}


def model_differences() -> list[Any]:
    """Alembic's diff between the models and a scratch SQLite database upgraded to head.

    Empty when every model change has its migration (the development server
    warns with it at start). Needs an app context.
    """
    with scratch_sqlite() as engine, engine.connect() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        config.attributes[QUIET_ATTRIBUTE] = True
        command.upgrade(config, "heads")
        context = MigrationContext.configure(connection, opts=comparison_options())
        diffs: list[Any] = compare_metadata(context, db.metadata)
        return diffs


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


def _scratch_problems() -> list[str]:
    """Run, revert, run on scratch SQLite and PostgreSQL databases; then compare with the models."""
    with scratch_sqlite() as engine:
        problems = _round_trip("SQLite", engine)
    try:
        with scratch_postgres() as engine:
            problems += _round_trip("PostgreSQL", engine)
    except ScratchUnavailable as error:
        if in_ci():
            problems.append(f"PostgreSQL is required when CI=true: {error}")
        else:
            click.echo(f"skip  run, revert, run on PostgreSQL: {error} (required when CI=true)")
    return problems


ROUND_TRIP = (
    ("run", "upgrade", "heads"),
    ("revert", "downgrade", "base"),
    ("run", "upgrade", "heads"),
)


def _round_trip(label: str, engine: Engine) -> list[str]:
    """Empty → head → base → head on a scratch database, then compare it with the models."""
    with engine.connect() as connection:
        for step, (name, direction, target) in enumerate(ROUND_TRIP, start=1):
            if connection.in_transaction():  # an autocommit block needs none of ours open
                connection.commit()
            config = alembic_config()
            config.attributes["connection"] = connection
            config.attributes[QUIET_ATTRIBUTE] = True
            try:
                getattr(command, direction)(config, target)
            except Exception as error:  # reported as a failed check, not a traceback
                if connection.in_transaction():
                    connection.rollback()
                detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
                return [f"{label}: step {step} of run, revert, run ({name}) failed: {detail}"]
        context = MigrationContext.configure(connection, opts=comparison_options())
        diffs = compare_metadata(context, db.metadata)
    if diffs:
        return [f"{label}: {describe_differences(diffs)}"]
    click.echo(f"ok    {label}: run, revert, run; the models match the migrations")
    return []


def _main_branch_problems() -> list[str]:
    versions = Path(migrations_directory()) / "versions"
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
