"""Migration tooling on top of Flask-Migrate: the workflow's ``flask db`` subcommands.

- ``commands``: generate, create, run, revert, status, verify, accept, sql,
  lint, gate, backup, restore (registered on Flask-Migrate's ``db`` group);
- ``status`` and ``audit``: what is applied, from which file (checksums);
- ``diagnose``: why autogenerate found nothing; refusals; destructive banner;
- ``lint``: offline PostgreSQL SQL and squawk's hazard rules;
- ``lock``: one migration run at a time per database;
- ``backup``: SQLite online backup, pg_dump / pg_restore;
- ``history``: the committed ``migrations/HEAD`` file and the main branch.

``migrations/env.py`` wires the hooks into every Alembic run.
"""

from flask import Flask


def register_db_commands(app: Flask) -> None:
    """Add the workflow's subcommands to ``flask db`` (wiring only, no I/O)."""
    from app.db.commands import register_db_commands as register

    register(app)
