"""Why autogenerate found nothing, and which generated migrations to refuse or flag.

``env.py`` installs :func:`revision_hook` as Alembic's
``process_revision_directives``. On an autogenerate run (``flask db generate``,
``flask db migrate``) it

- refuses an empty migration (no file is written) with a diagnosis that names
  the cause where it can be detected;
- refuses a migration that drops every table (the classic sign of models that
  were not imported), and one that looks like a rename (``app.db.renames``);
- writes one revision per phase, expand then contract (``app.db.phases``);
- lists destructive operations, which the revision template turns into a banner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from alembic.config import Config
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, String, inspect

from app.db.audit import TOOLING_TABLES
from app.db.enum_types import add_enum_type_operations, enum_columns, native_enum
from app.db.exit_codes import ExitCode
from app.db.operation_tree import leaf_operations
from app.db.phases import split_by_phase
from app.db.renames import rename_refusal
from app.db.safe_rewrite import rewrite_to_safe_operations

# Template arguments (``config.attributes``) read by script.py.mako, keyed by revision id.
BANNER_ATTRIBUTE = "destructive_operations"
PHASES_ATTRIBUTE = "revision_phases"
# What autogenerate cannot see in the revision just written (``flask db generate`` prints it).
BLIND_SPOTS_ATTRIBUTE = "blind_spots"

NO_CHANGES = (
    "No changes in database schema were found - cannot generate a migration. "
    'To create a new empty migration use "make migration-create name=…".'
)

UNDETECTABLE_CHANGES = (
    "renamed tables and columns (seen as a drop plus an add, which generate refuses "
    "with the two-release recipe)",
    "computed columns, and server defaults the database spells differently",
    "CHECK constraints and new values of an Enum type",
    "views, triggers, functions, sequences, and data (rows)",
)


class MigrationRefused(CommandError):
    """A migration was not generated; the message says why. Carries the exit code."""

    exit_code = ExitCode.FAILED


class NoChangesDetected(MigrationRefused):
    exit_code = ExitCode.NO_CHANGES


class DatabaseBehindHead(MigrationRefused):
    exit_code = ExitCode.PENDING


class DestructiveMigrationRefused(MigrationRefused):
    exit_code = ExitCode.REFUSED


class RenameRefused(MigrationRefused):
    """A drop plus an add that may be a rename (:mod:`app.db.renames`)."""

    exit_code = ExitCode.REFUSED


def application_tables(connection: Connection) -> set[str]:
    """Tables in the database, without the migration tooling's own."""
    return set(inspect(connection).get_table_names()) - TOOLING_TABLES


def diagnose(
    connection: Connection,
    metadata: MetaData,
    script: ScriptDirectory,
    url: str,
    *,
    empty_revision: bool = True,
) -> list[str]:
    """Causes of an empty or impossible autogenerate run that can be detected, one per line.

    ``empty_revision``: autogenerate found nothing, so what it cannot see is
    relevant advice; for a database behind head it is not.
    """
    causes: list[str] = []
    model_tables = set(metadata.tables)
    database_tables = application_tables(connection)
    current = set(MigrationContext.configure(connection).get_current_heads())
    heads = set(script.get_heads())

    if not model_tables:
        causes.append(
            "No models are registered: the metadata has no tables. create_app must import "
            "app.models, and a model in a new module must be imported from there."
        )
    if heads and current != heads:
        if not current and database_tables:
            causes.append(
                f"Tables exist ({_names(database_tables)}) but no migration is recorded: they "
                "were created outside migrations (db.create_all()?). Use a fresh database and "
                "`make migration-run`. Stamping it (`flask db stamp head`) would leave out what "
                "only migrations make: on PostgreSQL, the change triggers that keep every "
                "replica's cache fresh after a write the app does not make (psql, a restore)."
            )
        else:
            causes.append(
                f"The database is behind head (at {_names(current) or 'base'}, head is "
                f"{_names(heads)}): run `make migration-run` first, then generate."
            )
    elif not heads and database_tables:
        causes.append(
            f"Tables exist ({_names(database_tables)}) but there is no revision yet: they were "
            "created outside migrations (db.create_all()?). Generate the first revision "
            "against an empty database, then `flask db stamp head` this one."
        )
    if not causes:
        causes.append(
            "The models and the database agree. If you changed a model: is the file saved, "
            "is its module imported by app/models.py, and is this the database you meant?"
        )
    causes.append(f"Database: {url}")
    if empty_revision:
        causes.append("Autogenerate cannot see: " + "; ".join(UNDETECTABLE_CHANGES) + ".")
        causes.append("For those, write the migration by hand: make migration-create name=…")
    return causes


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def destructive_operations(upgrade_ops: ops.UpgradeOps) -> list[str]:
    """Operations that lose or rewrite data, in words, for the banner."""
    found: list[str] = []
    for operation in leaf_operations(upgrade_ops.ops):
        if isinstance(operation, ops.DropTableOp):
            found.append(f"drops table {operation.table_name}")
        elif isinstance(operation, ops.DropColumnOp):
            found.append(f"drops column {operation.table_name}.{operation.column_name}")
        elif isinstance(operation, ops.AlterColumnOp) and operation.modify_type is not None:
            found.append(
                f"changes the type of {operation.table_name}.{operation.column_name} "
                f"from {operation.existing_type} to {operation.modify_type}"
            )
    return found


def dropped_tables(upgrade_ops: ops.UpgradeOps) -> set[str]:
    return {
        operation.table_name
        for operation in leaf_operations(upgrade_ops.ops)
        if isinstance(operation, ops.DropTableOp)
    }


