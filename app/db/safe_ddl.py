"""How the lock-safe operations of ``app.db.ops`` run, on PostgreSQL and on SQLite.

On PostgreSQL every slow step runs in an autocommit block, one statement per
transaction, under the session's ``lock_timeout``, and retries itself on
SQLSTATE 55P03 (``app.db.lock_retry``); each step first looks at the catalog,
so a re-run skips what is done. Locks, from the PostgreSQL manual
("Explicit Locking", "ALTER TABLE"):

- ``safe_create_index``: ``CREATE INDEX CONCURRENTLY`` (SHARE UPDATE
  EXCLUSIVE); an INVALID index of that name, left by a failed build, is
  dropped (``DROP INDEX CONCURRENTLY``) first; a valid one is kept;
- ``safe_add_foreign_key`` / ``safe_add_check``: ``ADD CONSTRAINT … NOT VALID``
  (a brief lock, no scan), then ``VALIDATE CONSTRAINT`` (SHARE UPDATE
  EXCLUSIVE: reads and writes go on during the scan);
- ``safe_set_not_null``: a ``CHECK (col IS NOT NULL) NOT VALID``, validated;
  then ``SET NOT NULL``, which PostgreSQL 12+ proves from that check without
  a scan; then the check is dropped;
- ``safe_add_unique``: a unique index built concurrently, then ``ADD
  CONSTRAINT … UNIQUE USING INDEX``;
- ``unsafe_drop_column`` / ``unsafe_drop_table``: the plain drop.

On SQLite (one writer, no concurrent DDL) each is the plain operation, in a
``batch_alter_table`` where SQLite cannot ``ALTER`` in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.operations import Operations
from sqlalchemy import text
from sqlalchemy.sql.elements import conv

from app.db.lock_retry import retrying
from app.db.ops import (
    SafeAddCheckOp,
    SafeAddForeignKeyOp,
    SafeAddUniqueOp,
    SafeCreateIndexOp,
    SafeSetNotNullOp,
    UnsafeDropColumnOp,
    UnsafeDropTableOp,
)


def _on_postgresql(operations: Operations) -> bool:
    return operations.get_context().dialect.name == "postgresql"


def _offline(operations: Operations) -> bool:
    return bool(operations.get_context().as_sql)


def _quote(operations: Operations, name: str) -> str:
    return operations.get_context().dialect.identifier_preparer.quote(name)


def _scalar(operations: Operations, sql: str, **params: Any) -> Any:
    """A catalog lookup; offline (``--sql``) there is no catalog, and nothing is there yet."""
    if _offline(operations):
        return None
    return operations.get_bind().execute(text(sql), params).scalar()


def _index_valid(operations: Operations, name: str) -> bool | None:
    """``None``: no index of that name; else whether PostgreSQL marked it valid."""
    return _scalar(
        operations,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = :name AND pg_table_is_visible(c.oid)",
        name=name,
    )


def _has_constraint(operations: Operations, table: str, name: str) -> bool:
    return bool(
        _scalar(
            operations,
            "SELECT 1 FROM pg_constraint WHERE conname = :name AND conrelid = to_regclass(:table)",
            name=name,
            table=table,
        )
    )


def _step(what: str, step: Callable[[], Any]) -> None:
    """One statement of an autocommit block, retried on lock timeout."""
    retrying(step, what)


def _drop_constraint(operations: Operations, table: str, name: str) -> str:
    return (
        f"ALTER TABLE {_quote(operations, table)} "
        f"DROP CONSTRAINT IF EXISTS {_quote(operations, name)}"
    )


def _validate(operations: Operations, table: str, name: str) -> None:
    sql = f"ALTER TABLE {_quote(operations, table)} VALIDATE CONSTRAINT {_quote(operations, name)}"
    _step(sql, lambda: operations.execute(sql))


def _create_index_concurrently(
    operations: Operations, name: str, table: str, columns: list, **kw: Any
) -> None:
    def build() -> None:
        valid = _index_valid(operations, name)
        if valid:
            return  # built by an earlier run of this revision
        if valid is False:  # a failed CONCURRENTLY build leaves an INVALID index behind
            operations.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(operations, name)}")
        operations.create_index(conv(name), table, columns, postgresql_concurrently=True, **kw)

    try:
        _step(f"CREATE INDEX CONCURRENTLY {name} ON {table}", build)
    except Exception:
        # A failed build (duplicates, a bad expression) leaves an INVALID index that
        # every write keeps maintaining, and a unique one keeps enforcing: the
        # previous release must not serve with it while the revision stays pending.
        operations.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(operations, name)}")
        raise


@Operations.implementation_for(SafeCreateIndexOp)
def safe_create_index(operations: Operations, operation: SafeCreateIndexOp) -> None:
    name, columns = operation.args
    if not _on_postgresql(operations):
        operations.create_index(conv(name), operation.table_name, columns, **operation.kw)
        return
    with operations.get_context().autocommit_block():
        _create_index_concurrently(operations, name, operation.table_name, columns, **operation.kw)


def _add_then_validate(
    operations: Operations, table: str, name: str, add: Callable[[], Any], what: str
) -> None:
    with operations.get_context().autocommit_block():
        if not _has_constraint(operations, table, name):
            _step(what, add)
        try:
            _validate(operations, table, name)
        except Exception:
            # Rows that break it: NOT VALID still checks every new write, so the
            # constraint would refuse the previous release's writes while the
            # revision stays pending. Take it away; the revision fails as a whole.
            operations.execute(_drop_constraint(operations, table, name))
            raise


@Operations.implementation_for(SafeAddForeignKeyOp)
def safe_add_foreign_key(operations: Operations, operation: SafeAddForeignKeyOp) -> None:
    name, referent, local, remote = operation.args
    source, kw = operation.table_name, operation.kw
    if not _on_postgresql(operations):
        with operations.batch_alter_table(source) as batch:
            batch.create_foreign_key(conv(name), referent, local, remote, **kw)
        return
    add = lambda: operations.create_foreign_key(  # noqa: E731
        conv(name), source, referent, local, remote, postgresql_not_valid=True, **kw
    )
    _add_then_validate(operations, source, name, add, f"ADD CONSTRAINT {name} NOT VALID")


@Operations.implementation_for(SafeAddCheckOp)
def safe_add_check(operations: Operations, operation: SafeAddCheckOp) -> None:
    name, condition = operation.args
    table = operation.table_name
    if not _on_postgresql(operations):
        with operations.batch_alter_table(table) as batch:
            batch.create_check_constraint(conv(name), condition, **operation.kw)
        return
    add = lambda: operations.create_check_constraint(  # noqa: E731
        conv(name), table, condition, postgresql_not_valid=True, **operation.kw
    )
    _add_then_validate(operations, table, name, add, f"ADD CONSTRAINT {name} NOT VALID")


def not_null_check_name(table: str, column: str) -> str:
    """The temporary check's name, within PostgreSQL's 63-byte identifiers."""
    return f"ck_{table}_{column}_not_null"[:63]


@Operations.implementation_for(SafeSetNotNullOp)
def safe_set_not_null(operations: Operations, operation: SafeSetNotNullOp) -> None:
    (column,) = operation.args
    table = operation.table_name
    if not _on_postgresql(operations):
        with operations.batch_alter_table(table) as batch:
            batch.alter_column(column, nullable=False, **operation.kw)
        return
    check = not_null_check_name(table, column)
    add = lambda: operations.create_check_constraint(  # noqa: E731
        conv(check), table, f"{_quote(operations, column)} IS NOT NULL", postgresql_not_valid=True
    )
    _add_then_validate(operations, table, check, add, f"ADD CONSTRAINT {check} NOT VALID")
    with operations.get_context().autocommit_block():
        set_not_null = (
            f"ALTER TABLE {_quote(operations, table)} "
            f"ALTER COLUMN {_quote(operations, column)} SET NOT NULL"
        )
        _step(set_not_null, lambda: operations.execute(set_not_null))
        drop = _drop_constraint(operations, table, check)
        _step(drop, lambda: operations.execute(drop))


@Operations.implementation_for(SafeAddUniqueOp)
def safe_add_unique(operations: Operations, operation: SafeAddUniqueOp) -> None:
    name, columns = operation.args
    table = operation.table_name
    if not _on_postgresql(operations):
        with operations.batch_alter_table(table) as batch:
            batch.create_unique_constraint(conv(name), columns, **operation.kw)
        return
    attach = (
        f"ALTER TABLE {_quote(operations, table)} ADD CONSTRAINT {_quote(operations, name)} "
        f"UNIQUE USING INDEX {_quote(operations, name)}"
    )
    with operations.get_context().autocommit_block():
        _create_index_concurrently(operations, name, table, columns, unique=True)
        if not _has_constraint(operations, table, name):
            _step(attach, lambda: operations.execute(attach))


@Operations.implementation_for(UnsafeDropColumnOp)
def unsafe_drop_column(operations: Operations, operation: UnsafeDropColumnOp) -> None:
    (column,) = operation.args
    with operations.batch_alter_table(operation.table_name) as batch:
        batch.drop_column(column, **operation.kw)


@Operations.implementation_for(UnsafeDropTableOp)
def unsafe_drop_table(operations: Operations, operation: UnsafeDropTableOp) -> None:
    operations.drop_table(operation.table_name, **operation.kw)
