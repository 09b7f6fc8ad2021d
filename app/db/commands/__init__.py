"""The migration workflow as ``flask db`` subcommands, added to Flask-Migrate's group.

One module per workflow: ``authoring`` (generate, create), ``running`` (run,
revert), ``inspecting`` (status, clean, verify, accept, sql), ``review`` (lint,
review, gate) and ``backups`` (backup, restore); ``release`` is
app/db/release_command.py. What they share (one-line failures, ``-v``, a
backup before a change, refusing changed revisions) is ``_common``. The rules
they apply live beside what they judge: the amendment rule in
app/db/amendments.py, which revisions to lint in app/db/lint.py, the restore
sequence in app/db/backup.py. Flask-Migrate's own subcommands (upgrade,
downgrade, migrate, current, …) stay as they are, except that ``upgrade`` in
production first refuses and backs up as ``run`` does (``running.guard_upgrade``). Exit codes:
``app.db.exit_codes.ExitCode``.
"""

from __future__ import annotations

from flask import Flask
from flask_migrate.cli import db as db_group

from app.db.commands.authoring import create, generate
from app.db.commands.backups import backup_database, restore_database
from app.db.commands.inspecting import accept, clean, sql, status, verify
from app.db.commands.review import gate, lint, review
from app.db.commands.running import guard_upgrade, revert, run
from app.db.release_command import release

COMMANDS = (
    generate,
    create,
    run,
    revert,
    status,
    clean,
    verify,
    accept,
    sql,
    lint,
    review,
    gate,
    release,
    backup_database,
    restore_database,
)


def add_workflow_subcommands(_app: Flask) -> None:
    """Add the workflow's subcommands to Flask-Migrate's ``flask db`` group."""
    from app.db.discard import discard  # its own module; registered here alone

    for subcommand in (*COMMANDS, discard):
        db_group.add_command(subcommand)
    guard_upgrade(db_group)
