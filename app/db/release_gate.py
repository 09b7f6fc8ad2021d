"""The previous-release gate: the released code against the new revisions (``flask db gate``).

While a release rolls out, the previous release's replicas keep serving on the
schema the expand phase leaves, and the new release's replicas start on it
before the contract phase runs. So, for the revisions after
``migrations/RELEASED`` (app/db/released.py):

- a scratch PostgreSQL database is upgraded one revision at a time from the
  released revision through the new head's expand target
  (:func:`app.db.phases.expand_target`); after each step, every table and
  column the previous release's models map must still be there, and no new
  ``NOT NULL`` column without a default may appear in a table it inserts into;
- at the expand target, every table and column the new models map must
  already exist (one that only a contract revision creates means the new code
  cannot start before the contract phase: a one-step rename);
- no expand revision may follow a contract one (:func:`app.db.phases.out_of_order`).

The previous release's models are read by its own code, checked out from git
(app/db/model_shape.py). Serving both releases' APIs on that schema is
``scripts/release_conformance.py``'s part of ``make migration-check``.
"""

from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.script import Script
from sqlalchemy import Connection, Engine, inspect

from app.db import history
from app.db.alembic_setup import alembic_config, migrations_directory, script_directory
from app.db.lint import QUIET_ATTRIBUTE
from app.db.model_shape import TOOLING_TABLES, ModelShape, ShapeError, release_shape, shape_of
from app.db.phases import CONTRACT, expand_target, out_of_order, pending_revisions, phase_of
from app.db.released import (
    ReleasedError,
    checkout,
    committed_head,
    read_released,
    release_problems,
    released_file,
)
from app.db.scratch import ScratchUnavailable, in_ci, scratch_postgres
from app.extensions import db

Schema = dict[str, dict[str, dict[str, object]]]  # table -> column -> inspector's column info


def release_gate_problems() -> list[str]:
    """The previous-release checks, each printing its ``ok`` / ``skip`` line; their problems."""
    scripts = script_directory()
    heads = list(scripts.get_heads())
    if len(heads) != 1:
        return []  # the head check reports it; the chain has no single expand target
    if not released_file(migrations_directory()).is_file():
        click.echo("ok    no migrations/RELEASED: no release recorded yet, none to check against")
        return []
    try:
        release = read_released(migrations_directory())
        root = history.repository_root(migrations_directory())
        if committed_head(root, release.commit, Path(scripts.dir)) is None:
            return _unavailable(
                f"RELEASED names commit {release.commit}, which this checkout lacks "
                "(a shallow clone? fetch the history)"
            )
        problems = release_problems(release, scripts, root)
    except ReleasedError as error:
        return [str(error)]
    except history.GitError as error:
        return _unavailable(f"git: {error}")
    if problems:
        return problems
    if heads == [release.revision]:
        click.echo(f"ok    RELEASED is the head ({release}): no new revision to check against it")
        return []
    try:
        with checkout(root, release.commit) as previous_code:
            previous = release_shape(previous_code)
    except (history.GitError, ShapeError) as error:
        return [f"the released code ({release}) could not be read: {error}"]
    try:
        with scratch_postgres() as engine:
            problems = schema_problems(previous, shape_of(db.metadata), release.revision, engine)
    except ScratchUnavailable as error:
        return _unavailable(str(error))
    if not problems:
        click.echo(f"ok    the released code ({release}) and the new code fit the expand schema")
    return [f"previous release: {problem}" for problem in problems]


def _unavailable(reason: str) -> list[str]:
    if in_ci():
        return [f"the previous-release gate needs it when CI=true: {reason}"]
    click.echo(f"skip  the previous-release gate: {reason} (required when CI=true)")
    return []


