"""The migration workflow's commands (``flask db …``), on scratch copies of migrations/."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, MetaData, text

from app import MIGRATIONS_DIRECTORY
from app.db.audit import TOOLING_TABLES
from app.db.diagnose import diagnose
from app.db.exit_codes import ExitCode
from app.db.history import read_head_file, write_head_file
from tests.migrations.flask_db import FlaskDb, cli, revision_files, table_names

REVIEW_REASON = "users.bio is unused since v2"


def last_revision(migrations: Path) -> Path:
    return revision_files(migrations)[-1]


def write_revision(migrations: Path, name: str, upgrade: str, down_revision: str) -> Path:
    """A hand-written revision file after ``down_revision``."""
    path = migrations / "versions" / f"29990101_000000_{name}.py"
    path.write_text(
        f'"""{name}"""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {name!r}\ndown_revision = {down_revision!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n    {upgrade}\n\n\ndef downgrade():\n    pass\n"
    )
    return path


# --- run, revert, status ---------------------------------------------------------


def test_status_is_a_report_that_exits_0_when_revisions_are_merely_pending(
    flask_db: FlaskDb,
) -> None:
    result = flask_db("status")

    assert result.exit_code == ExitCode.OK
    assert "Apply with `make migration-run`" in result.output


def test_status_check_lists_every_revision_pending_and_exits_3(flask_db: FlaskDb) -> None:
    result = flask_db("status", "--check")

    assert result.exit_code == ExitCode.PENDING
    lines = [line for line in result.output.splitlines() if line.startswith("[")]
    revisions = len(revision_files(Path(MIGRATIONS_DIRECTORY)))
    assert len(lines) == revisions
    assert all(line.startswith("[ ] ") for line in lines)
    assert f"0 applied, {revisions} pending" in result.output


def test_run_applies_pending_revisions_then_status_shows_them_applied(flask_db: FlaskDb) -> None:
    assert flask_db("run").exit_code == ExitCode.OK

    result = flask_db("status")
    assert result.exit_code == ExitCode.OK
    lines = [line for line in result.output.splitlines() if line.startswith("[")]
    assert all(line.startswith("[X] ") for line in lines)


def test_run_with_nothing_pending_says_so(flask_db: FlaskDb) -> None:
    flask_db("run")

    result = flask_db("run")

    assert result.exit_code == ExitCode.OK
    assert "No pending migrations" in result.output


def test_revert_steps_back_one_revision_at_a_time_and_stops_at_base(flask_db: FlaskDb) -> None:
    flask_db("run")

    for _ in range(len(revision_files(Path(MIGRATIONS_DIRECTORY))) - 1):
        assert flask_db("revert").exit_code == ExitCode.OK
        assert "[X] " in flask_db("status").output
    assert flask_db("revert").exit_code == ExitCode.OK
    at_base = flask_db("revert")

    assert at_base.exit_code == ExitCode.OK
    assert "Nothing to revert" in at_base.output
    assert "[X] " not in flask_db("status").output


# --- applied migrations are immutable -------------------------------------------


def test_edited_applied_migration_fails_verify_and_blocks_run_until_accepted(
    flask_db: FlaskDb, migrations_dir: Path
) -> None:
    first, second = revision_files(migrations_dir)[:2]
    flask_db("run")
    flask_db("revert")
    first.write_text(first.read_text() + "\n# edited after it was applied\n")

    verify = flask_db("verify")
    assert verify.exit_code == ExitCode.CHANGED
    assert first.name in verify.output
    assert "[M]" in flask_db("status").output
    blocked = flask_db("run")
    assert blocked.exit_code == ExitCode.CHANGED
    assert "Nothing was applied" in blocked.output

    revision = first.name.split("_")[2]
    assert flask_db("accept", revision).exit_code == ExitCode.OK
    assert flask_db("verify").exit_code == ExitCode.OK
    assert flask_db("run").exit_code == ExitCode.OK
    assert second.name in flask_db("status").output


def test_applied_migration_whose_file_is_gone_is_reported_missing(
    flask_db: FlaskDb, migrations_dir: Path
) -> None:
    flask_db("run")
    gone = last_revision(migrations_dir)
    gone.unlink()

    status = flask_db("status")
    verify = flask_db("verify")

    assert status.exit_code == ExitCode.CHANGED
    assert re.search(r"^\[\?\] \w+  " + re.escape(gone.name), status.output, re.MULTILINE)
    assert verify.exit_code == ExitCode.CHANGED
    assert gone.name in verify.output


def test_a_revision_that_raises_stops_the_run_with_one_message_naming_it(
    flask_db: FlaskDb, migrations_dir: Path
) -> None:
    """Which revision, why, and where the database stands, instead of a traceback."""
    (base,) = read_head_file(migrations_dir)
    assert flask_db("run").exit_code == ExitCode.OK
    write_revision(migrations_dir, "badbad000001", 'raise RuntimeError("boom")', base)
    write_head_file(migrations_dir, ["badbad000001"])

    result = flask_db("run")

    assert result.exit_code == ExitCode.FAILED
    assert "Traceback" not in result.output
    assert (
        "Error: badbad000001 (29990101_000000_badbad000001.py) failed: RuntimeError: boom. "
        f"The database is at {base}; nothing of this run stayed applied." in result.output
    )


def test_a_run_stopped_after_a_backfill_revision_runs_again_once_fixed(
    flask_db: FlaskDb, migrations_dir: Path
) -> None:
    """From an empty database the run passes a revision whose backfill commits its batches
    (a0c79c3c2aca); a later revision fails. That revision stays applied whole, so the next
    run does not repeat it (it added a column: "duplicate column")."""
    (base,) = read_head_file(migrations_dir)
    bad = write_revision(migrations_dir, "badbad000001", 'raise RuntimeError("boom")', base)
    write_head_file(migrations_dir, ["badbad000001"])
    assert flask_db("run").exit_code == ExitCode.FAILED
    bad.write_text(bad.read_text().replace('raise RuntimeError("boom")', "pass"))

    again = flask_db("run")

    assert again.exit_code == ExitCode.OK, again.output
    assert flask_db("status").exit_code == ExitCode.OK


def test_flask_db_upgrade_in_production_refuses_a_changed_applied_revision(
    app_for: Callable[..., Flask], sqlite_database: str, migrations_dir: Path, tmp_path: Path
) -> None:
    """As ``run`` does: Flask-Migrate's own command is what developers and scripts type."""
    (base,) = read_head_file(migrations_dir)
    assert cli(app_for(sqlite_database, migrations_dir))("run").exit_code == ExitCode.OK
    applied = revision_files(migrations_dir)[0]
    applied.write_text(applied.read_text() + "\n# edited after it was applied\n")
    write_revision(migrations_dir, "c0ffee000001", 'op.execute("SELECT 1")', base)
    write_head_file(migrations_dir, ["c0ffee000001"])
    production = cli(
        app_for(sqlite_database, migrations_dir, APP_ENV="production", BACKUP_DIRECTORY=tmp_path)
    )

    result = production("upgrade")

    assert result.exit_code == ExitCode.CHANGED, result.output
    assert applied.name in result.output
    assert "[ ] c0ffee000001" in production("status").output


