"""Lock-safe operations for revisions: ``op.safe_create_index(…)`` and the others, declared.

Registered as Alembic operation plugins (``Operations.register_operation``), so
a revision calls them on ``op`` like any other; how each runs is
``app.db.safe_ddl`` (which migrations/env.py imports), how autogenerate writes
them is ``app.db.safe_rewrite``. The name carries the safety, as in
pg_ha_migrations: ``safe_*`` never holds a lock that blocks reads or writes
for longer than a catalog update; ``unsafe_*`` (contract revisions only)
means the running code was audited.

- ``op.safe_create_index(index_name, table_name, columns, unique=False, **kw)``
- ``op.safe_add_foreign_key(name, source_table, referent_table, local_cols, remote_cols, **kw)``
- ``op.safe_add_check(name, table_name, condition)``
- ``op.safe_set_not_null(table_name, column_name)``
- ``op.safe_add_unique(name, table_name, columns)``
- ``op.unsafe_drop_column(table_name, column_name)``, ``op.unsafe_drop_table(table_name)``

Names are taken as written (as ``op.f()`` marks them): the naming convention
is not applied again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from alembic.operations import MigrateOperation, Operations


class SafeOperation(MigrateOperation):
    """One safe (or audited-unsafe) operation: its arguments, kept for rendering."""

    name = ""

    def __init__(self, table_name: str, *args: Any, **kw: Any) -> None:
        self.table_name = table_name
        self.args = args
        self.kw = kw


def _register(name: str, signature: str) -> Callable[[type[SafeOperation]], type[SafeOperation]]:
    def register(cls: type[SafeOperation]) -> type[SafeOperation]:
        def invoke(cls: type[SafeOperation], operations: Operations, *args: Any, **kw: Any) -> Any:
            return operations.invoke(cls(*args, **kw))

        invoke.__doc__ = f"``op.{name}({signature})``: see app/db/ops.py."
        invoke.__name__ = name
        cls.name = name
        setattr(cls, name, classmethod(invoke))
        return Operations.register_operation(name)(cls)

    return register


@_register("safe_create_index", "index_name, table_name, columns, unique=False, **kw")
class SafeCreateIndexOp(SafeOperation):
    def __init__(self, index_name: str, table_name: str, columns: Sequence[Any], **kw: Any):
        super().__init__(table_name, index_name, list(columns), **kw)


@_register("safe_add_foreign_key", "name, source_table, referent_table, local_cols, remote_cols")
class SafeAddForeignKeyOp(SafeOperation):
    def __init__(self, name: str, source: str, referent: str, local: list, remote: list, **kw: Any):
        super().__init__(source, name, referent, list(local), list(remote), **kw)


@_register("safe_add_check", "name, table_name, condition")
class SafeAddCheckOp(SafeOperation):
    def __init__(self, name: str, table_name: str, condition: Any, **kw: Any):
        super().__init__(table_name, name, condition, **kw)


@_register("safe_set_not_null", "table_name, column_name")
class SafeSetNotNullOp(SafeOperation):
    def __init__(self, table_name: str, column_name: str, **kw: Any):
        super().__init__(table_name, column_name, **kw)


@_register("safe_add_unique", "name, table_name, columns")
class SafeAddUniqueOp(SafeOperation):
    def __init__(self, name: str, table_name: str, columns: Sequence[str], **kw: Any):
        super().__init__(table_name, name, list(columns), **kw)


@_register("unsafe_drop_column", "table_name, column_name")
class UnsafeDropColumnOp(SafeOperation):
    def __init__(self, table_name: str, column_name: str, **kw: Any):
        super().__init__(table_name, column_name, **kw)


@_register("unsafe_drop_table", "table_name")
class UnsafeDropTableOp(SafeOperation):
    def __init__(self, table_name: str, **kw: Any):
        super().__init__(table_name, **kw)
