"""Renames that autogenerate sees as a drop plus an add, refused with the two-release recipe.

Autogenerate cannot see a rename: a renamed column is a column dropped and
another added on the same table, a renamed table is a table dropped and
another created. Generated as such, the revision loses the data; written as
``op.alter_column(new_column_name=…)`` it breaks the release still serving.
``flask db generate`` therefore refuses both shapes and prints the
expand/contract recipe (pgroll's ``rename_column``, GitLab's "rename a column
in two releases"), filled in with the names it found.
"""

from __future__ import annotations

from alembic.operations import ops

from app.db.operation_tree import leaf_operations


def column_renames(upgrade_ops: ops.UpgradeOps) -> list[tuple[str, list[str], list[str]]]:
    """``(table, dropped columns, added columns)`` for each table that loses and gains columns."""
    added: dict[str, list[str]] = {}
    dropped: dict[str, list[str]] = {}
    for operation in leaf_operations(upgrade_ops.ops):
        if isinstance(operation, ops.AddColumnOp):
            added.setdefault(operation.table_name, []).append(operation.column.name)
        elif isinstance(operation, ops.DropColumnOp):
            dropped.setdefault(operation.table_name, []).append(operation.column_name)
    both = sorted(added.keys() & dropped.keys())
    return [(table, dropped[table], added[table]) for table in both]


def table_renames(upgrade_ops: ops.UpgradeOps) -> tuple[list[str], list[str]]:
    """``(dropped tables, created tables)`` when a change both drops and creates tables."""
    created = [
        o.table_name for o in leaf_operations(upgrade_ops.ops) if isinstance(o, ops.CreateTableOp)
    ]
    dropped = [
        o.table_name for o in leaf_operations(upgrade_ops.ops) if isinstance(o, ops.DropTableOp)
    ]
    return (dropped, created) if created and dropped else ([], [])


def column_recipe(table: str, old: str, new: str) -> str:
    """The expand/contract rename of ``table.old`` to ``table.new``, over two releases."""
    backfill = f"UPDATE {table} SET {new} = {old} WHERE {new} IS NULL"  # noqa: S608 - advice
    return (
        f"Rename {table}.{old} to {table}.{new} over two releases:\n"
        f"  release N, expand revision: add {table}.{new} nullable "
        f"(the models keep {old} too, until release N+1);\n"
        f"    keep both in step while both releases serve: the new code writes {old} and "
        f"{new}, or a trigger copies {old} into {new} on INSERT and UPDATE;\n"
        f"    backfill in batches: {backfill} "
        "(make migration-create name=… data=1);\n"
        f"    the new code reads {new}.\n"
        f"  release N+1 (every replica runs release N): remove {old} from the models; "
        f"`make migration-generate` writes a contract revision that drops {table}.{old} "
        "(and the trigger, if any)."
    )


def table_recipe(old: str, new: str) -> str:
    return (
        f"Rename table {old} to {new} over two releases:\n"
        f"  release N, expand revision: create {new}, keep it in step with {old} "
        f"(the new code writes both, or a trigger on {old}), backfill {new} in batches; "
        f"the new code reads {new}.\n"
        f"  release N+1: remove {old} from the models; the contract revision drops it."
    )


def rename_refusal(upgrade_ops: ops.UpgradeOps) -> str | None:
    """The refusal, recipes included, when a change drops and adds on one table or swaps
    tables; ``None`` otherwise.

    A change that is not a rename goes through in two steps as well: first
    the models' additions (an expand revision), then the removals (a contract
    revision).
    """
    recipes = [
        column_recipe(table, old, new)
        for table, dropped, added in column_renames(upgrade_ops)
        for old, new in zip(dropped, added, strict=False)
    ]
    dropped_tables, created_tables = table_renames(upgrade_ops)
    recipes += [
        table_recipe(old, new) for old, new in zip(dropped_tables, created_tables, strict=False)
    ]
    if not recipes:
        return None
    return (
        "Refused: this change drops and adds in one go, which is what a rename looks like "
        "to autogenerate; generated as it is, it loses the data, and a one-step rename "
        "breaks the release still serving. No file was written.\n"
        + "\n".join(recipes)
        + "\nIf it is not a rename, generate it in two steps: the additions first "
        "(an expand revision), then the removals (a contract revision)."
    )
