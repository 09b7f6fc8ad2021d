"""Alembic as the workflow runs it: the migrations directory, the configuration, the scripts.

Every ``flask db`` subcommand and the CI gate's checks read Alembic through
these; ``-v`` (:func:`set_verbose`) lets Alembic's own log lines through.
Needs an app context.
"""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import current_app, g

from app.db.lint import QUIET_ATTRIBUTE


def set_verbose(verbose: bool) -> None:
    g.migration_verbose = verbose


def is_verbose() -> bool:
    return bool(getattr(g, "migration_verbose", False))


def migrations_directory() -> str:
    return str(getattr(g, "directory", None) or current_app.extensions["migrate"].directory)


def alembic_config(*opts: str) -> Config:
    quiet = () if is_verbose() else ("quiet",)  # Alembic's "Generating …" and the like
    config: Config = current_app.extensions["migrate"].migrate.get_config(
        migrations_directory(), opts=[*opts, *quiet]
    )
    if not is_verbose():
        config.attributes[QUIET_ATTRIBUTE] = True  # env.py: no logging.fileConfig
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())
