"""``flask db gate`` (make migration-check) and the committed migrations/HEAD file."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from app.db import scratch
from app.db.exit_codes import ExitCode
from app.db.history import read_head_file, write_head_file
from tests.migrations.flask_db import FlaskDb, cli, git, revision_files

pytestmark = pytest.mark.slow  # the migration gate: scratch databases and git


@pytest.fixture
def repo_db(app_for: Callable[..., Flask], sqlite_database: str, repo: Path) -> FlaskDb:
    return cli(app_for(sqlite_database, repo / "migrations"))


def test_gate_passes_on_a_fresh_checkout_of_main(repo_db: FlaskDb) -> None:
    result = repo_db("gate")

    assert result.exit_code == ExitCode.OK, result.output
    assert "no revision on main" in result.output


def test_gate_fails_when_a_revision_already_on_main_was_modified(
    repo_db: FlaskDb, repo: Path
) -> None:
    git(repo, "checkout", "--quiet", "-b", "feature")
    first = revision_files(repo / "migrations")[0]
    first.write_text(first.read_text() + "\n# edited\n")

    result = repo_db("gate")

    assert result.exit_code == ExitCode.FAILED
    assert f"{first.name} (modified)" in result.output


def test_gate_fails_with_two_heads(sqlite_flask_db: FlaskDb, migrations_dir: Path) -> None:
    sqlite_flask_db("create", "One")
    latest = revision_files(migrations_dir)[-1]
    sibling = latest.with_name(latest.name.replace("_one", "_sibling").replace("2", "3", 1))
    text = latest.read_text()
    old_id = read_head_file(migrations_dir)[0]
    sibling.write_text(text.replace(old_id, "5ib11n95ib11"))

    result = sqlite_flask_db("gate")

    assert result.exit_code == ExitCode.FAILED
    assert "2 heads" in result.output


def test_gate_fails_when_the_models_changed_without_a_migration(
    sqlite_flask_db: FlaskDb, migrations_dir: Path
) -> None:
    first, *later = revision_files(migrations_dir)
    for path in later:
        path.unlink()
    write_head_file(migrations_dir, [first.name.split("_")[2]])

    result = sqlite_flask_db("gate")

    assert result.exit_code == ExitCode.FAILED
    assert "the models changed without a migration" in result.output
    assert "add_index" in result.output


def test_two_branches_that_each_add_a_migration_conflict_in_git(
    app_for: Callable[..., Flask], sqlite_database: str, repo: Path
) -> None:
    flask_db = cli(app_for(sqlite_database, repo / "migrations"))
    for branch in ("alice", "bob"):
        git(repo, "checkout", "--quiet", "-b", branch, "main")
        assert flask_db("create", f"From{branch.title()}").exit_code == ExitCode.OK
        git(repo, "add", "migrations")
        git(repo, "commit", "--quiet", "-m", branch)

    merged = git(repo, "merge", "alice")

    assert merged.returncode != 0
    assert "CONFLICT (add/add): Merge conflict in migrations/HEAD" in merged.stdout or (
        "migrations/HEAD" in merged.stdout and "CONFLICT" in merged.stdout
    )


UNREACHABLE_POSTGRES = "postgresql://nobody@127.0.0.1:1/none"


def test_gate_without_postgresql_skips_that_part_outside_ci(
    sqlite_flask_db: FlaskDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATE_POSTGRES_URL", UNREACHABLE_POSTGRES)
    monkeypatch.setenv("CI", "")

    result = sqlite_flask_db("gate")

    assert result.exit_code == ExitCode.OK, result.output
    assert "ok    SQLite: run, revert, run" in result.output
    assert "skip  run, revert, run on PostgreSQL" in result.output
    assert "(required when CI=true)" in result.output


def test_gate_without_postgresql_fails_under_ci(
    sqlite_flask_db: FlaskDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATE_POSTGRES_URL", UNREACHABLE_POSTGRES)
    monkeypatch.setenv("CI", "true")

    result = sqlite_flask_db("gate")

    assert result.exit_code == ExitCode.FAILED
    assert "FAIL  PostgreSQL is required when CI=true" in result.output


def test_gate_runs_run_revert_run_on_both_databases_and_drops_its_scratch_database(
    sqlite_flask_db: FlaskDb, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATE_POSTGRES_URL", postgres_url)
    fixed = uuid.uuid4()
    monkeypatch.setattr(scratch.uuid, "uuid4", lambda: fixed)
    created: list[str] = []
    real_create_engine = scratch.create_engine

    def recording_create_engine(url, **kwargs):
        created.append(make_url(url).database or "")
        return real_create_engine(url, **kwargs)

    monkeypatch.setattr(scratch, "create_engine", recording_create_engine)

    result = sqlite_flask_db("gate")

    assert result.exit_code == ExitCode.OK, result.output
    assert "ok    SQLite: run, revert, run; the models match the migrations" in result.output
    assert "ok    PostgreSQL: run, revert, run; the models match the migrations" in result.output
    name = f"conduit_gate_{fixed.hex[:12]}"
    assert name in created
    with psycopg.connect(postgres_url) as connection:
        left = connection.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    assert left == (0,)
