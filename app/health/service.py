"""Readiness: the database answers and its schema fits this release's code.

A rolling release runs two releases on one schema (docs/migrations.md), so
"fits" is more than "at this code's head". Ready when the database is:

- at the head of this release's migrations;
- behind it by contract revisions only (``flask db run --phase expand`` ran,
  the contract phase waits for every replica to run this code:
  app/db/phases.py);
- ahead of it, at a revision this code does not know (the next release's
  expand phase ran while this one still serves), as long as every table and
  column of the models exists.

Not ready while a request of this process met a missing column or table
(app/data/schema_drift.py) and the models' tables and columns do not all
exist; once they do, the suspicion is cleared.
"""

from __future__ import annotations

import logging

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import current_app
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from app.data import schema_drift
from app.data.database import connection_problem
from app.db.phases import CONTRACT, pending_revisions, phase_of
from app.errors import abort
from app.extensions import db

log = logging.getLogger(__name__)
UPGRADE = "(run flask db run)"
SCRIPTS_EXTENSION = "migration_scripts"


def migration_scripts() -> ScriptDirectory:
    """The migration scripts this release ships, read once per process.

    Read once so that a release's files written in place (the next release
    copied over this one while it still serves) do not change what this
    running code calls its head.
    """
    scripts = current_app.extensions.get(SCRIPTS_EXTENSION)
    if scripts is None:
        config = Config()
        config.set_main_option("script_location", current_app.extensions["migrate"].directory)
        scripts = current_app.extensions[SCRIPTS_EXTENSION] = ScriptDirectory.from_config(config)
        scripts.get_heads()  # reads every revision file now
    return scripts


def migration_heads() -> set[str]:
    """The head revision(s) of the migration scripts this release ships."""
    return set(migration_scripts().get_heads())


def schema_at_head(connection: Connection) -> bool:
    """Whether the database's applied revision(s) are exactly this release's head(s).

    Stricter than readiness (which also accepts pending contract revisions and a
    later release's schema): the metrics' ``conduit_schema_at_head`` (app/web/metrics.py).
    """
    applied = set(MigrationContext.configure(connection).get_current_heads())
    return applied == migration_heads()


def readiness() -> str:
    """The schema's revision(s) when ready; otherwise a 503 naming the reason."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(connection).get_current_heads())
            problem = _schema_problem(connection, current)
    except SQLAlchemyError as error:
        problem = connection_problem(error, db.engine.url) or error.__class__.__name__
        log.warning("Readiness: the database is not reachable: %s", problem)
        abort(503, "database", "is not reachable")
    if problem:
        abort(503, "database", problem)
    return ", ".join(sorted(current))


def _schema_problem(connection: Connection, current: set[str]) -> str | None:
    if not current:
        return f"has no migrations applied {UPGRADE}"
    scripts = migration_scripts()
    heads = set(scripts.get_heads())
    unknown = {revision for revision in current if not _known(scripts, revision)}
    problem = None
    if unknown:  # a later release's revisions: fine while the models' schema is all there
        problem = _models_missing(connection, f"schema is at {', '.join(sorted(unknown))}")
    elif current != heads and not _only_contract_pending(scripts, current):
        problem = (
            f"schema is at {', '.join(sorted(current))}, "
            f"the migrations' head is {', '.join(sorted(heads))} {UPGRADE}"
        )
    suspicion = schema_drift.suspicion()
    if problem is None and suspicion is not None and suspicion.problem is not None:
        problem = _models_missing(connection, "schema does not match this release")
        if problem is None:
            suspicion.clear()
    return problem


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:  # what get_revision raises for a revision it does not know
        return False


def _only_contract_pending(scripts: ScriptDirectory, current: set[str]) -> bool:
    """Behind the head by contract revisions only (the expand phase has run)."""
    if len(current) != 1:
        return False
    pending = pending_revisions(scripts, next(iter(current)))
    return all(phase_of(script) == CONTRACT for script in pending)


def _models_missing(connection: Connection, context: str) -> str | None:
    missing = schema_drift.differences(connection, db.metadata)
    if not missing:
        return None
    return f"{context}: this release needs {', '.join(missing)}"
