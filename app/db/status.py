"""Per-revision status: applied, pending, applied but changed, applied but missing.

The applied set comes from ``alembic_version`` (and the revisions below it);
the checksums from the audit table. A revision the audit table records as
applied, but whose file is gone, is reported as missing even when Alembic can
no longer resolve it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection

from app.db.audit import AuditEntry, file_checksum, read_audit
from app.db.exit_codes import ExitCode
from app.db.phases import EXPAND, PhaseError, phase_of, split_phases
from app.db.sqlite_batch import leftover_batch_tables

CLEAN_COMMAND = "flask db clean"


class State(Enum):
    APPLIED = "X"
    PENDING = " "
    CHANGED = "M"  # applied, and its file changed since
    MISSING = "?"  # applied, and its file is gone

    @property
    def applied(self) -> bool:
        """Applied to the database, its file here (changed since or not)."""
        return self in (State.APPLIED, State.CHANGED)


@dataclass(frozen=True)
class RevisionStatus:
    revision: str
    filename: str | None
    message: str
    state: State
    checksum_recorded: bool = True
    phase: str = EXPAND  # app.db.phases; "?" when the revision names an unknown one
    # Counted as applied (the database is at or past it) though no run recorded it,
    # above a revision a run did record: it came in below revisions applied (a rebase).
    never_ran: bool = False

    @property
    def line(self) -> str:
        if self.state is State.MISSING:
            return f"[?] {self.revision}  {self.filename or ''}  (file missing)"
        note = "" if self.checksum_recorded else "  (no checksum recorded)"
        if self.never_ran:
            note = "  (never ran here: it came in below revisions already applied)"
        return (
            f"[{self.state.value}] {self.revision}  {self.phase:<8}  {self.filename}  "
            f"{self.message}{note}"
        )


@dataclass
class MigrationStatus:
    revisions: list[RevisionStatus]
    current: tuple[str, ...] = ()
    heads: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # SQLite: _alembic_tmp_* tables

    @property
    def elsewhere(self) -> list[str]:
        """Revisions the database is at that this checkout does not have (another branch?)."""
        known = {r.revision for r in self.revisions if r.state is not State.MISSING}
        return [rev for rev in self.current if rev not in known]

    def elsewhere_recipe(self) -> str:
        names = ", ".join(self.elsewhere)
        return (
            f"The database is at {names}, which this checkout does not have: it was applied "
            "from another branch. To leave it: switch back to that branch, "
            "`make migration-revert` until it is reverted, then switch here again and "
            "`make migration-run`. If its file was removed on purpose instead: "
            f"`make migration-accept rev={self.elsewhere[0]}` and "
            "`flask db stamp --purge <the revision it followed>` (what it created stays)."
        )

    @property
    def leftover_notes(self) -> list[str]:
        return [
            f"table {name} was left behind by a failed batch migration (SQLite); later "
            f"migrations of that table fail until it is gone: `{CLEAN_COMMAND}` drops it"
            for name in self.leftovers
        ]

    def having(self, state: State) -> list[RevisionStatus]:
        return [r for r in self.revisions if r.state is state]

    @property
    def pending(self) -> list[RevisionStatus]:
        return self.having(State.PENDING)

    @property
    def tampered(self) -> list[RevisionStatus]:
        return self.having(State.CHANGED) + self.having(State.MISSING)

    @property
    def never_ran(self) -> list[RevisionStatus]:
        return [r for r in self.revisions if r.never_ran]

    def never_ran_recipe(self) -> str:
        """How to run what a rebase slid in below revisions this database already applied."""
        first = self.never_ran[0]
        index = self.revisions.index(first)
        before = next(
            (r.revision for r in reversed(self.revisions[:index]) if r.state is State.APPLIED),
            "base",
        )
        names = ", ".join(r.revision for r in self.never_ran)
        last = self.revisions.index(self.never_ran[-1])
        between = [
            r.revision for r in self.revisions[index:last] if not r.never_ran and r.state.applied
        ]
        if between:
            undo = (
                f"{', '.join(between)} ran between them, so no stamp can redo them alone: "
                "apply them by hand"
            )
        else:
            undo = (
                "Undo those first: `make migration-revert` until the database is at "
                f"{self.never_ran[-1].revision}, then `flask db stamp {before}` (the last "
                "revision that really ran), then `make migration-run`"
            )
        return (
            f"{names} never ran on this database, though the database is at or past it: it "
            "came in below revisions already applied here (a rebase onto another branch's "
            f"revision). {undo}. If it was applied by hand, `make migration-accept "
            f"rev={self.never_ran[0].revision}` records it."
        )

    @property
    def unrecorded(self) -> list[RevisionStatus]:
        """Applied without a recorded checksum (before the audit table); not ones that never ran."""
        return [
            r
            for r in self.revisions
            if r.state is State.APPLIED and not r.checksum_recorded and not r.never_ran
        ]

    @property
    def exit_code(self) -> ExitCode:
        if self.tampered:
            return ExitCode.CHANGED
        if self.pending:
            return ExitCode.PENDING
        return ExitCode.OK

    def summary(self) -> str:
        counts = {state: len(self.having(state)) for state in State}
        text = (
            f"{counts[State.APPLIED] + counts[State.CHANGED]} applied, "
            f"{counts[State.PENDING]} pending, {counts[State.CHANGED]} changed since applied, "
            f"{counts[State.MISSING]} missing; database at {', '.join(self.current) or 'base'}, "
            f"head {', '.join(self.heads) or 'none'}."
        )
        if self.never_ran:
            text += " " + self.never_ran_recipe()
        elif self.tampered:
            text += " Changed or missing files: see `make migration-verify`."
        elif self.pending:
            text += " Apply with `make migration-run`. " + self.phase_summary()
        return text

    def phase_summary(self) -> str:
        """What ``run --phase expand`` and then ``run --phase contract`` would apply."""
        expand, contract = split_phases(self.pending, lambda revision: revision.phase)
        return (
            f"An expand run would apply {_listed(expand)}; a contract run then {_listed(contract)}."
        )


def _listed(revisions: list[RevisionStatus]) -> str:
    if not revisions:
        return "nothing"
    return f"{len(revisions)} ({', '.join(r.revision for r in revisions)})"


def _phase(script: Script, problems: list[str]) -> str:
    try:
        return phase_of(script)
    except PhaseError as error:
        problems.append(str(error))
        return "?"


def _revisions_oldest_first(script: ScriptDirectory) -> tuple[list[Script], list[str]]:
    """Revisions in history order; by file name (creation time) if the history is broken."""
    try:
        return list(reversed(list(script.walk_revisions()))), []
    except (CommandError, KeyError) as error:
        # A revision file is missing from the middle of the history: load the files
        # one by one (Alembic's loader, without building the revision map).
        known = [s for s in script._load_revisions() if isinstance(s, Script)]
        return sorted(known, key=lambda s: Path(s.path).name), [
            f"the history is broken (revision {error} cannot be found); "
            "restore the missing file from git"
        ]


def _applied_ids(script: ScriptDirectory, current: tuple[str, ...], known: set[str]) -> set[str]:
    applied: set[str] = set()
    for head in current:
        if head not in known:
            applied.add(head)
            continue
        try:
            applied.update(s.revision for s in script.iterate_revisions(head, "base"))
        except (CommandError, KeyError):
            applied.add(head)
    return applied


def read_status(script: ScriptDirectory, connection: Connection) -> MigrationStatus:
    """Compare the revision files with what the database says was applied."""
    revisions, problems = _revisions_oldest_first(script)
    known = {s.revision for s in revisions}
    current = tuple(MigrationContext.configure(connection).get_current_heads())
    audit = read_audit(connection)
    applied = _applied_ids(script, current, known)
    if problems or not set(current) <= known:
        # History unresolvable, or the database is at a revision this checkout lacks
        # (applied on another branch): the audit table says what else is applied.
        applied |= {rev for rev, entry in audit.items() if entry.applied}

    statuses: list[RevisionStatus] = []
    for rev in revisions:
        entry = audit.get(rev.revision)
        filename = Path(rev.path).name
        message = (rev.doc or "").strip()
        phase = _phase(rev, problems)
        recorded = True
        if rev.revision not in applied:
            state = State.PENDING
        elif entry is None or entry.checksum is None:
            state, recorded = State.APPLIED, False
        elif entry.checksum != file_checksum(rev.path):
            state = State.CHANGED
        else:
            state = State.APPLIED
        statuses.append(RevisionStatus(rev.revision, filename, message, state, recorded, phase))
    if not problems:
        statuses = _mark_never_ran(statuses, audit)

    missing = (applied | {rev for rev, entry in audit.items() if entry.applied}) - known
    for gone in sorted(missing, key=lambda r: _missing_sort_key(audit.get(r), r)):
        entry = audit.get(gone)
        statuses.append(RevisionStatus(gone, entry.filename if entry else None, "", State.MISSING))
    if problems:  # no history order to follow: file names sort by creation time
        statuses.sort(key=lambda r: r.filename or r.revision)
    try:
        heads = tuple(script.get_heads())
    except (CommandError, KeyError):
        heads = ()
    return MigrationStatus(statuses, current, heads, problems, leftover_batch_tables(connection))


def _mark_never_ran(
    statuses: list[RevisionStatus], audit: dict[str, AuditEntry]
) -> list[RevisionStatus]:
    """Mark applied revisions that no run recorded, above one that a run did.

    Revisions applied before the audit table existed, or stamped on a database
    built otherwise, sit below the first recorded run and stay unmarked (an
    acceptance of one of them, ``flask db accept``, is not a run). A revision
    accepted as applied (a forward stamp after applying it by hand) is known. A
    revision rebased in below one this database already ran sits above a
    recorded run, and stays so after that one is reverted (the database is
    then "at" the revision that never ran).
    """

    def known(status: RevisionStatus) -> bool:  # ran here, or accepted as applied
        entry = audit.get(status.revision)
        return entry is not None and entry.applied

    def ran(status: RevisionStatus) -> bool:
        entry = audit.get(status.revision)
        return entry is not None and entry.applied and entry.upgraded

    applied = [s for s in statuses if s.state.applied]
    first_run = next((i for i, s in enumerate(applied) if ran(s)), None)
    if first_run is None:
        return statuses
    gap = {s.revision for s in applied[first_run + 1 :] if not known(s)}
    return [replace(s, never_ran=True) if s.revision in gap else s for s in statuses]


def _missing_sort_key(entry: AuditEntry | None, revision: str) -> str:
    return (entry.filename if entry and entry.filename else "") or revision
