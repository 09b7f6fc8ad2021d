"""migrations/RELEASED, ``flask db release``, and how the gate reads the released code from git."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from app.db.alembic_setup import script_directory
from app.db.exit_codes import ExitCode
from app.db.history import GitError, repository_root
from app.db.model_shape import release_shape
from app.db.released import (
    Release,
    checkout,
    read_released,
    release_problems,
    released_file,
    write_released,
)
from tests.environment import PROJECT_ROOT
from tests.migrations.flask_db import FlaskDb, cli, git
from tests.migrations.test_release_gate import HEAD, RELEASED

pytestmark = pytest.mark.slow  # the previous-release gate: git worktrees of released commits

# The release recorded when RELEASED was introduced: its migrations/HEAD is 234cf5ebce0c.
RELEASED_COMMIT = "fb1d1a4ab094e30d3c92abd77dabffab4348e879"


@pytest.fixture
def repo_app(app_for: Callable[..., Flask], sqlite_database: str, repo: Path) -> Flask:
    return app_for(sqlite_database, repo / "migrations")


@pytest.fixture
def repo_db(repo_app: Flask) -> FlaskDb:
    return cli(repo_app)


def commit_of(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def problems_with(app: Flask, repo: Path, release: Release) -> list[str]:
    with app.app_context():
        return release_problems(release, script_directory(), repo)


def test_released_reads_the_one_data_line_under_its_comments(tmp_path: Path) -> None:
    released_file(tmp_path).write_text(f"# production\n\n{RELEASED} {RELEASED_COMMIT}\n")

    assert read_released(tmp_path) == Release(RELEASED, RELEASED_COMMIT)


def test_the_committed_released_file_names_the_release_production_runs() -> None:
    assert read_released(PROJECT_ROOT / "migrations") == Release(RELEASED, RELEASED_COMMIT)


def test_a_release_at_a_commit_whose_head_names_it_is_sound(repo_app: Flask, repo: Path) -> None:
    assert problems_with(repo_app, repo, Release(HEAD, commit_of(repo))) == []


def test_a_revision_not_in_this_history_is_a_problem(repo_app: Flask, repo: Path) -> None:
    problems = problems_with(repo_app, repo, Release("0123456789ab", commit_of(repo)))

    assert "revision 0123456789ab, which is not in this checkout's history" in problems[0]


def test_a_commit_whose_head_names_another_revision_is_a_problem(
    repo_app: Flask, repo: Path
) -> None:
    (problem,) = problems_with(repo_app, repo, Release("5118002ee141", commit_of(repo)))

    assert f"its commit {commit_of(repo)[:12]} has migrations/HEAD {HEAD}" in problem


def test_release_records_the_head_and_the_checked_out_commit(repo_db: FlaskDb, repo: Path) -> None:
    result = repo_db("release")

    assert result.exit_code == ExitCode.OK, result.output
    assert read_released(repo / "migrations") == Release(HEAD, commit_of(repo))


def test_release_refuses_with_an_uncommitted_revision(repo_db: FlaskDb, repo: Path) -> None:
    repo_db("create", "Uncommitted")

    result = repo_db("release")

    assert result.exit_code == ExitCode.FAILED
    assert "uncommitted changes under migrations/" in result.output
    assert not released_file(repo / "migrations").exists()


def test_gate_passes_quickly_when_released_is_the_head(repo_db: FlaskDb, repo: Path) -> None:
    write_released(repo / "migrations", Release(HEAD, commit_of(repo)))

    result = repo_db("gate")

    assert result.exit_code == ExitCode.OK, result.output
    assert "RELEASED is the head" in result.output


def test_gate_under_ci_fails_when_the_released_commit_is_missing(
    repo_db: FlaskDb, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    write_released(repo / "migrations", Release(RELEASED, "f" * 40))

    result = repo_db("gate")

    assert result.exit_code == ExitCode.FAILED
    assert f"RELEASED names commit {'f' * 40}, which this checkout lacks" in result.output


def test_the_released_models_are_read_by_their_own_code_in_a_worktree_removed_after() -> None:
    try:
        root = repository_root(PROJECT_ROOT)
        git(root, "cat-file", "-e", f"{RELEASED_COMMIT}^{{commit}}").check_returncode()
    except (GitError, subprocess.CalledProcessError):
        pytest.skip("this checkout has no git history (CI=true clones it whole)")

    with checkout(root, RELEASED_COMMIT) as code:
        shape = release_shape(code)

    assert shape["users"]["bio"] == {"nullable": True, "default": False}
    assert str(code) not in git(root, "worktree", "list").stdout
