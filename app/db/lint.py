"""Review: a revision's PostgreSQL SQL, rendered offline, and squawk's hazard rules over it.

Rendering needs no server: ``env.py`` renders for ``sql_url`` (a bare
``postgresql+psycopg://`` URL) because SQLite batch migrations cannot be
rendered offline. squawk (the ``squawk-cli`` package) reports many rules; the
ones below block ``make migration-lint`` until the revision is recorded as
reviewed in ``migrations/reviewed.txt`` (``flask db review <id> "<why>"``),
one line per revision:

    <revision id>  <why it is safe>

Each finding says why and the safe form to write instead
(``app.db.hazard_advice``), with the statement's own table and column names.
The lock-safe operations (``op.safe_*``, ``app.db.ops``) render SQL none of
these rules flag; ``op.unsafe_drop_*`` stays a finding to review.

Reviews live there, not in the revision files, so recording one never edits
an applied revision (whose checksum ``flask db verify`` guards).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory

from app.db import history
from app.db.hazard_advice import safe_alternative
from app.db.phases import CONTRACT, phase_of

OFFLINE_URL = "postgresql+psycopg://"
SQL_URL_ATTRIBUTE = "sql_url"
QUIET_ATTRIBUTE = "quiet"

HAZARD_RULES = {
    "require-concurrent-index-creation": "index built without CONCURRENTLY: blocks writes",
    "ban-concurrent-index-creation-in-transaction": "CONCURRENTLY inside a transaction fails",
    "changing-column-type": "column type change: rewrites the table under an exclusive lock",
    "adding-required-field": "NOT NULL column without a default: fails on existing rows",
    "adding-not-nullable-field": "SET NOT NULL: scans the table while blocking reads",
    "ban-drop-column": "dropped column: running code may still read it",
    "ban-drop-table": "dropped table: running code may still read it",
    "renaming-column": "renamed column: running code uses the old name",
    "renaming-table": "renamed table: running code uses the old name",
    "require-lock-timeout": "no lock_timeout: a blocked lock stalls every query behind it",
    "constraint-missing-not-valid": "constraint checked on every row while writes are blocked",
    "adding-foreign-key-constraint": "foreign key checked on every row while writes are blocked",
    "disallowed-unique-constraint": "unique constraint builds its index while writes are blocked",
}
# Expected in a contract revision (it runs once no replica runs the previous release),
# a hazard in an expand one (the previous release still reads the column or table).
CONTRACT_RULES = frozenset(
    {"ban-drop-column", "ban-drop-table", "renaming-column", "renaming-table"}
)
IN_EXPAND = "; in an expand revision, which runs while the previous release serves"
REVIEWED_FILE_NAME = "reviewed.txt"
REVIEWED_HEADER = (
    "# Lint reviews: one line per revision whose hazards were checked,\n"
    "# <revision id>  <why it is safe>. Written by `make migration-review`;\n"
    "# the revision files themselves stay untouched.\n"
)


class LintError(RuntimeError):
    """squawk is missing or could not run."""


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    statement: str


@dataclass
class LintResult:
    script: Script
    findings: list[Finding] = field(default_factory=list)
    reviewed: str | None = None  # the reason given, when marked reviewed
    expected: list[Finding] = field(default_factory=list)  # CONTRACT_RULES in a contract revision

    @property
    def blocking(self) -> bool:
        return bool(self.findings) and self.reviewed is None


def reviewed_file(directory: str | Path) -> Path:
    return Path(directory) / REVIEWED_FILE_NAME


def read_reviews(directory: str | Path) -> dict[str, str]:
    """``{revision: why it is safe}`` from ``migrations/reviewed.txt``."""
    path = reviewed_file(directory)
    if not path.exists():
        return {}
    reviews: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            revision, _, reason = line.strip().partition(" ")
            reviews[revision] = reason.strip() or "(no reason given)"
    return reviews


def record_review(directory: str | Path, revision: str, reason: str) -> Path:
    """Add (or replace) the review line of ``revision``."""
    path = reviewed_file(directory)
    reviews = read_reviews(directory)
    reviews[revision] = " ".join(reason.split())
    lines = "".join(f"{rev}  {why}\n" for rev, why in reviews.items())
    path.write_text(REVIEWED_HEADER + lines)
    return path


def lint_selection(
    script: ScriptDirectory, revisions: tuple[str, ...], everything: bool, versions: Path
) -> tuple[list[Script], str]:
    """The revisions ``flask db lint`` checks, oldest first, and a line saying how they were chosen.

    ``everything``: every revision; else ``revisions``, the ids named (unknown
    ones left out); else the revisions whose files under ``versions`` were
    added since the branch left main (git: ``history.main_base``), the line
    naming main's commit and how many. The line is empty unless git chose.
    """
    every = list(reversed(list(script.walk_revisions())))
    if everything:
        return every, ""
    if revisions:
        found = [script.get_revision(r) for r in revisions]
        return [f for f in found if f is not None], ""
    root = history.repository_root(versions)
    branch, base = history.main_base(root)
    added = {p.resolve() for p in history.added_since(root, base, versions)}
    chosen = [s for s in every if Path(s.path).resolve() in added]
    return chosen, f"Revisions added since {branch} ({base[:12]}): {len(added)}"


@contextmanager
def quiet_alembic() -> Iterator[None]:
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def render_sql(make_config: Callable[[], Config], script: Script) -> str:
    """The PostgreSQL statements ``upgrade`` runs for this one revision."""
    config = make_config()
    buffer = io.StringIO()
    config.output_buffer = buffer
    config.attributes[SQL_URL_ATTRIBUTE] = OFFLINE_URL
    config.attributes[QUIET_ATTRIBUTE] = True
    down = script.down_revision
    if isinstance(down, tuple | list):
        down = down[0] if down else None
    target = f"{down}:{script.revision}" if down else script.revision
    with quiet_alembic():
        command.upgrade(config, target, sql=True)
    return buffer.getvalue()


def squawk_executable() -> str:
    beside_python = Path(sys.executable).parent / "squawk"
    found = str(beside_python) if beside_python.exists() else shutil.which("squawk")
    if not found:
        raise LintError("squawk is not installed: run `make install-dev` (package squawk-cli)")
    return found


def run_squawk(sql: str, name: str) -> list[Finding]:
    """squawk's hazard findings for one SQL text (other rules are left out)."""
    lines = sql.splitlines()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.sql"
        path.write_text(sql)
        done = subprocess.run(  # noqa: S603 - our own arguments
            [squawk_executable(), "--reporter", "json", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    try:
        reports = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise LintError(f"squawk failed: {done.stderr.strip() or done.stdout.strip()}") from None
    findings = []
    for report in reports:
        rule = report.get("rule_name", "")
        if rule not in HAZARD_RULES:
            continue
        line = int(report.get("line", 0))
        statement = lines[line].strip() if 0 <= line < len(lines) else ""
        instead = safe_alternative(rule, statement)
        message = f"{HAZARD_RULES[rule]}; instead: {instead}" if instead else HAZARD_RULES[rule]
        findings.append(Finding(rule, message, statement))
    return findings


def lint_revision(make_config: Callable[[], Config], script: Script) -> LintResult:
    """squawk's findings, judged by the revision's phase (:data:`CONTRACT_RULES`)."""
    findings = run_squawk(render_sql(make_config, script), Path(script.path).stem)
    directory = Path(script.path).resolve().parent.parent
    reviewed = read_reviews(directory).get(script.revision)
    if phase_of(script) == CONTRACT:
        expected = [f for f in findings if f.rule in CONTRACT_RULES]
        hazards = [f for f in findings if f.rule not in CONTRACT_RULES]
        return LintResult(script, hazards, reviewed, expected)
    findings = [
        replace(f, message=f.message + IN_EXPAND) if f.rule in CONTRACT_RULES else f
        for f in findings
    ]
    return LintResult(script, findings, reviewed)


def report(result: LintResult) -> list[str]:
    """Human-readable lines for one revision's result."""
    name = Path(result.script.path).name
    expected = [
        f"  expected in a contract revision: {f.rule}: {f.statement or f.message}"
        for f in result.expected
    ]
    if not result.findings:
        return [f"ok       {name}", *expected]
    verdict = f"reviewed {name}: {result.reviewed}" if result.reviewed else f"HAZARDS  {name}"
    lines = [verdict, *expected]
    for finding in result.findings:
        lines.append(f"  {finding.rule}: {finding.message}")
        if finding.statement:
            lines.append(f"      {finding.statement}")
    return lines