def schema_problems(
    previous: ModelShape, new: ModelShape, released: str, engine: Engine
) -> list[str]:
    """What breaks the previous release (``previous``) or the new code (``new``) during a release.

    ``engine`` is an empty PostgreSQL (or SQLite) database; the revisions are
    the current app's migrations directory (needs an app context). It is
    upgraded to ``released``, then one revision at a time to the head. Each
    problem names the revision, the table and the column.
    """
    scripts = script_directory()
    pending = pending_revisions(scripts, released)
    target = expand_target(scripts, released)
    problems = [
        f"revision {script.revision} is an expand revision after a contract one: "
        "an expand run stops at the first contract revision; move it before, or into "
        "the next release"
        for script in out_of_order(pending)
    ]
    with engine.connect() as connection:
        _upgrade(connection, released)
        needed: dict[tuple[str, str], str] = {}
        if target == released:
            needed = _needed(new, _schema(connection))
        reported: set[tuple[str, str]] = set()
        for script in pending:
            try:
                _upgrade(connection, script.revision)
            except Exception as error:  # reported as a problem, not a traceback
                words = str(getattr(error, "orig", None) or error).strip().splitlines()
                detail = words[0] if words else type(error).__name__
                return [*problems, f"revision {script.revision} failed: {detail}"]
            schema = _schema(connection)
            if phase_of(script) != CONTRACT:
                problems += _breaks_previous(previous, schema, script, reported)
            problems += _created_too_late(needed, schema, script)
            if script.revision == target:
                needed = _needed(new, schema)
    problems += [f"the new code maps {name}, which no revision creates" for name in needed.values()]
    return problems


def _upgrade(connection: Connection, revision: str) -> None:
    """Upgrade as ``flask db run`` does: no transaction of ours open around the revision.

    A revision with an autocommit block (``op.safe_create_index``, ``backfill``)
    cannot run inside a caller's transaction, and inspecting the schema
    between two steps begins one.
    """
    if connection.in_transaction():
        connection.commit()
    config = alembic_config()
    config.attributes["connection"] = connection
    config.attributes[QUIET_ATTRIBUTE] = True
    command.upgrade(config, revision)
    if connection.in_transaction():
        connection.commit()


def _schema(connection: Connection) -> Schema:
    inspector = inspect(connection)
    return {
        table: {column["name"]: dict(column) for column in inspector.get_columns(table)}
        for table in inspector.get_table_names()
        if table not in TOOLING_TABLES
    }


def _breaks_previous(
    previous: ModelShape, schema: Schema, script: Script, reported: set[tuple[str, str]]
) -> list[str]:
    problems = []
    for table, columns in previous.items():
        gone = sorted(columns) if table not in schema else sorted(set(columns) - set(schema[table]))
        for column in gone:
            if (table, column) not in reported:
                reported.add((table, column))
                problems.append(
                    f"revision {script.revision} ({phase_of(script)}) drops or renames "
                    f"{table}.{column}, which the previous release maps: its queries fail "
                    "while it serves. Add the new column in an expand revision and drop the "
                    "old one in a contract revision of a later release."
                )
        for column, info in schema.get(table, {}).items():
            if column in columns or (table, column) in reported or not _needs_a_value(info):
                continue
            reported.add((table, column))
            problems.append(
                f"revision {script.revision} ({phase_of(script)}) adds {table}.{column} NOT NULL "
                "without a default, which the previous release does not write: its INSERTs "
                "into that table fail. Add it nullable or with a server default."
            )
    return problems


def _needs_a_value(column: dict[str, object]) -> bool:
    return not (
        column.get("nullable")
        or column.get("default") is not None
        or column.get("identity")
        or column.get("computed")
    )


def _needed(new: ModelShape, schema: Schema) -> dict[tuple[str, str], str]:
    """The new code's tables and columns missing from ``schema``, keyed ``(table, column)``."""
    missing = {}
    for table, columns in new.items():
        for column in columns:
            if column not in schema.get(table, {}):
                missing[(table, column)] = f"{table}.{column}"
    return missing


def _created_too_late(
    needed: dict[tuple[str, str], str], schema: Schema, script: Script
) -> list[str]:
    problems = []
    for key in [key for key in needed if key[1] in schema.get(key[0], {})]:
        problems.append(
            f"the new code maps {needed.pop(key)}, which only revision {script.revision} "
            f"({phase_of(script)}) creates: the new code starts before the contract phase "
            "runs. Add it in an expand revision (nullable or with a server default, then "
            "backfill it; set NOT NULL in a later contract revision); a column it replaces "
            "is dropped in a contract revision of a later release."
        )
    return problems
