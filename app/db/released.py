"""``migrations/RELEASED``: the revision production's database is at, and the code serving it.

The file holds comment lines (``#``) and one data line::

    <revision id> <full git commit sha>

for example ``234cf5ebce0c fb1d1a4ab094e30d3c92abd77dabffab4348e879``. The
previous-release gate (app/db/release_gate.py) checks out that commit and runs
its code against the new revisions; ``flask db release`` (``make
migration-release``) records a new release after its checks.

A RELEASED file is sound when the revision is in this checkout's history and
the commit exists and its ``migrations/HEAD`` names that revision.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError

from app.db import history

RELEASED_FILE_NAME = "RELEASED"
_DATA_LINE = re.compile(r"([0-9a-zA-Z_]+)\s+([0-9a-f]{40})")
HEADER = (
    "# The release production runs: <revision id> <git commit sha>.\n"
    "# Its database is at the revision; the commit's code serves it. The\n"
    "# previous-release gate (make migration-check) runs that code against\n"
    "# the new revisions. Record a new release with make migration-release.\n"
)


class ReleasedError(ValueError):
    """``migrations/RELEASED`` is missing, unreadable or names what this checkout lacks."""


@dataclass(frozen=True)
class Release:
    """A release: the revision its database is at, and the commit of its code (40 hex digits)."""

    revision: str
    commit: str

    def __str__(self) -> str:
        return f"{self.revision} at {self.commit[:12]}"


def released_file(migrations: str | Path) -> Path:
    return Path(migrations) / RELEASED_FILE_NAME


def read_released(migrations: str | Path) -> Release:
    """The release named by ``migrations/RELEASED``.

    Raises :class:`ReleasedError` when the file is missing or has not exactly
    one ``<revision> <sha>`` data line.
    """
    path = released_file(migrations)
    if not path.is_file():
        raise ReleasedError(f"{path} is missing: record the release production runs in it")
    lines = [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    matched = _DATA_LINE.fullmatch(lines[0]) if len(lines) == 1 else None
    if matched is None:
        raise ReleasedError(
            f"{path} must hold one line '<revision id> <full git commit sha>', "
            f"not {len(lines)} line(s): {'; '.join(lines) or 'none'}"
        )
    return Release(revision=matched[1], commit=matched[2])


def write_released(migrations: str | Path, release: Release) -> Path:
    path = released_file(migrations)
    path.write_text(f"{HEADER}{release.revision} {release.commit}\n")
    return path


def release_problems(release: Release, scripts: ScriptDirectory, root: Path) -> list[str]:
    """What is wrong with ``release`` in this checkout (empty when it is sound).

    ``root`` is the git repository holding ``scripts``' directory. Raises
    :class:`history.GitError` when git itself fails (no git, not a checkout).
    """
    problems = []
    try:
        scripts.get_revision(release.revision)
    except CommandError:
        problems.append(
            f"RELEASED names revision {release.revision}, which is not in this checkout's history"
        )
    named = committed_head(root, release.commit, Path(scripts.dir))
    if named is None:
        problems.append(f"RELEASED names commit {release.commit}, which this checkout lacks")
    elif named != [release.revision]:
        problems.append(
            f"RELEASED names revision {release.revision} but its commit "
            f"{release.commit[:12]} has migrations/HEAD {', '.join(named) or 'empty'}"
        )
    return problems


def committed_head(root: Path, commit: str, migrations: Path) -> list[str] | None:
    """The revisions ``migrations/HEAD`` names at ``commit`` (``None``: no such commit)."""
    try:
        history.git(root, "cat-file", "-e", f"{commit}^{{commit}}")
    except history.GitError:
        return None
    folder = Path(migrations).resolve().relative_to(root.resolve()) / history.HEAD_FILE_NAME
    try:
        text = history.git(root, "show", f"{commit}:{folder.as_posix()}")
    except history.GitError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


@contextmanager
def checkout(root: Path, commit: str) -> Iterator[Path]:
    """``commit``'s files in a detached git worktree of ``root``, removed afterwards.

    Raises :class:`history.GitError` when git cannot add the worktree.
    """
    with tempfile.TemporaryDirectory(prefix="conduit-release-") as folder:
        path = Path(folder) / "release"
        history.git(root, "worktree", "add", "--detach", "--quiet", str(path), commit)
        try:
            yield path
        finally:
            history.git(root, "worktree", "remove", "--force", str(path))
