"""The everyday loop: amending your own revision, switching branches, two heads.

Every migration tool lets you generate, apply, tweak and re-apply a revision
that exists only on your branch; that stays so here in development, while an
applied revision that is on main (or any change in production) stays
immutable. A database that is at a revision of another branch is reported
with the way out; two heads get the same advice from every command.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from app.db.exit_codes import ExitCode
from app.db.history import read_head_file, write_head_file
from tests.migrations.flask_db import FlaskDb, cli, git, revision_files

FEATURE_REVISION = '''"""add badges"""

import sqlalchemy as sa
from alembic import op

revision = "feed0bad9e55"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("badges", sa.Column("id", sa.Integer(), primary_key=True){extra})


def downgrade():
    op.drop_table("badges")
'''
FEATURE = "feed0bad9e55"


def write_feature_revision(migrations: Path, extra: str = "") -> Path:
    path = migrations / "versions" / "29990101_000000_feed0bad9e55_add_badges.py"
    down = read_head_file(migrations)[0] if not path.exists() else _down_of(path)
    path.write_text(FEATURE_REVISION.format(down=down, extra=extra))
    write_head_file(migrations, [FEATURE])
    return path


def _down_of(path: Path) -> str:
    match = re.search(r"down_revision = [\'\"]([0-9a-f]+)", path.read_text())
    assert match
    return match.group(1)


@pytest.fixture
def on_branch(
    app_for: Callable[..., Flask], sqlite_database: str, repo: Path
) -> Callable[..., FlaskDb]:
    """``on_branch(**config)``: ``flask db`` in a checkout of branch ``feature`` off main."""
    git(repo, "checkout", "--quiet", "-b", "feature")

    def build(**overrides: str) -> FlaskDb:
        return cli(app_for(sqlite_database, repo / "migrations", **overrides))

    return build


# --- amending a revision that is only on your branch -----------------------------


def test_in_development_an_applied_revision_only_on_this_branch_may_be_amended(
    on_branch: Callable[..., FlaskDb], repo: Path
) -> None:
    flask_db = on_branch()
    write_feature_revision(repo / "migrations")
    assert flask_db("run").exit_code == ExitCode.OK
    write_feature_revision(repo / "migrations", extra=', sa.Column("name", sa.Text())')

    run = flask_db("run")
    revert = flask_db("revert")
    rerun = flask_db("run")

    assert run.exit_code == ExitCode.OK, run.output
    assert "exists only on this branch" in run.output
    assert revert.exit_code == ExitCode.OK, revert.output
    assert f"Reverted {FEATURE};" in revert.output
    assert rerun.exit_code == ExitCode.OK
    status = flask_db("status")
    assert f"[X] {FEATURE}" in status.output
    assert "[M]" not in status.output


def test_in_production_an_amended_revision_is_refused_even_if_only_on_this_branch(
    on_branch: Callable[..., FlaskDb], repo: Path, tmp_path: Path
) -> None:
    write_feature_revision(repo / "migrations")
    assert on_branch()("run").exit_code == ExitCode.OK
    write_feature_revision(repo / "migrations", extra=', sa.Column("name", sa.Text())')
    production = on_branch(APP_ENV="production", BACKUP_DIRECTORY=str(tmp_path / "backups"))

    result = production("revert")

    assert result.exit_code == ExitCode.CHANGED
    assert "Nothing was reverted" in result.output


def test_in_development_an_applied_revision_that_is_on_main_stays_immutable(
    on_branch: Callable[..., FlaskDb], repo: Path
) -> None:
    flask_db = on_branch()
    assert flask_db("run").exit_code == ExitCode.OK
    first = revision_files(repo / "migrations")[0]
    first.write_text(first.read_text() + "\n# edited\n")

    result = flask_db("revert")

    assert result.exit_code == ExitCode.CHANGED
    assert "Never edit an applied migration" in result.output


# --- switching to a branch that lacks a revision you applied ---------------------


@pytest.fixture
def switched_back_to_main(on_branch: Callable[..., FlaskDb], repo: Path) -> Path:
    """Revision FEATURE applied on branch feature; then ``git checkout main``."""
    write_feature_revision(repo / "migrations")
    assert on_branch()("run").exit_code == ExitCode.OK
    git(repo, "add", "migrations")
    git(repo, "commit", "--quiet", "-m", "badges")
    git(repo, "checkout", "--quiet", "main")
    return repo


def test_status_after_switching_branches_marks_applied_revisions_and_names_the_missing_one(
    on_branch: Callable[..., FlaskDb], switched_back_to_main: Path
) -> None:
    result = on_branch()("status")

    lines = [line for line in result.output.splitlines() if line.startswith("[")]
    on_main = revision_files(switched_back_to_main / "migrations")
    assert [line[:3] for line in lines] == ["[X]"] * len(on_main) + ["[?]"]
    assert lines[-1].startswith(f"[?] {FEATURE}")
    assert "switch back to that branch, `make migration-revert`" in result.output


def test_run_after_switching_branches_warns_and_goes_on_in_development_only(
    on_branch: Callable[..., FlaskDb], switched_back_to_main: Path, tmp_path: Path
) -> None:
    development = on_branch()("run")
    production = on_branch(APP_ENV="production", BACKUP_DIRECTORY=str(tmp_path / "b"))("run")

    assert development.exit_code == ExitCode.OK, development.output
    assert f"Warning: The database is at {FEATURE}" in development.output
    assert "Nothing was applied" in development.output
    assert production.exit_code == ExitCode.CHANGED
    assert "switch back to that branch" in production.output


def test_generate_after_switching_branches_gives_the_way_back_not_run_first(
    on_branch: Callable[..., FlaskDb], switched_back_to_main: Path
) -> None:
    result = on_branch()("generate", "Something")

    assert result.exit_code == ExitCode.PENDING
    assert "switch back to that branch" in result.output
    assert "run `make migration-run` first" not in result.output


# --- two heads --------------------------------------------------------------------


@pytest.fixture
def two_heads(sqlite_flask_db: FlaskDb, migrations_dir: Path) -> tuple[str, str]:
    """Two revisions after the same head, as two branches that both added one leave it."""
    down = read_head_file(migrations_dir)[0]
    ids = ("a11ce0000001", "b0b000000002")
    for number, revision in enumerate(ids):
        (migrations_dir / "versions" / f"2999010{number + 1}_000000_{revision}_x.py").write_text(
            f'"""{revision}"""\n\nfrom alembic import op\n\n'
            f"revision = {revision!r}\ndown_revision = {down!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            'def upgrade():\n    op.execute("SELECT 1")\n\n\n'
            'def downgrade():\n    op.execute("SELECT 1")\n'
        )
    return ids


ADVICE = "history must stay linear. Rebase the newer revision onto the other"


@pytest.mark.parametrize(
    "command", [("status",), ("run",), ("generate", "More"), ("create", "More"), ("gate",)]
)
def test_two_heads_get_one_piece_of_advice_from_every_command(
    sqlite_flask_db: FlaskDb, two_heads: tuple[str, str], command: tuple[str, ...]
) -> None:
    result = sqlite_flask_db(*command)

    assert f"2 heads ({', '.join(sorted(two_heads))}): {ADVICE}" in result.output
    assert "merge" not in result.output


def test_run_refuses_to_apply_two_heads(
    sqlite_flask_db: FlaskDb, two_heads: tuple[str, str]
) -> None:
    result = sqlite_flask_db("run")

    assert result.exit_code == ExitCode.FAILED
    assert "nothing was applied" in result.output
    assert "[X]" not in sqlite_flask_db("status").output


def test_revert_with_two_heads_applied_names_only_what_it_reverted(
    sqlite_flask_db: FlaskDb, two_heads: tuple[str, str]
) -> None:
    assert sqlite_flask_db("upgrade", "heads").exit_code == 0  # Flask-Migrate's own

    result = sqlite_flask_db("revert")

    assert result.exit_code == ExitCode.OK, result.output
    reverted = re.search(r"Reverted (.+?); the database is now at (.+)\.", result.output)
    assert reverted, result.output
    assert reverted.group(1) in two_heads
    still = reverted.group(2)
    assert still in two_heads and still != reverted.group(1)
    assert f"[ ] {reverted.group(1)}" in sqlite_flask_db("status").output