def test_flask_db_upgrade_in_production_backs_up_first(
    app_for: Callable[..., Flask], sqlite_database: str, migrations_dir: Path, tmp_path: Path
) -> None:
    (base,) = read_head_file(migrations_dir)
    assert cli(app_for(sqlite_database, migrations_dir))("run").exit_code == ExitCode.OK
    write_revision(migrations_dir, "c0ffee000001", 'op.execute("SELECT 1")', base)
    write_head_file(migrations_dir, ["c0ffee000001"])
    production = cli(
        app_for(sqlite_database, migrations_dir, APP_ENV="production", BACKUP_DIRECTORY=tmp_path)
    )

    result = production("upgrade")

    assert result.exit_code == 0, result.output
    assert "Backup written: " in result.output
    assert list(tmp_path.iterdir())
    assert "[X] c0ffee000001" in production("status").output


def test_the_advice_for_a_revision_removed_on_purpose_works(
    sqlite_flask_db: FlaskDb, migrations_dir: Path
) -> None:
    """Accept its removal, then stamp the revision it followed, as the message says."""
    (base,) = read_head_file(migrations_dir)
    gone = write_revision(migrations_dir, "90e000000001", 'op.execute("SELECT 1")', base)
    write_head_file(migrations_dir, ["90e000000001"])
    assert sqlite_flask_db("run").exit_code == ExitCode.OK
    gone.unlink()
    write_head_file(migrations_dir, [base])
    advice = sqlite_flask_db("status").output
    assert "`flask db stamp --purge <the revision it followed>`" in advice

    accepted = sqlite_flask_db("accept", "90e000000001")
    stamped = sqlite_flask_db("stamp", "--purge", base)

    assert (accepted.exit_code, stamped.exit_code) == (ExitCode.OK, 0), stamped.output
    assert sqlite_flask_db("verify").exit_code == ExitCode.OK


