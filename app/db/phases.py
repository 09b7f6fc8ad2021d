"""Expand and contract: the two phases of a release, named by every revision.

A release ships new code and the revisions it needs. While it rolls out, the
previous release still serves, so its revisions are split in two:

- **expand** revisions only add (tables, nullable columns, columns with a
  constant default, indexes built concurrently, constraints added ``NOT
  VALID``): the previous release keeps working on the schema they leave. They
  run *before* the new code ships: ``flask db run --phase expand``.
- **contract** revisions remove or tighten (drop or rename a column or table,
  change a type, ``SET NOT NULL`` on an existing column): only the new release
  works on the schema they leave. They run *after* every replica runs the new
  code: ``flask db run --phase contract``.

A revision names its phase in a module-level ``phase = "expand"`` or
``phase = "contract"`` (written by ``migrations/script.py.mako``). Revisions
written before phases existed name none and count as expand.

Within one release every expand revision comes before every contract one:
the chain is linear, so an expand run stops at the first pending contract
revision. The pattern comes from pgroll's start/complete, GitLab's
post-deployment migrations and strong_migrations' safe operations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from alembic.operations import ops
from alembic.script import Script, ScriptDirectory
from alembic.util import rev_id

EXPAND = "expand"
CONTRACT = "contract"
PHASES = (EXPAND, CONTRACT)
T = TypeVar("T")


class PhaseError(ValueError):
    """A revision names a phase that does not exist."""


def phase_of(script: Script) -> str:
    """The phase a revision declares (``expand`` when it declares none).

    Raises :class:`PhaseError` for any other value, naming the revision.
    """
    value = getattr(script.module, "phase", EXPAND)
    if value not in PHASES:
        raise PhaseError(
            f"revision {script.revision} names phase {value!r}; "
            f"a revision's phase is {EXPAND!r} or {CONTRACT!r}"
        )
    return str(value)


def pending_revisions(scripts: ScriptDirectory, current: str | None) -> list[Script]:
    """The revisions after ``current`` (exclusive) up to the head, oldest first."""
    lower = current or "base"
    return list(reversed(list(scripts.iterate_revisions("heads", lower))))


def expand_target(scripts: ScriptDirectory, current: str | None) -> str | None:
    """Where an expand run stops: the last pending revision before the first contract one.

    ``current`` is the revision the database is at (``None`` for an empty
    database). Returns ``current`` itself when the first pending revision is a
    contract one (nothing to run in the expand phase).
    """
    expand, _ = split_phases(pending_revisions(scripts, current), phase_of)
    return expand[-1].revision if expand else current


def split_phases(revisions: Sequence[T], phase: Callable[[T], str]) -> tuple[list[T], list[T]]:
    """``revisions`` (oldest first) cut at the first contract one: (expand run, contract run).

    ``phase`` reads an item's phase (:func:`phase_of` for Alembic scripts).
    """
    first_contract = next(
        (i for i, item in enumerate(revisions) if phase(item) == CONTRACT), len(revisions)
    )
    return list(revisions[:first_contract]), list(revisions[first_contract:])


def out_of_order(revisions: Sequence[Script]) -> list[Script]:
    """Expand revisions that follow a contract revision in ``revisions`` (oldest first).

    Within one release these cannot run in their phase: an expand run stops at
    the first contract revision.
    """
    _, from_first_contract = split_phases(revisions, phase_of)
    return [script for script in from_first_contract if phase_of(script) != CONTRACT]


class PhaseOrderError(PhaseError):
    """An expand revision follows a contract one among the pending revisions."""


@dataclass(frozen=True)
class RunPlan:
    """What ``flask db run --phase …`` applies: Alembic's upgrade target and the revisions."""

    target: str
    revisions: list[Script]


def run_plan(scripts: ScriptDirectory, current: str | None, phase: str | None) -> RunPlan:
    """The revisions a run in ``phase`` applies (``None``: every pending one), oldest first.

    expand: up to, not including, the first pending contract revision.
    contract: every pending revision; raises :class:`PhaseOrderError` naming
    the expand revisions that follow a contract one (they belonged before it).
    """
    pending = pending_revisions(scripts, current)
    if phase == EXPAND:
        expand, _ = split_phases(pending, phase_of)
        return RunPlan(expand[-1].revision if expand else current or "base", expand)
    if phase == CONTRACT:
        misplaced = out_of_order(pending)
        if misplaced:
            names = ", ".join(s.revision for s in misplaced)
            raise PhaseOrderError(
                f"expand revision(s) {names} follow a contract revision: an expand run stops "
                "at the first contract revision, so they could never run before the new code "
                "ships. Move them before the contract revision (set down_revision) or make "
                "them contract revisions."
            )
    return RunPlan("heads", pending)


