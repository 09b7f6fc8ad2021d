"""``flask db discard <rev>``: a mistaken revision goes, unless it is applied or shared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from app.db.exit_codes import ExitCode
from app.db.history import read_head_file
from tests.migrations.flask_db import FlaskDb, cli, git
from tests.migrations.test_everyday_loop import FEATURE, write_feature_revision


@pytest.fixture
def on_branch(
    app_for: Callable[..., Flask], sqlite_database: str, repo: Path
) -> Callable[..., FlaskDb]:
    """``flask db`` in a checkout of branch ``feature`` off main, on a migrated SQLite database."""
    git(repo, "checkout", "--quiet", "-b", "feature")
    flask_db = cli(app_for(sqlite_database, repo / "migrations"))
    assert flask_db("run").exit_code == ExitCode.OK
    return flask_db


def test_a_revision_never_applied_and_only_on_this_branch_is_discarded(
    on_branch: FlaskDb, repo: Path
) -> None:
    (before,) = read_head_file(repo / "migrations")
    path = write_feature_revision(repo / "migrations")

    result = on_branch("discard", FEATURE)

    assert result.exit_code == ExitCode.OK, result.output
    assert not path.exists()
    assert read_head_file(repo / "migrations") == [before]
    assert f"Discarded {FEATURE}" in result.output
    assert on_branch("status", "--check").exit_code == ExitCode.OK


def test_an_applied_revision_is_refused_until_reverted(on_branch: FlaskDb, repo: Path) -> None:
    path = write_feature_revision(repo / "migrations")
    assert on_branch("run").exit_code == ExitCode.OK

    refused = on_branch("discard", FEATURE)

    assert refused.exit_code == ExitCode.FAILED
    assert "is applied to" in refused.output and "make migration-revert" in refused.output
    assert path.exists()
    assert on_branch("revert").exit_code == ExitCode.OK
    assert on_branch("discard", FEATURE).exit_code == ExitCode.OK


def test_a_revision_on_main_is_refused(on_branch: FlaskDb, repo: Path) -> None:
    (head,) = read_head_file(repo / "migrations")
    on_branch("revert")  # not applied: only being on main refuses it

    refused = on_branch("discard", head)

    assert refused.exit_code == ExitCode.FAILED
    assert "is on the main branch" in refused.output
    assert read_head_file(repo / "migrations") == [head]


def test_only_the_head_may_be_discarded(on_branch: FlaskDb, repo: Path) -> None:
    (older,) = read_head_file(repo / "migrations")
    write_feature_revision(repo / "migrations")

    refused = on_branch("discard", older)

    assert refused.exit_code == ExitCode.FAILED
    assert f"is not the head ({FEATURE})" in refused.output


def test_an_unknown_revision_is_refused(on_branch: FlaskDb) -> None:
    refused = on_branch("discard", "0123456789ab")

    assert refused.exit_code == ExitCode.FAILED
    assert "no revision 0123456789ab" in refused.output