@pytest.mark.filterwarnings("ignore:Revision .* is not present:UserWarning")
def test_a_missing_file_in_the_middle_of_history_is_reported_and_blocks_run(
    sqlite_flask_db: FlaskDb, migrations_dir: Path
) -> None:
    sqlite_flask_db("run")
    first = revision_files(migrations_dir)[0]
    first.unlink()

    status = sqlite_flask_db("status")
    run = sqlite_flask_db("run")

    assert status.exit_code == ExitCode.CHANGED
    assert status.output.splitlines()[1].startswith("[?] ")
    assert "the history is broken" in status.output
    assert run.exit_code == ExitCode.CHANGED
    assert first.name in run.output


# --- generate --------------------------------------------------------------------


def test_generate_with_no_model_changes_writes_no_file_and_explains(
    flask_db: FlaskDb, migrations_dir: Path
) -> None:
    flask_db("run")
    before = revision_files(migrations_dir)

    result = flask_db("generate", "Nothing")

    assert result.exit_code == ExitCode.NO_CHANGES
    assert "No changes in database schema were found" in result.output
    assert "The models and the database agree" in result.output
    assert "Database: " in result.output
    assert "renamed tables and columns" in result.output
    assert revision_files(migrations_dir) == before


def test_generate_on_a_database_behind_head_says_to_run_first(
    flask_db: FlaskDb, migrations_dir: Path
) -> None:
    before = revision_files(migrations_dir)

    result = flask_db("generate", "TooEarly")

    assert result.exit_code == ExitCode.PENDING
    assert "The database is behind head" in result.output
    assert "make migration-run" in result.output
    assert revision_files(migrations_dir) == before


def test_generate_on_tables_made_by_create_all_names_that_cause(
    app_for: Callable[..., Flask], sqlite_database: str, migrations_dir: Path
) -> None:
    app = app_for(sqlite_database, migrations_dir)
    with app.app_context():
        from app.extensions import db

        db.create_all()

    result = cli(app)("generate", "Again")

    assert result.exit_code == ExitCode.PENDING
    assert "created outside migrations" in result.output


def test_diagnosis_names_an_empty_metadata(sqlite_flask_db: FlaskDb, engine_for, sqlite_database):
    from alembic.script import ScriptDirectory

    with engine_for(sqlite_database).connect() as connection:
        causes = diagnose(connection, MetaData(), ScriptDirectory(MIGRATIONS_DIRECTORY), "url")

    assert any("No models are registered" in cause for cause in causes)


def test_generate_refuses_a_migration_that_drops_every_table(
    sqlite_flask_db: FlaskDb, migrations_dir: Path, engine_for, sqlite_database: str
) -> None:
    for path in revision_files(migrations_dir):
        path.unlink()
    with engine_for(sqlite_database).begin() as connection:
        connection.execute(text("CREATE TABLE legacy_users (id INTEGER PRIMARY KEY)"))
        connection.execute(text("CREATE TABLE legacy_posts (id INTEGER PRIMARY KEY)"))

    result = sqlite_flask_db("generate", "Initial")

    assert result.exit_code == ExitCode.REFUSED
    assert "drops every table" in result.output
    assert revision_files(migrations_dir) == []


