"""Alembic environment for the Conduit API, run through Flask-Migrate.

The target metadata is the application's models (``app.models``), imported by
``create_app``. A caller may hand in an open connection through
``config.attributes["connection"]`` (the migration tests and ``flask db gate``
do; pytest-alembic hands in an Engine, which works too).

Built in (the pieces live in ``app.db``):

- every online run holds the database's migration lock (``app.db.lock``), so
  replicas may run ``flask db upgrade`` or ``flask db run`` at once;
- each applied or reverted revision is recorded with its file's checksum in the
  ``migration_audit`` table (``app.db.audit``), which autogenerate ignores;
- autogenerate refuses empty migrations with a diagnosis, refuses migrations
  that drop every table, and flags destructive operations (``app.db.diagnose``);
- generated revisions create the PostgreSQL enum types they introduce and drop
  them on the way back (``app.db.enum_types``);
- transactions: on SQLite the whole run is one transaction (Alembic's SQLite
  impl says ``transactional_ddl = False``; ``app.data.database`` gives pysqlite
  real transactions, so it is switched on here): a failed run rolls back
  whole, batch copies (``_alembic_tmp_*``) included. On PostgreSQL each
  revision is its own transaction (``transaction_per_migration``), so a long
  data migration does not hold the locks of every revision before it;
- on PostgreSQL, every run sets ``lock_timeout`` (``MIGRATION_LOCK_TIMEOUT``)
  for its session, and resets it afterwards; a revision that hit it and
  committed nothing is re-run with backoff (``app.db.lock_retry``);
- revisions call the lock-safe operations of ``app.db.ops`` as ``op.safe_*``
  (run as ``app.db.safe_ddl`` says);
- on SQLite, foreign keys are off during a run (a batch table copy would
  otherwise cascade-delete the rows that reference it) and checked after
  (``app.db.sqlite_batch``);
- after every online run, new tables get the PostgreSQL change triggers and
  every replica's response cache hears that anything may have changed
  (``app.db.change_triggers``);
- offline (``--sql``) renders PostgreSQL SQL when the database is SQLite, since
  SQLite batch migrations cannot be rendered offline.
"""

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import Connection, make_url

import app.db.safe_ddl  # noqa: F401 (op.safe_create_index and the others, app/db/ops.py)
from app.db import change_triggers
from app.db.audit import COMMITTED_MID_STEP, COMPLETED_STEPS, AuditRecorder, include_name
from app.db.diagnose import revision_hook
from app.db.enum_types import render_item
from app.db.lint import OFFLINE_URL, QUIET_ATTRIBUTE, SQL_URL_ATTRIBUTE
from app.db.lock import migration_lock
from app.db.lock_retry import RevisionRetry
from app.db.sqlite_batch import check_foreign_keys, foreign_keys_off

config = context.config

quiet = config.attributes.get(QUIET_ATTRIBUTE) or current_app.testing  # tests: pytest logs
if config.config_file_name is not None and not quiet:
    # Keep the application's loggers alive when migrations run in-process.
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_extension = current_app.extensions["migrate"]
db = migrate_extension.db
target_metadata = db.metadata
# Its list of finished steps is the caller's too (``flask db run`` names a failed revision).
record_step = AuditRecorder(config.attributes.setdefault(COMPLETED_STEPS, []))
retry_on_lock_timeout = RevisionRetry()
LOCK_TIMEOUT = str(current_app.config.get("MIGRATION_LOCK_TIMEOUT") or "1s")


def _transaction_args(dialect_name: str) -> dict:
    if dialect_name == "sqlite":
        return {"transactional_ddl": True, "transaction_per_migration": False}
    return {"transaction_per_migration": True}


def _configure_args(url: str) -> dict:
    args = dict(migrate_extension.configure_args)
    args.setdefault("process_revision_directives", revision_hook(config, target_metadata, url))
    args.setdefault("include_name", include_name)
    args.setdefault("render_item", render_item)
    args.setdefault("on_version_apply", [record_step, retry_on_lock_timeout.on_version_apply])
    return args


def _lock_timeout_statement() -> str:
    if not re.fullmatch(r"\d+\s*(ms|s|min|h)?", LOCK_TIMEOUT):
        raise ValueError(f"MIGRATION_LOCK_TIMEOUT must look like 5s or 500ms, not {LOCK_TIMEOUT!r}")
    return f"SET lock_timeout = '{LOCK_TIMEOUT}'"


@contextmanager
def _lock_timeout(connection: Connection) -> Iterator[None]:
    """PostgreSQL: the session's lock_timeout for the run (every revision's transaction)."""
    if connection.dialect.name != "postgresql":
        yield
        return
    external = connection.in_transaction()  # the caller's transaction: not ours to end
    connection.exec_driver_sql(_lock_timeout_statement())
    if not external:
        connection.commit()
    try:
        yield
    finally:
        if not external:
            if connection.in_transaction():
                connection.rollback()
            connection.exec_driver_sql("RESET lock_timeout")
            connection.commit()


def run_migrations_offline() -> None:
    """Emit SQL without connecting (``--sql``); ``-x sql_url=…`` picks the dialect."""
    x_arguments = context.get_x_argument(as_dictionary=True)
    url = config.attributes.get(SQL_URL_ATTRIBUTE) or x_arguments.get(SQL_URL_ATTRIBUTE)
    if not url:
        url = db.engine.url.render_as_string(hide_password=False)
        if url.startswith("sqlite"):
            logger.warning("Rendering for PostgreSQL: SQLite batch migrations have no offline SQL.")
            url = OFFLINE_URL
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        **_transaction_args(make_url(url).get_backend_name()),
        **_configure_args(url),
    )
    dialect_name = make_url(url).get_backend_name()
    if dialect_name == "postgresql":
        context.execute(_lock_timeout_statement())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    injected = config.attributes.get("connection")
    if isinstance(injected, Connection):
        _run_on(injected)
        return
    with (injected or db.engine).connect() as connection:  # an injected Engine, or the app's
        _run_on(connection)


def _run_on(connection) -> None:
    if connection.dialect.name == "postgresql":
        # The app's engine tells the change triggers to stay silent (its sessions announce
        # their writes); a migration's data changes are no session's: let them speak.
        began = not connection.in_transaction()
        connection.exec_driver_sql("SELECT set_config('conduit.change_feed', '', false)")
        if began:
            connection.commit()
    with (
        migration_lock(connection.engine),
        foreign_keys_off(connection),
        _lock_timeout(connection),
    ):
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            **_transaction_args(connection.dialect.name),
            **_configure_args(connection.engine.url.render_as_string(hide_password=True)),
        )
        connection.info.pop(COMMITTED_MID_STEP, None)  # a failed run's, on a pooled connection
        with context.begin_transaction():
            record_step.start()
            retry_on_lock_timeout.run(connection, context.run_migrations)
            check_foreign_keys(connection)
            change_triggers.after_run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
