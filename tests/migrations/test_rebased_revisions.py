"""A revision rebased in below one this database already ran is never taken as applied.

The two-heads advice (app/db/history.py) rebases the newer revision onto the
other. If the newer one was already applied to a developer's database, Alembic
now counts the other as applied too (it sits below the database's revision),
though it never ran there. The audit table knows better: no run recorded it.
SQLite; the rule reads only the audit table and the history.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import bindparam, create_engine, text

from app.db.exit_codes import ExitCode
from app.db.history import read_head_file, write_head_file
from tests.migrations.flask_db import FlaskDb, cli, git, table_names

MINE, THEIRS = "b0b000000002", "a11ce0000001"


def write_revision(migrations: Path, revision: str, down: str, table: str) -> Path:
    """A revision creating ``table`` (and dropping it on the way down)."""
    path = migrations / "versions" / f"29990101_000000_{revision}_{table}.py"
    path.write_text(
        f'"""{table}"""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {revision!r}\ndown_revision = {down!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f'def upgrade():\n    op.create_table("{table}", '
        'sa.Column("id", sa.Integer(), primary_key=True))\n\n\n'
        f'def downgrade():\n    op.drop_table("{table}")\n'
    )
    return path


@pytest.fixture
def rebased(app_for: Callable[..., Flask], sqlite_database: str, repo: Path) -> tuple[FlaskDb, str]:
    """Mine applied on a branch, then theirs arrives after the same base and mine is rebased
    onto it as the advice says: (``flask db``, the base revision)."""
    git(repo, "checkout", "--quiet", "-b", "feature")
    migrations = repo / "migrations"
    flask_db = cli(app_for(sqlite_database, migrations))
    (base,) = read_head_file(migrations)
    mine = write_revision(migrations, MINE, base, "mine")
    write_head_file(migrations, [MINE])
    assert flask_db("run").exit_code == ExitCode.OK
    write_revision(migrations, THEIRS, base, "theirs")
    mine.write_text(
        mine.read_text().replace(f"down_revision = {base!r}", f"down_revision = {THEIRS!r}")
    )
    write_head_file(migrations, [MINE])
    return flask_db, base


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return table_names(engine)
    finally:
        engine.dispose()


def test_run_refuses_and_names_the_revision_that_never_ran(rebased, sqlite_database) -> None:
    flask_db, base = rebased

    result = flask_db("run")

    assert result.exit_code == ExitCode.FAILED
    assert f"{THEIRS} never ran on this database" in result.output
    assert f"`flask db stamp {base}`" in result.output
    assert "theirs" not in tables(sqlite_database)


def test_status_marks_it_never_ran(rebased) -> None:
    flask_db, _ = rebased

    lines = flask_db("status").output.splitlines()

    assert any(THEIRS in line and "never ran here" in line for line in lines)


def test_reverting_down_to_it_then_stamping_and_running_applies_both(
    rebased, sqlite_database
) -> None:
    flask_db, base = rebased
    assert flask_db("revert").exit_code == ExitCode.OK  # mine's downgrade; "at" theirs

    refused = flask_db("revert")  # theirs' downgrade would undo what never ran
    stamped = flask_db("stamp", base)
    ran = flask_db("run")

    assert refused.exit_code == ExitCode.FAILED, refused.output
    assert f"{THEIRS} never ran" in refused.output
    assert (stamped.exit_code, ran.exit_code) == (0, ExitCode.OK), ran.output
    assert {"mine", "theirs"} <= tables(sqlite_database)
    assert "never ran" not in flask_db("status").output


def test_revisions_applied_before_the_audit_table_are_not_taken_for_ones_that_never_ran(
    app_for: Callable[..., Flask], sqlite_database: str, migrations_dir: Path
) -> None:
    """The older revisions have no run recorded (the audit table came later); accepting one
    of them, as `make migration-verify` suggests, is no run either."""
    flask_db = cli(app_for(sqlite_database, migrations_dir))
    assert flask_db("run").exit_code == ExitCode.OK
    revisions = [
        line.split()[1] for line in flask_db("status").output.splitlines() if "[X]" in line
    ]
    older = revisions[:-2]
    engine = create_engine(sqlite_database)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("DELETE FROM migration_audit WHERE revision IN :older").bindparams(
                    bindparam("older", expanding=True)
                ),
                {"older": older},
            )
    finally:
        engine.dispose()
    assert flask_db("accept", older[1]).exit_code == ExitCode.OK

    status = flask_db("status")
    ran = flask_db("run")

    assert "never ran" not in status.output
    assert ran.exit_code == ExitCode.OK, ran.output
