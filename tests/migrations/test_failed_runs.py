"""A failed run leaves nothing behind: SQLite runs are one transaction, as PostgreSQL's are.

The example: making ``users.bio`` NOT NULL while a user has no bio. SQLite does
it by copying the table (``_alembic_tmp_users``); before, the failed copy
stayed, and every later run failed with "table _alembic_tmp_users already
exists" even after the rows were fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from app.db.exit_codes import ExitCode
from app.db.history import read_head_file
from tests.migrations.flask_db import FlaskDb, table_names

BIO_NOT_NULL = '''"""users.bio not null"""

import sqlalchemy as sa
from alembic import op

revision = "b10n0tnu11"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.alter_column("bio", existing_type=sa.Text(), nullable=False)


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.alter_column("bio", existing_type=sa.Text(), nullable=True)
'''

MARKER_TABLE = '''"""a table first"""

import sqlalchemy as sa
from alembic import op

revision = "a7ab1ef1257"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("marker", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade():
    op.drop_table("marker")
'''


@pytest.fixture
def user_without_bio(
    flask_db: FlaskDb, engine_for: Callable[[str], Engine], empty_database: str
) -> Engine:
    assert flask_db("run").exit_code == ExitCode.OK
    engine = engine_for(empty_database)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (username, username_key, email, email_key, password_hash,"
                " created_at, updated_at) VALUES ('jake', 'jake', 'jake@example.com',"
                " 'jake@example.com', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    return engine


def add_marker_then_bio_not_null(migrations: Path) -> tuple[str, str]:
    """Two new revisions: one that works, then the one that fails."""
    versions = migrations / "versions"
    (versions / "29990101_000000_a7ab1ef1257_a_table_first.py").write_text(
        MARKER_TABLE.format(down=read_head_file(migrations)[0])
    )
    (versions / "29990101_000001_b10n0tnu11_users_bio_not_null.py").write_text(
        BIO_NOT_NULL.format(down="a7ab1ef1257")
    )
    return "a7ab1ef1257", "b10n0tnu11"


def test_a_failed_revision_leaves_nothing_behind_and_the_fixed_run_then_succeeds(
    flask_db: FlaskDb, user_without_bio: Engine, migrations_dir: Path
) -> None:
    first, failing = add_marker_then_bio_not_null(migrations_dir)
    tables_before = table_names(user_without_bio)

    failed = flask_db("run")

    assert failed.exit_code == ExitCode.FAILED
    assert failed.output.startswith("Error: ")
    status = flask_db("status").output
    assert "[ ] " + failing in status
    assert not any(name.startswith("_alembic_tmp") for name in table_names(user_without_bio))
    if user_without_bio.dialect.name == "sqlite":  # one transaction for the run
        assert table_names(user_without_bio) == tables_before
        assert "[ ] " + first in status
    else:  # one transaction per revision
        assert table_names(user_without_bio) == tables_before | {"marker"}
        assert "[X] " + first in status

    with user_without_bio.begin() as connection:
        connection.execute(text("UPDATE users SET bio = '' WHERE bio IS NULL"))
    fixed = flask_db("run")

    assert fixed.exit_code == ExitCode.OK, fixed.output
    assert "[X] " + failing in flask_db("status").output


def test_status_reports_a_leftover_batch_table_and_clean_drops_it(
    sqlite_flask_db: FlaskDb, engine_for: Callable[[str], Engine], sqlite_database: str
) -> None:
    sqlite_flask_db("run")
    engine = engine_for(sqlite_database)
    with engine.begin() as connection:  # what a run before transactions left behind
        connection.execute(text("CREATE TABLE _alembic_tmp_users (id INTEGER)"))

    status = sqlite_flask_db("status")

    assert "Problem: table _alembic_tmp_users was left behind by a failed batch" in status.output
    assert "`flask db clean` drops it" in status.output
    cleaned = sqlite_flask_db("clean")
    assert cleaned.exit_code == ExitCode.OK
    assert "Dropped _alembic_tmp_users" in cleaned.output
    assert "_alembic_tmp_users" not in table_names(engine)
    assert "Problem" not in sqlite_flask_db("status").output
