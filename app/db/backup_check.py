"""Is a backup fit to restore? Its revisions are this code's, its tables those of its revision.

``flask db restore`` refuses a backup that fails these, before touching the database.
Needs an app context.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine

from app.db.alembic_setup import alembic_config, script_directory
from app.db.backup import BackupContents, BackupError
from app.db.diagnose import application_tables
from app.db.lint import QUIET_ATTRIBUTE


def check_backup_tables(file: Path, contents: BackupContents) -> None:
    """The backup's tables must include the application's tables at its revision."""
    script = script_directory()
    unknown = [rev for rev in contents.revisions if not _known(script, rev)]
    if unknown:
        raise BackupError(
            f"{file} is at revision {', '.join(unknown)}, which this code does not have "
            "(check out the code that made it)"
        )
    expected = _tables_at(list(contents.revisions))
    missing = sorted(expected - contents.tables)
    if missing:
        raise BackupError(
            f"{file} lacks the application's tables {', '.join(missing)} "
            f"(expected at revision {', '.join(contents.revisions)})"
        )


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _tables_at(revisions: list[str]) -> set[str]:
    """The application's tables at these revisions: upgrade a scratch SQLite database to them."""
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'tables.db'}")
        try:
            with engine.connect() as connection:
                config = alembic_config()
                config.attributes["connection"] = connection
                config.attributes[QUIET_ATTRIBUTE] = True
                for revision in revisions:
                    command.upgrade(config, revision)
                return application_tables(connection)
        finally:
            engine.dispose()
