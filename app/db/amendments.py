"""The amendment rule: which changed revisions ``flask db run`` and ``revert`` let pass.

An applied revision whose file changed is refused (``flask db verify``), except
an amendment: a changed revision whose file exists only on this branch (not on
main), outside production. That is the everyday "generate, apply, tweak,
re-apply" loop; in production the checksum rule stays absolute. A missing
file is never an amendment.
"""

from __future__ import annotations

from pathlib import Path

from app.db import history
from app.db.alembic_setup import migrations_directory
from app.db.status import MigrationStatus, RevisionStatus, State


def amendments(status: MigrationStatus, *, production: bool) -> list[RevisionStatus]:
    """The changed revisions of ``status`` that are amendments (none in ``production``)."""
    changed = status.having(State.CHANGED)
    if production or not changed:
        return []
    branch_only = history.branch_only(Path(migrations_directory()) / "versions")
    versions = Path(migrations_directory()) / "versions"
    return [r for r in changed if (versions / str(r.filename)).resolve() in branch_only]