def test_generate_writes_a_reviewed_revision_with_a_destructive_banner(
    flask_db: FlaskDb, migrations_dir: Path, engine_for, empty_database: str
) -> None:
    flask_db("run")
    with engine_for(empty_database).begin() as connection:
        connection.execute(text("ALTER TABLE users ADD COLUMN nickname VARCHAR(40)"))

    result = flask_db("generate", "DropNickname")

    assert result.exit_code == ExitCode.OK, result.output
    created = last_revision(migrations_dir)
    assert re.fullmatch(r"\d{8}_\d{6}_[0-9a-f]+_drop_nickname\.py", created.name)
    assert "DESTRUCTIVE: this revision loses or rewrites data" in created.read_text()
    assert "drops column users.nickname" in created.read_text()
    assert "ALTER TABLE users DROP COLUMN nickname;" in result.output  # PostgreSQL SQL
    assert "ban-drop-column" in result.output  # linted
    if empty_database.startswith("postgresql"):  # SQLite reflects an Enum as VARCHAR too
        assert "enum type" not in result.output  # a VARCHAR column: no enum type to drop
    assert read_head_file(migrations_dir) == [created.name.split("_")[2]]


# --- create ----------------------------------------------------------------------


def test_create_writes_an_empty_revision_and_moves_head(
    sqlite_flask_db: FlaskDb, migrations_dir: Path
) -> None:
    result = sqlite_flask_db("create", "BackfillBios", "--data")

    assert result.exit_code == ExitCode.OK
    created = last_revision(migrations_dir)
    assert created.name.endswith("_backfill_bios.py")
    assert "app.models" not in created.read_text().replace("never imports app.models", "")
    assert "Data migration" in created.read_text()
    assert read_head_file(migrations_dir) == [created.name.split("_")[2]]
    assert sqlite_flask_db("run").exit_code == ExitCode.OK


def test_an_empty_revision_keeps_the_imports_its_upgrade_will_need(
    sqlite_flask_db: FlaskDb, migrations_dir: Path
) -> None:
    result = sqlite_flask_db("create", "AddNickname")
    assert result.exit_code == ExitCode.OK
    created = last_revision(migrations_dir)
    text = created.read_text().replace(
        "def upgrade():\n    pass",
        'def upgrade():\n    op.add_column("users", sa.Column("nickname", sa.Text()))',
    )
    created.write_text(text)

    assert sqlite_flask_db("run").exit_code == ExitCode.OK, sqlite_flask_db("status").output


# --- lint ------------------------------------------------------------------------


def test_lint_fails_on_a_hazardous_revision_until_its_review_is_recorded_beside_it(
    sqlite_flask_db: FlaskDb, migrations_dir: Path
) -> None:
    head = read_head_file(migrations_dir)[0]
    hazardous = write_revision(migrations_dir, "dropbio", 'op.drop_column("users", "bio")', head)
    before = hazardous.read_bytes()

    flagged = sqlite_flask_db("lint", "dropbio")
    assert flagged.exit_code == ExitCode.FAILED
    assert "ban-drop-column" in flagged.output
    assert "ALTER TABLE users DROP COLUMN bio" in flagged.output
    assert 'make migration-review rev=dropbio why="<why it is safe>"' in flagged.output

    recorded = sqlite_flask_db("review", "dropbio", REVIEW_REASON)
    assert recorded.exit_code == ExitCode.OK
    reviewed = sqlite_flask_db("lint", "dropbio")
    assert reviewed.exit_code == ExitCode.OK, reviewed.output
    assert f"reviewed {hazardous.name}: {REVIEW_REASON}" in reviewed.output
    assert hazardous.read_bytes() == before  # the revision file is untouched
    assert f"dropbio  {REVIEW_REASON}" in (migrations_dir / "reviewed.txt").read_text()


def test_every_committed_revision_passes_lint_without_editing_an_applied_file(
    sqlite_flask_db: FlaskDb,
) -> None:
    result = sqlite_flask_db("lint", "--all")

    assert result.exit_code == ExitCode.OK, result.output
    assert "reviewed 20261121_082646_556ee2c1adfc_indexes_for_lists_feed_and_filters.py" in (
        result.output
    )


# --- backups ---------------------------------------------------------------------


