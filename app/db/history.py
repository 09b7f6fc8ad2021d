"""Linear history: the committed ``migrations/HEAD`` file and the main branch.

``migrations/HEAD`` names the single head revision. Every new revision rewrites
that one line (a post-write hook), so two branches that each add a migration
conflict in git instead of merging into two heads. ``flask db gate`` and the
test suite check that the file agrees with the revisions, and that no revision
already on the main branch was modified.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory, write_hooks

HEAD_FILE_NAME = "HEAD"
MAIN_BRANCHES = ("origin/main", "main")


def head_file(directory: str | Path) -> Path:
    return Path(directory) / HEAD_FILE_NAME


def read_head_file(directory: str | Path) -> list[str]:
    """Revision ids named in the HEAD file (empty if there is none)."""
    path = head_file(directory)
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def write_head_file(directory: str | Path, heads: list[str]) -> Path:
    path = head_file(directory)
    path.write_text("".join(f"{head}\n" for head in sorted(heads)))
    return path


@write_hooks.register("head_file")
def update_head_file(revision_path: str, _options: Any) -> None:
    """Post-write hook (alembic.ini): point ``HEAD`` at the heads after a new revision."""
    directory = Path(revision_path).resolve().parent.parent
    write_head_file(directory, list(ScriptDirectory(str(directory)).get_heads()))


def several_heads_advice(heads: list[str] | tuple[str, ...]) -> str:
    """The one piece of advice every command gives when the history has more than one head."""
    named = ", ".join(sorted(heads))
    return (
        f"{len(heads)} heads ({named}): history must stay linear. Rebase the newer "
        "revision onto the other: if your database has it applied, `make migration-revert` "
        "it first; then set its down_revision to the other's id, write its own id into "
        "migrations/HEAD, `make migration-run` and `make migration-check`."
    )


class GitError(RuntimeError):
    """Git is missing, this is not a checkout, or a git command failed."""


def git(root: Path, *args: str) -> str:
    """``git -C root ARGS``'s standard output; raises :class:`GitError` when it fails."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed git arguments
            ["git", "-C", str(root), *args],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise GitError(f"git {' '.join(args)}: {detail.strip()}") from None
    return done.stdout


def repository_root(path: str | Path) -> Path:
    return Path(git(Path(path), "rev-parse", "--show-toplevel").strip())


def main_base(root: Path) -> tuple[str, str]:
    """``(branch, commit)``: where this checkout forked from the main branch."""
    for branch in MAIN_BRANCHES:
        try:
            git(root, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}")
        except GitError:
            continue
        return branch, git(root, "merge-base", "HEAD", branch).strip()
    raise GitError("no main branch (origin/main or main) to compare with")


def _relative(root: Path, directory: str | Path) -> str:
    return str(Path(directory).resolve().relative_to(root.resolve()))


def modified_since(root: Path, base: str, versions: str | Path) -> list[str]:
    """Revision files present at ``base`` that the working tree modified or deleted."""
    folder = _relative(root, versions)
    on_base = set(git(root, "ls-tree", "-r", "--name-only", base, "--", folder).splitlines())
    changed = []
    for line in git(root, "diff", "--name-status", "--no-renames", base, "--", folder).splitlines():
        status, _, name = line.partition("\t")
        if name in on_base and status[:1] in ("M", "D", "T"):
            changed.append(f"{name} ({'deleted' if status.startswith('D') else 'modified'})")
    return changed


def branch_only(versions: str | Path) -> set[Path]:
    """Revision files that exist only on this branch (not at its fork point from main).

    Empty when git or a main branch is unavailable: then nothing counts as branch-only.
    """
    try:
        root = repository_root(versions)
        _branch, base = main_base(root)
        return {path.resolve() for path in added_since(root, base, versions)}
    except GitError:
        return set()


def added_since(root: Path, base: str, versions: str | Path) -> list[Path]:
    """Revision files added since ``base``: committed, staged, or untracked."""
    folder = _relative(root, versions)
    added = git(root, "diff", "--name-only", "--diff-filter=A", base, "--", folder).splitlines()
    untracked = git(root, "ls-files", "--others", "--exclude-standard", "--", folder).splitlines()
    return sorted(root / name for name in {*added, *untracked} if name.endswith(".py"))
