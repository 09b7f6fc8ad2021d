"""PostgreSQL enum types in generated revisions: created before use, dropped on the way back.

Alembic's autogenerate writes an ``sa.Enum`` column but never its PostgreSQL
type: ``op.add_column`` then fails with "type … does not exist", and
``op.drop_table`` leaves the type behind, so "revert, then run" fails with
"type … already exists". ``alembic-postgresql-enum`` fixes this only when
autogenerate runs against PostgreSQL; here it usually runs against the
development SQLite database, so the revision hook adds the operations itself:

- before the tables and columns that first use a named native enum, the
  upgrade creates its type (``sa.Enum(…, name=…).create(op.get_bind())``);
  after dropping them, the downgrade drops it. Both are no-ops on SQLite;
- every named native enum column is rendered as
  ``postgresql.ENUM(…, create_type=False)`` (``render_item``), so creating a
  table does not try to create the type a second time.

A type is new when no column outside this revision's new tables and columns
uses it (and, generating against PostgreSQL, the database has no such type).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from sqlalchemy import Connection, MetaData, inspect
from sqlalchemy.dialects import postgresql

from app.db.operation_tree import leaf_operations


def native_enum(type_: Any) -> sa.Enum | None:
    """The type if it becomes a PostgreSQL enum type (named, native), else None."""
    if isinstance(type_, sa.Enum) and type_.native_enum and type_.name:
        return type_
    return None


class CreateEnumTypeOp(ops.MigrateOperation):
    def __init__(self, name: str, values: tuple[str, ...]) -> None:
        self.name = name
        self.values = values

    def reverse(self) -> DropEnumTypeOp:
        return DropEnumTypeOp(self.name, self.values)


class DropEnumTypeOp(ops.MigrateOperation):
    def __init__(self, name: str, values: tuple[str, ...]) -> None:
        self.name = name
        self.values = values

    def reverse(self) -> CreateEnumTypeOp:
        return CreateEnumTypeOp(self.name, self.values)


def _enum_expression(name: str, values: tuple[str, ...]) -> str:
    arguments = ", ".join([*(repr(value) for value in values), f"name={name!r}"])
    return f"sa.Enum({arguments})"


@renderers.dispatch_for(CreateEnumTypeOp)
def _render_create(_context: AutogenContext, op: CreateEnumTypeOp) -> str:
    return f"{_enum_expression(op.name, op.values)}.create(op.get_bind())"


@renderers.dispatch_for(DropEnumTypeOp)
def _render_drop(_context: AutogenContext, op: DropEnumTypeOp) -> str:
    return f"{_enum_expression(op.name, op.values)}.drop(op.get_bind())"


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """``render_item``: named native enums as ``postgresql.ENUM(…, create_type=False)``."""
    found = native_enum(obj) if type_ == "type" else None
    if found is None:
        return False  # Alembic's default rendering
    if autogen_context.imports is not None:
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
    rendered = postgresql.ENUM(*found.enums, name=found.name, create_type=False)
    return f"postgresql.{rendered!r}"


def _new_columns(upgrade_ops: ops.UpgradeOps) -> list[tuple[str, sa.Column[Any]]]:
    found: list[tuple[str, sa.Column[Any]]] = []
    for operation in leaf_operations(upgrade_ops.ops):
        if isinstance(operation, ops.CreateTableOp):
            found += [
                (operation.table_name, c) for c in operation.columns if isinstance(c, sa.Column)
            ]
        elif isinstance(operation, ops.AddColumnOp):
            found.append((operation.table_name, operation.column))
    return found


def add_enum_type_operations(
    script: ops.MigrationScript, metadata: MetaData, connection: Connection
) -> list[str]:
    """Create new enum types first in the upgrade, drop them last in the downgrade.

    Returns the names of the types it added operations for.
    """
    upgrade_ops, downgrade_ops = script.upgrade_ops, script.downgrade_ops
    if upgrade_ops is None or downgrade_ops is None:
        return []
    new_columns = _new_columns(upgrade_ops)
    new_keys = {(table, column.name) for table, column in new_columns}
    existing = {
        found.name
        for table in metadata.tables.values()
        for column in table.columns
        if (table.name, column.name) not in new_keys and (found := native_enum(column.type))
    }
    if connection.dialect.name == "postgresql":
        existing |= {enum["name"] for enum in inspect(connection).get_enums()}  # type: ignore[attr-defined]
    created: dict[str, tuple[str, ...]] = {}
    for _table, column in new_columns:
        found = native_enum(column.type)
        name = found.name if found is not None else None
        if found is not None and name and name not in existing and name not in created:
            created[name] = tuple(found.enums)
    if not created:
        return []
    upgrade_ops.ops[:0] = [CreateEnumTypeOp(name, values) for name, values in created.items()]
    downgrade_ops.ops += [DropEnumTypeOp(name, values) for name, values in created.items()]
    return list(created)


def enum_columns(upgrade_ops: ops.UpgradeOps) -> list[tuple[str, str, str]]:
    """``(table, column, type name)`` of the enum columns this revision adds."""
    return [
        (table, column.name, found.name or "")
        for table, column in _new_columns(upgrade_ops)
        if (found := native_enum(column.type)) is not None
    ]