def test_production_run_backs_up_first_and_the_backup_restores(
    app_for: Callable[..., Flask],
    empty_database: str,
    migrations_dir: Path,
    tmp_path: Path,
    engine_for: Callable[[str], Engine],
) -> None:
    backups = tmp_path / "backups"
    production = cli(
        app_for(empty_database, migrations_dir, APP_ENV="production", BACKUP_DIRECTORY=backups)
    )
    first = revision_files(migrations_dir)[0].name.split("_")[2]
    assert cli(app_for(empty_database, migrations_dir))("upgrade", first).exit_code == 0

    result = production("run")

    assert result.exit_code == ExitCode.OK, result.output
    written = list(backups.iterdir())
    assert len(written) == 1
    assert f"Backup written: {written[0]}" in result.output
    assert f"make db-restore file={written[0]}" in result.output

    assert production("restore", str(written[0])).exit_code == ExitCode.OK
    with engine_for(empty_database).connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == first


def test_backup_command_writes_a_file_that_restores_rows(
    flask_db: FlaskDb, tmp_path: Path, engine_for, empty_database: str
) -> None:
    flask_db("run")
    backup_file = tmp_path / "manual.backup"
    assert flask_db("backup", "--output", str(backup_file)).exit_code == ExitCode.OK
    engine = engine_for(empty_database)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO tags (name) VALUES ('after-backup')"))

    assert flask_db("restore", str(backup_file)).exit_code == ExitCode.OK

    engine.dispose()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM tags")).scalar() == 0
    assert table_names(engine) - TOOLING_TABLES


@pytest.mark.parametrize("command", ["run", "revert", "status", "verify"])
def test_commands_report_an_unreachable_database_in_one_line(
    app_for: Callable[..., Flask], migrations_dir: Path, command: str
) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    result = cli(app_for(unreachable, migrations_dir))(command)

    assert result.exit_code == ExitCode.FAILED
    assert result.output.startswith("Error: ")


# --- output ----------------------------------------------------------------------

ALEMBIC_CHATTER = ("Context impl", "Will assume", "Running upgrade", "Detected sequence")


@pytest.mark.parametrize("command", [("run",), ("revert",), ("generate", "Nothing")])
def test_workflow_commands_keep_alembic_log_lines_out_unless_verbose(
    flask_db: FlaskDb, caplog: pytest.LogCaptureFixture, command: tuple[str, ...]
) -> None:
    flask_db("run")
    caplog.set_level(logging.INFO, logger="alembic")

    quiet = flask_db(*command)
    quiet_log = caplog.text
    caplog.clear()
    if command == ("revert",):
        flask_db("run")
        caplog.clear()
    verbose = flask_db(*command, "-v")

    for chatter in ALEMBIC_CHATTER:
        assert chatter not in quiet.output + quiet_log
    assert "Generating" not in quiet.output
    assert "Context impl" in caplog.text, verbose.output


def test_generate_on_a_database_behind_head_gives_only_the_relevant_advice(
    flask_db: FlaskDb,
) -> None:
    result = flask_db("generate", "TooEarly")

    assert result.exit_code == ExitCode.PENDING
    assert "run `make migration-run` first" in result.output
    assert "Autogenerate cannot see" not in result.output
    assert "make migration-create" not in result.output


def template_example(revision: str) -> str:
    """The commented example of the data-migration template, as code."""
    lines = revision.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#   users = sa.table"))
    code = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        code.append(line[len("#   ") :])
    return "\n".join(code)


def test_the_data_migration_templates_batch_example_runs_and_backfills(
    flask_db: FlaskDb, migrations_dir: Path, engine_for, empty_database: str
) -> None:
    flask_db("run")
    engine = engine_for(empty_database)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (username, username_key, email, email_key, password_hash,"
                " created_at, updated_at) VALUES (:name, :key, :email, :email_key, 'x',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            [
                {"name": name, "key": name, "email": email, "email_key": email}
                for name, email in ((f"user{n}", f"user{n}@example.com") for n in range(2500))
            ],
        )
    assert flask_db("create", "BackfillBios", "--data").exit_code == ExitCode.OK
    created = last_revision(migrations_dir)
    example = template_example(created.read_text())
    body = "\n".join(f"    {line}" for line in example.splitlines())
    created.write_text(
        created.read_text().replace("def upgrade():\n    pass", f"def upgrade():\n{body}")
    )

    result = flask_db("run")

    assert result.exit_code == ExitCode.OK, result.output
    assert "backfill users: 2,500/2,500 rows (100%)" in result.output
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT count(*) FROM users WHERE bio = ''")).scalar() == 2500
        )
