"""Migration tooling on top of Flask-Migrate: the workflow's ``flask db`` subcommands.

- ``commands``: generate, create, run, revert, status, clean, verify, accept,
  sql, lint, review, gate, release, backup, restore (on Flask-Migrate's ``db`` group),
  one module per workflow (authoring, running, inspecting, review, backups);
- ``amendments``: the changed revisions development lets ``run`` and ``revert`` pass;
- ``alembic_setup``: the migrations directory, Alembic's configuration and scripts;
- ``gate``: the CI gate's checks (one head, run-revert-run, main untouched);
- ``release_gate``: the previous release's models against each new revision, and
  the new models against the expand schema;
- ``released``: ``migrations/RELEASED`` (the release production runs), its git
  checks and a worktree of its commit; ``release_command``: ``flask db release``;
- ``model_shape``: the tables and columns a release's models map, read by its own code;
- ``status`` and ``audit``: what is applied, from which file (checksums);
- ``diagnose``: why autogenerate found nothing; refusals; destructive banner;
  what autogenerate cannot see in the revision it wrote;
- ``phases``: expand and contract, each operation's phase, what a run applies;
- ``renames``: a drop plus an add refused, with the two-release recipe;
- ``operation_tree``: walking the operations autogenerate wrote;
- ``enum_types``: PostgreSQL enum types created and dropped by generated revisions;
- ``lint``: offline PostgreSQL SQL, squawk's hazard rules, ``migrations/reviewed.txt``,
  which revisions ``flask db lint`` checks;
- ``lock``: one migration run at a time per database;
- ``lock_retry``: a revision or step that hit ``lock_timeout``, retried with backoff;
- ``ops`` and ``safe_ddl``: the lock-safe operations revisions call
  (``op.safe_create_index`` …), and how each runs on PostgreSQL and SQLite;
- ``safe_rewrite``: generated revisions written with those operations;
- ``hazard_advice``: the safe form beside each lint hazard;
- ``backfill``: batched, committed, resumable updates for data migrations;
- ``backup``: SQLite online backup, pg_dump / pg_restore, checking a backup, the
  restore sequence;
- ``backup_check``: before a restore, the backup's revisions and tables against this code;
- ``scratch``: the gate's scratch SQLite and PostgreSQL databases;
- ``sqlite_batch``: foreign keys off during SQLite runs; leftover batch tables;
- ``history``: the committed ``migrations/HEAD`` file and the main branch;
- ``change_triggers``: after every run, PostgreSQL change triggers on new
  tables and a notification to every replica's response cache.

``migrations/env.py`` wires the hooks into every Alembic run.
"""

from flask import Flask


def register_db_commands(app: Flask) -> None:
    """Add the workflow's subcommands to ``flask db`` (wiring only, no I/O)."""
    from app.db.commands import add_workflow_subcommands

    add_workflow_subcommands(app)