def _drops_enum(operation: ops.DropColumnOp | ops.DropTableOp, sqlite: bool) -> bool:
    """Whether a dropped column, or a column of a dropped table, may be a native enum.

    Autogenerate keeps what was dropped (reflected) for the downgrade. SQLite
    reflects an Enum as VARCHAR, so there any string column may have been one.
    """
    try:
        if isinstance(operation, ops.DropColumnOp):
            columns = [operation.to_column()]
        else:
            columns = list(operation.to_table().columns)
    except (ValueError, AttributeError):
        return True
    maybe = (lambda type_: isinstance(type_, String)) if sqlite else native_enum
    return any(maybe(column.type) for column in columns)


def _required_without_default(operation: ops.AddColumnOp) -> bool:
    column = operation.column
    return not column.nullable and column.server_default is None and not column.primary_key


def blind_spots(
    upgrade_ops: ops.UpgradeOps, created_types: list[str], dialect_name: str = "postgresql"
) -> list[str]:
    """What autogenerate could not see in this change, and what to check by hand.

    ``dialect_name`` is the database autogenerate compared with (``sqlite``
    cannot tell an Enum from a string column it drops).
    """
    sqlite = dialect_name == "sqlite"
    notes: list[str] = []
    for table, column, type_name in enum_columns(upgrade_ops):
        made = "creates" if type_name in created_types else "uses the existing"
        notes.append(
            f"{table}.{column} is an Enum: on PostgreSQL this revision {made} type {type_name}. "
            "Later changes to its values are not detected: write them by hand "
            "(ALTER TYPE … ADD VALUE) with make migration-create."
        )
    dropped: dict[str, list[str]] = {}
    dropped_tables_: list[str] = []
    for operation in leaf_operations(upgrade_ops.ops):
        if isinstance(operation, ops.DropColumnOp) and _drops_enum(operation, sqlite):
            dropped.setdefault(operation.table_name, []).append(operation.column_name)
        elif isinstance(operation, ops.DropTableOp) and _drops_enum(operation, sqlite):
            dropped_tables_.append(operation.table_name)
        elif isinstance(operation, ops.AddColumnOp) and _required_without_default(operation):
            name = f"{operation.table_name}.{operation.column.name}"
            notes.append(
                f"{name} is added NOT NULL without a server default: in an expand revision the "
                "previous release's INSERTs fail, in a contract one the new code cannot start "
                "before it runs. Add it nullable (or with a server_default) in an expand "
                "revision, backfill it, and set NOT NULL in a later release's contract revision "
                f"(op.safe_set_not_null({operation.table_name!r}, {operation.column.name!r}))."
            )
        elif isinstance(operation, ops.AlterColumnOp) and native_enum(operation.modify_type):
            notes.append(
                f"{operation.table_name}.{operation.column_name} becomes an Enum: autogenerate "
                "writes no CREATE TYPE and no USING cast for it; add both by hand."
            )
    gone = [f"{t}.{c}" for t, cs in sorted(dropped.items()) for c in cs] + dropped_tables_
    if gone:
        notes.append(
            f"drops {', '.join(gone)}: {'if it was an Enum, ' if sqlite else ''}"
            "a PostgreSQL enum type used only there is not dropped "
            "with it; drop it by hand (sa.Enum(name=…).drop(op.get_bind())) and create it again "
            "in downgrade()."
        )
    return notes


def revision_hook(
    config: Config, metadata: MetaData, url: str
) -> Callable[[MigrationContext, Any, list[ops.MigrationScript]], None]:
    """Build the ``process_revision_directives`` callback for ``env.py``."""

    def process_revision_directives(
        context: MigrationContext, _revision: Any, directives: list[ops.MigrationScript]
    ) -> None:
        if not getattr(config.cmd_opts, "autogenerate", False) or not directives:
            return  # plain `revision`, `flask db check`, test harnesses
        upgrade_ops = directives[0].upgrade_ops
        assert upgrade_ops is not None and context.connection is not None
        if upgrade_ops.is_empty():
            script = ScriptDirectory.from_config(config)
            causes = diagnose(context.connection, metadata, script, url)
            raise NoChangesDetected("\n".join([NO_CHANGES, *(f"  - {c}" for c in causes)]))
        existing = application_tables(context.connection)
        if existing and existing <= dropped_tables(upgrade_ops):
            raise DestructiveMigrationRefused(
                f"Refusing a migration that drops every table ({_names(existing)}). "
                "Usually the models were not imported (an empty metadata). If you really "
                "mean it, write it by hand: make migration-create name=…"
            )
        refusal = rename_refusal(upgrade_ops)
        if refusal:
            raise RenameRefused(refusal)
        config.attributes[PHASES_ATTRIBUTE] = split_by_phase(directives)
        banners: dict[str, list[str]] = {}
        notes: list[str] = []
        for directive in directives:
            assert directive.upgrade_ops is not None and directive.rev_id is not None
            banners[directive.rev_id] = destructive_operations(directive.upgrade_ops)
            created_types = add_enum_type_operations(directive, metadata, context.connection)
            notes += blind_spots(
                directive.upgrade_ops, created_types, context.connection.dialect.name
            )
        config.attributes[BANNER_ATTRIBUTE] = banners
        config.attributes[BLIND_SPOTS_ATTRIBUTE] = notes
        rewrite_to_safe_operations(context, _revision, directives)  # last: after the split

    return process_revision_directives
