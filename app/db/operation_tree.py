"""Walking the operations autogenerate wrote for a revision."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from alembic.operations import ops


def leaf_operations(operations: Iterable[ops.MigrateOperation]) -> Iterator[ops.MigrateOperation]:
    """Every operation that is not a container, depth first, in the order Alembic writes them.

    Containers (``ModifyTableOps`` for the operations on one table, for example)
    are opened, not yielded.
    """
    for operation in operations:
        if isinstance(operation, ops.OpContainer):
            yield from leaf_operations(operation.ops)
        else:
            yield operation
