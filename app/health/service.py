"""Readiness: the database answers and its schema is at the migrations' head."""

from __future__ import annotations

import logging

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.data.database import connection_problem
from app.errors import abort
from app.extensions import db

log = logging.getLogger(__name__)


def migration_heads() -> set[str]:
    """The head revision(s) of the migration scripts this release ships."""
    config = Config()
    config.set_main_option("script_location", current_app.extensions["migrate"].directory)
    return set(ScriptDirectory.from_config(config).get_heads())


def readiness() -> str:
    """The schema's revision when ready; otherwise a 503 naming the reason."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        problem = connection_problem(error, db.engine.url) or error.__class__.__name__
        log.warning("Readiness: the database is not reachable: %s", problem)
        abort(503, "database", "is not reachable")
    heads = migration_heads()
    if not current:
        abort(503, "database", "has no migrations applied (run flask db upgrade)")
    if current != heads:
        abort(
            503,
            "database",
            f"schema is at {', '.join(sorted(current))}, "
            f"the migrations' head is {', '.join(sorted(heads))} (run flask db upgrade)",
        )
    return ", ".join(sorted(current))
