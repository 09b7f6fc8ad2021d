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

from collections.abc import Sequence

from alembic.script import Script, ScriptDirectory

EXPAND = "expand"
CONTRACT = "contract"
PHASES = (EXPAND, CONTRACT)


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
    target = current
    for script in pending_revisions(scripts, current):
        if phase_of(script) == CONTRACT:
            break
        target = script.revision
    return target


def out_of_order(revisions: Sequence[Script]) -> list[Script]:
    """Expand revisions that follow a contract revision in ``revisions`` (oldest first).

    Within one release these cannot run in their phase: an expand run stops at
    the first contract revision.
    """
    seen_contract = False
    misplaced = []
    for script in revisions:
        if phase_of(script) == CONTRACT:
            seen_contract = True
        elif seen_contract:
            misplaced.append(script)
    return misplaced
