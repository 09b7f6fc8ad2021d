"""``flask db restore``: it checks the backup, backs up what it replaces, and says where it is.

A refused restore exits 1 with one line and leaves the database as it was.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import jwt
import pytest
from flask import Flask
from sqlalchemy import Engine, select, text

from app.db.audit import RESTORE, TOOLING_TABLES, audit_table
from app.db.commands import backups as backup_commands
from app.db.exit_codes import ExitCode
from tests.factories import auth, register
from tests.migrations.flask_db import FlaskDb, cli, revision_files, table_names


@pytest.fixture
def backups(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture
def restore_app(
    app_for: Callable[..., Flask], empty_database: str, migrations_dir: Path, backups: Path
) -> Flask:
    """The app on an empty database, backups into ``backups``."""
    return app_for(empty_database, migrations_dir, BACKUP_DIRECTORY=backups)


@pytest.fixture
def restore_db(restore_app: Flask) -> FlaskDb:
    """``flask db …`` on a database at head holding one tag, backups into ``backups``."""
    flask_db = cli(restore_app)
    assert flask_db("run").exit_code == ExitCode.OK
    return flask_db


@pytest.fixture
def engine(restore_db: FlaskDb, engine_for: Callable[[str], Engine], empty_database: str) -> Engine:
    engine = engine_for(empty_database)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO tags (name) VALUES ('kept')"))
    return engine


def tags(engine: Engine) -> list[str]:
    engine.dispose()
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT name FROM tags")).scalars())


def sqlite_file_with_one_unrelated_table(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        connection.commit()
    return path


BAD_BACKUPS: dict[str, Callable[[Path], Path]] = {
    "an empty file": lambda folder: _write(folder / "empty.backup", b""),
    "a text file": lambda folder: _write(folder / "notes.backup", b"not a backup\n" * 20),
    "a SQLite file with one unrelated table": lambda folder: sqlite_file_with_one_unrelated_table(
        folder / "other.sqlite3"
    ),
}


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("kind", BAD_BACKUPS)
def test_restore_refuses_what_is_not_a_backup_and_changes_nothing(
    restore_db: FlaskDb, engine: Engine, tmp_path: Path, backups: Path, kind: str
) -> None:
    source = BAD_BACKUPS[kind](tmp_path)
    tables_before = table_names(engine)

    result = restore_db("restore", "--yes", str(source))

    assert result.exit_code == ExitCode.FAILED
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("Refused: ")
    assert "Nothing was changed" in result.output
    assert table_names(engine) == tables_before
    assert tags(engine) == ["kept"]
    assert not backups.exists() or not list(backups.iterdir())


def backup_without_comments(engine: Engine, folder: Path) -> Path:
    """A backup of the database made without its ``comments`` table."""
    if engine.dialect.name == "sqlite":
        doctored = folder / "doctored.sqlite3"
        with (
            closing(sqlite3.connect(str(engine.url.database))) as source,
            closing(sqlite3.connect(doctored)) as copy,
        ):
            source.backup(copy)
            copy.execute("DROP TABLE comments")
            copy.commit()
        return doctored
    doctored = folder / "doctored.dump"
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(
        ["pg_dump", "--format=custom", "--exclude-table=comments", f"--file={doctored}", url],
        check=True,
    )
    return doctored


def test_restore_refuses_a_backup_without_the_application_tables_of_its_revision(
    restore_db: FlaskDb, engine: Engine, tmp_path: Path
) -> None:
    doctored = backup_without_comments(engine, tmp_path)

    result = restore_db("restore", "--yes", str(doctored))

    assert result.exit_code == ExitCode.FAILED
    assert "lacks the application's tables comments" in result.output
    assert tags(engine) == ["kept"]


def test_restore_backs_up_the_current_database_first_and_says_where_it_stands(
    restore_db: FlaskDb,
    engine: Engine,
    tmp_path: Path,
    backups: Path,
    migrations_dir: Path,
) -> None:
    first = revision_files(migrations_dir)[0].name.split("_")[2]
    for _ in revision_files(migrations_dir)[1:]:
        assert restore_db("revert").exit_code == ExitCode.OK
    old = tmp_path / "at-first-revision.backup"
    assert restore_db("backup", "--output", str(old)).exit_code == ExitCode.OK
    assert restore_db("run").exit_code == ExitCode.OK
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO tags (name) VALUES ('after-backup')"))

    result = restore_db("restore", "--yes", str(old))

    assert result.exit_code == ExitCode.OK, result.output
    assert f"The database is at {first}; the code's head is" in result.output
    assert "pending (make migration-run)" in result.output
    assert tags(engine) == ["kept"]
    (safety,) = backups.iterdir()
    assert "before-restore" in safety.name
    assert f"Backup written: {safety}" in result.output
    # The safety backup holds what the restore replaced.
    assert restore_db("restore", "--yes", str(safety)).exit_code == ExitCode.OK
    assert sorted(tags(engine)) == ["after-backup", "kept"]


def test_restore_is_recorded_in_the_audit_trail_of_the_restored_database(
    restore_db: FlaskDb, engine: Engine, tmp_path: Path
) -> None:
    source = tmp_path / "head.backup"
    restore_db("backup", "--output", str(source))

    assert restore_db("restore", "--yes", str(source)).exit_code == ExitCode.OK

    engine.dispose()
    with engine.connect() as connection:
        rows = connection.execute(
            select(audit_table.c.direction, audit_table.c.filename).where(
                audit_table.c.direction == RESTORE
            )
        ).all()
    assert rows == [(RESTORE, "head.backup")]
    assert restore_db("verify").exit_code == ExitCode.OK  # the record is not a revision
    assert table_names(engine) - TOOLING_TABLES


def test_restore_on_a_terminal_asks_first_and_a_no_changes_nothing(
    restore_db: FlaskDb, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "head.backup"
    restore_db("backup", "--output", str(source))
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO tags (name) VALUES ('after-backup')"))
    monkeypatch.setattr(backup_commands, "_interactive", lambda: True)

    result = restore_db("restore", str(source), input="n\n")

    assert result.exit_code != ExitCode.OK
    assert "Replace every table of" in result.output
    assert sorted(tags(engine)) == ["after-backup", "kept"]


def test_a_restore_that_removes_an_account_ends_its_tokens(
    restore_app: Flask, restore_db: FlaskDb, tmp_path: Path
) -> None:
    """The account registered after the backup is gone; the next one takes its id, not its
    tokens (each token names the account's session key, app/tokens.py)."""
    client = restore_app.test_client()
    source = tmp_path / "before-mallory.backup"
    assert restore_db("backup", "--output", str(source)).exit_code == ExitCode.OK
    mallory = register(client, username="mallory")
    mallory_id = jwt.decode(mallory["token"], options={"verify_signature": False})["sub"]

    assert restore_db("restore", "--yes", str(source)).exit_code == ExitCode.OK
    bob = register(client, username="bob")

    assert jwt.decode(bob["token"], options={"verify_signature": False})["sub"] == mallory_id
    refused = client.get("/api/user", headers=auth(mallory))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Token"
    assert client.get("/api/user", headers=auth(bob)).get_json()["user"]["username"] == "bob"
