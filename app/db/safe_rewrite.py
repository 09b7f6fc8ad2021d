"""Generated revisions use the lock-safe operations of ``app.db.ops`` by default.

:func:`rewrite_to_safe_operations` is one step of the
``process_revision_directives`` chain (``app.db.diagnose.revision_hook``), run
after the revision's operations are final. An Alembic ``Rewriter`` turns, in
``upgrade()`` only:

- ``create_index`` on a table that exists already → ``safe_create_index``
  (an index on a table created in the same revision stays plain: nobody reads
  an empty new table);
- ``create_foreign_key`` → ``safe_add_foreign_key``; a check constraint →
  ``safe_add_check``; ``create_unique_constraint`` → ``safe_add_unique``
  (each on an existing table);
- ``alter_column(nullable=False)`` on an existing column →
  ``safe_set_not_null`` (other changes in the same ``alter_column`` stay);
- ``drop_column`` → ``unsafe_drop_column``, ``drop_table`` → ``unsafe_drop_table``.

The renderers write each as ``op.<name>(…)`` in the generated file.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.rewriter import Rewriter
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Column
from sqlalchemy.sql.elements import ClauseElement

from app.db import ops as safe
from app.db.operation_tree import leaf_operations

_rewriter = Rewriter()
_new: dict[str, set[Any]] = {"tables": set(), "columns": set(), "upgrade": set()}


def rewrite_to_safe_operations(
    context: MigrationContext, revision: Any, directives: list[ops.MigrationScript]
) -> None:
    """``process_revision_directives`` step: the safe forms in every generated ``upgrade()``."""
    for script in directives:
        upgrade = [op for ops_ in script.upgrade_ops_list for op in leaf_operations(ops_.ops)]
        _new["upgrade"] = {id(op) for op in upgrade}
        _new["tables"] = {op.table_name for op in upgrade if isinstance(op, ops.CreateTableOp)}
        _new["columns"] = {
            (op.table_name, op.column.name) for op in upgrade if isinstance(op, ops.AddColumnOp)
        }
        _rewriter(context, revision, [script])
        for upgrade_ops in script.upgrade_ops_list:
            upgrade_ops.ops = _out_of_batches(upgrade_ops.ops)


def _out_of_batches(operations: list[ops.MigrateOperation]) -> list[ops.MigrateOperation]:
    """Safe operations as ``op.*`` calls of their own, between the ``batch_alter_table`` blocks."""
    found: list[ops.MigrateOperation] = []
    for operation in operations:
        if not isinstance(operation, ops.ModifyTableOps):
            found.append(operation)
            continue
        batch: list[ops.MigrateOperation] = []
        for inner in operation.ops:
            if isinstance(inner, safe.SafeOperation):
                if batch:
                    found.append(
                        ops.ModifyTableOps(operation.table_name, batch, schema=operation.schema)
                    )
                    batch = []
                found.append(inner)
            else:
                batch.append(inner)
        if batch:
            found.append(ops.ModifyTableOps(operation.table_name, batch, schema=operation.schema))
    return found


def _existing_table(operation: Any) -> bool:
    table = getattr(operation, "table_name", None) or getattr(operation, "source_table", None)
    return id(operation) in _new["upgrade"] and table not in _new["tables"]


def _name(value: Any) -> str | None:
    """A constraint's or index's given name; ``None`` when the naming convention is to make it."""
    return value if isinstance(value, str) else None


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | tuple)


@_rewriter.rewrites(ops.CreateIndexOp)
def _index(_context: Any, _revision: Any, op: ops.CreateIndexOp) -> Any:
    columns = [c.name if isinstance(c, Column) else c for c in op.columns]
    name = _name(op.index_name)
    if not _existing_table(op) or not all(isinstance(c, str) for c in columns) or not name:
        return op  # a new table, or an expression index: left as written
    if not all(_plain(v) for v in op.kw.values()):
        return op
    return safe.SafeCreateIndexOp(name, op.table_name, columns, unique=op.unique, **op.kw)


@_rewriter.rewrites(ops.CreateForeignKeyOp)
def _foreign_key(_context: Any, _revision: Any, op: ops.CreateForeignKeyOp) -> Any:
    name = _name(op.constraint_name)
    if not _existing_table(op) or not name:
        return op
    kw = {k: v for k, v in op.kw.items() if v is not None and _plain(v)}
    return safe.SafeAddForeignKeyOp(
        name, op.source_table, op.referent_table, op.local_cols, op.remote_cols, **kw
    )


@_rewriter.rewrites(ops.CreateCheckConstraintOp)
def _check(_context: Any, _revision: Any, op: ops.CreateCheckConstraintOp) -> Any:
    name = _name(op.constraint_name)
    if not _existing_table(op) or not name:
        return op
    return safe.SafeAddCheckOp(name, op.table_name, op.condition)


@_rewriter.rewrites(ops.AddConstraintOp)
def _constraint(_context: Any, _revision: Any, op: ops.AddConstraintOp) -> Any:
    name = _name(getattr(op, "constraint_name", None))
    if isinstance(op, ops.CreateUniqueConstraintOp) and _existing_table(op) and name:
        return safe.SafeAddUniqueOp(name, op.table_name, op.columns)
    return op


@_rewriter.rewrites(ops.AlterColumnOp)
def _not_null(_context: Any, _revision: Any, op: ops.AlterColumnOp) -> Any:
    new_column = (op.table_name, op.column_name) in _new["columns"]
    if op.modify_nullable is not False or not _existing_table(op) or new_column:
        return op
    set_not_null = safe.SafeSetNotNullOp(op.table_name, op.column_name)
    op.modify_nullable = None
    op.existing_nullable = False
    return [op, set_not_null] if op.has_changes() else set_not_null


@_rewriter.rewrites(ops.DropColumnOp)
def _drop_column(_context: Any, _revision: Any, op: ops.DropColumnOp) -> Any:
    if id(op) not in _new["upgrade"]:
        return op
    return safe.UnsafeDropColumnOp(op.table_name, op.column_name)


@_rewriter.rewrites(ops.DropTableOp)
def _drop_table(_context: Any, _revision: Any, op: ops.DropTableOp) -> Any:
    if id(op) not in _new["upgrade"]:
        return op
    return safe.UnsafeDropTableOp(op.table_name)


# --- rendering: op.<name>(…) in the generated file ---------------------------


def _literal(autogen_context: AutogenContext, value: Any) -> str:
    if isinstance(value, CheckConstraint):
        value = value.sqltext
    if isinstance(value, ClauseElement):
        dialect = autogen_context.dialect
        value = str(value.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return repr(value)


def _render(autogen_context: AutogenContext, operation: safe.SafeOperation) -> str:
    args = [operation.table_name, *operation.args]
    if isinstance(
        operation,
        safe.SafeCreateIndexOp
        | safe.SafeAddForeignKeyOp
        | safe.SafeAddCheckOp
        | safe.SafeAddUniqueOp,
    ):
        args[0], args[1] = args[1], args[0]  # these take the name first, as Alembic's do
    rendered = [_literal(autogen_context, a) for a in args]
    rendered += [f"{k}={_literal(autogen_context, v)}" for k, v in operation.kw.items()]
    return f"op.{operation.name}({', '.join(rendered)})"


for _operation in (
    safe.SafeCreateIndexOp,
    safe.SafeAddForeignKeyOp,
    safe.SafeAddCheckOp,
    safe.SafeSetNotNullOp,
    safe.SafeAddUniqueOp,
    safe.UnsafeDropColumnOp,
    safe.UnsafeDropTableOp,
):
    renderers.dispatch_for(_operation)(_render)