def contract_revisions(revisions: Sequence[Script]) -> list[Script]:
    return [s for s in revisions if phase_of(s) == CONTRACT]


# --- autogenerate: one revision per phase --------------------------------------------

# Operations of other modules (``app.db.ops``, ``app.db.enum_types``) declare a class
# attribute ``phase``, or are named for it: ``Safe*`` forms are expand except the one that
# tightens, ``Unsafe*`` are contract (pg_ha_migrations' naming: the name carries the safety).
CONTRACT_SAFE_OPERATIONS = ("SafeSetNotNull",)


def operation_phase(operation: ops.MigrateOperation) -> str:
    """``expand`` or ``contract`` for one autogenerate operation (a container: its strictest).

    Expand: a new table, column (nullable, or with a server default), index, enum
    type; a foreign key or CHECK constraint (the safe operations add those ``NOT
    VALID``); a loosened or added default, a dropped ``NOT NULL``, a comment.
    Contract: every drop, a rename, a type change, ``SET NOT NULL``, a dropped
    server default, a new unique constraint (rows the previous release writes
    may be refused), a ``NOT NULL`` column without a default (the previous
    release's inserts omit it).
    """
    if isinstance(operation, ops.OpContainer):
        phases = {operation_phase(inner) for inner in operation.ops}
        return CONTRACT if CONTRACT in phases else EXPAND
    declared = getattr(type(operation), "phase", None)
    if declared in PHASES:
        return str(declared)
    name = type(operation).__name__
    if name.startswith(("Unsafe", *CONTRACT_SAFE_OPERATIONS)):
        return CONTRACT
    if name.startswith(("Safe", "CreateEnumType")):
        return EXPAND
    if isinstance(operation, ops.AddColumnOp):
        column = operation.column
        return EXPAND if column.nullable or column.server_default is not None else CONTRACT
    if isinstance(operation, ops.AlterColumnOp):
        return _alter_column_phase(operation)
    if isinstance(operation, ops.CreateUniqueConstraintOp):
        return CONTRACT
    expanding = (ops.CreateTableOp, ops.CreateIndexOp, ops.AddConstraintOp)
    comments = (ops.CreateTableCommentOp, ops.DropTableCommentOp)
    return EXPAND if isinstance(operation, expanding + comments) else CONTRACT


def _alter_column_phase(operation: ops.AlterColumnOp) -> str:
    tightens = operation.modify_nullable is False and operation.existing_nullable is not False
    drops_default = operation.modify_server_default is None and (
        operation.existing_server_default is not None
        and operation.existing_server_default is not False
    )
    if operation.modify_type is not None or operation.modify_name or tightens or drops_default:
        return CONTRACT
    return EXPAND


def _partition(
    operations: Sequence[ops.MigrateOperation],
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """Split a list of operations (batch containers split per table) into expand and contract."""
    expand: list[ops.MigrateOperation] = []
    contract: list[ops.MigrateOperation] = []
    for operation in operations:
        if isinstance(operation, ops.ModifyTableOps):
            inner_expand, inner_contract = _partition(operation.ops)
            for part, inner in ((expand, inner_expand), (contract, inner_contract)):
                if inner:
                    part.append(
                        ops.ModifyTableOps(operation.table_name, inner, schema=operation.schema)
                    )
        elif operation_phase(operation) == CONTRACT:
            contract.append(operation)
        else:
            expand.append(operation)
    return expand, contract


def split_by_phase(directives: list[ops.MigrationScript]) -> dict[str, str]:
    """``process_revision_directives`` step: one revision per phase, expand first.

    ``directives`` holds the one autogenerated :class:`MigrationScript`.
    When its operations are all of one phase it stays as it is; otherwise it
    keeps the expand operations and a second script is appended, revising it,
    with the contract ones (Alembic writes every script in the list, in order;
    each downgrade is its upgrade reversed). Returns ``{revision id: phase}``
    for the revision template. Rewriters that render operations differently
    (``app.db.ops``) chain after this step and see each script's operations.
    """
    script = directives[0]
    assert script.upgrade_ops is not None and script.rev_id is not None
    expand, contract = _partition(script.upgrade_ops.ops)
    if not expand or not contract:
        return {script.rev_id: CONTRACT if contract else EXPAND}
    follower = ops.MigrationScript(
        rev_id(),
        ops.UpgradeOps(ops=contract),
        ops.UpgradeOps(ops=contract).reverse(),
        message=f"{script.message or ''} (contract)".strip(),
        imports=set(script.imports),
        head=script.rev_id,
    )
    script.upgrade_ops = ops.UpgradeOps(ops=expand)
    script.downgrade_ops = ops.UpgradeOps(ops=expand).reverse()
    directives.append(follower)
    return {script.rev_id: EXPAND, str(follower.rev_id): CONTRACT}
