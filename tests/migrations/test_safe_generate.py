"""Generated revisions use the lock-safe operations (app/db/safe_rewrite.py) and lint clean."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Column, ForeignKey

from app.db.exit_codes import ExitCode
from tests.migrations.flask_db import AddRevision, DefineBadges, FlaskDb, revision_files


def generated(flask_db: FlaskDb, migrations_dir: Path, name: str) -> str:
    result = flask_db("generate", name)
    assert result.exit_code == ExitCode.OK, result.output
    return max(revision_files(migrations_dir), key=lambda p: p.stat().st_mtime_ns).read_text()


def applied_badges(flask_db: FlaskDb, define_badges: DefineBadges, migrations_dir: Path) -> None:
    flask_db("run")
    define_badges(Column("title", sa.Text(), index=True))
    generated(flask_db, migrations_dir, "AddBadges")
    assert flask_db("run").exit_code == ExitCode.OK


def test_an_index_on_a_table_created_in_the_same_revision_stays_plain(
    flask_db: FlaskDb, define_badges: DefineBadges, migrations_dir: Path
) -> None:
    flask_db("run")
    define_badges(Column("title", sa.Text(), index=True))

    text = generated(flask_db, migrations_dir, "AddBadges")

    assert 'create_index(batch_op.f("ix_badges_title")' in text
    assert "safe_create_index" not in text


def test_an_index_and_a_foreign_key_on_an_existing_table_are_generated_safe(
    flask_db: FlaskDb, define_badges: DefineBadges, migrations_dir: Path
) -> None:
    applied_badges(flask_db, define_badges, migrations_dir)
    define_badges(
        Column("title", sa.Text(), index=True),
        Column("rank", sa.Integer(), index=True),
        Column("owner_id", sa.Integer(), ForeignKey("users.id")),
    )

    text = generated(flask_db, migrations_dir, "RankBadges")

    assert 'op.safe_create_index("ix_badges_rank", "badges", ["rank"], unique=False)' in text
    assert (
        'op.safe_add_foreign_key("fk_badges_owner_id_users", "badges", "users", '
        '["owner_id"], ["id"])' in text
    )
    assert flask_db("run").exit_code == ExitCode.OK


def test_not_null_on_an_existing_column_is_generated_as_safe_set_not_null(
    flask_db: FlaskDb, define_badges: DefineBadges, migrations_dir: Path
) -> None:
    applied_badges(flask_db, define_badges, migrations_dir)
    define_badges(Column("title", sa.Text(), index=True, nullable=False))

    text = generated(flask_db, migrations_dir, "TitleRequired")

    assert 'op.safe_set_not_null("badges", "title")' in text
    assert "nullable=False" not in text.split("def downgrade")[0]


def test_a_dropped_column_is_generated_as_unsafe_drop_column(
    flask_db: FlaskDb, migrations_dir: Path, engine_for, empty_database: str
) -> None:
    flask_db("run")
    with engine_for(empty_database).begin() as connection:
        connection.execute(sa.text("ALTER TABLE users ADD COLUMN nickname VARCHAR(40)"))

    text = generated(flask_db, migrations_dir, "DropNickname")

    assert 'op.unsafe_drop_column("users", "nickname")' in text
    assert "drop_column" not in text.split("def upgrade")[1].replace("unsafe_drop_column", "")


# --- the lint trusts the safe forms and says what to write instead ---------------


def test_the_lint_finds_nothing_in_the_safe_forms(
    sqlite_flask_db: FlaskDb, add_revision: AddRevision
) -> None:
    add_revision(
        "safe",
        """
        op.safe_create_index('ix_comments_body', 'comments', ['body'])
        op.safe_add_check('ck_comments_body', 'comments', 'length(body) > 0')
        op.safe_add_foreign_key('fk_comments_author', 'comments', 'users', ['author_id'], ['id'])
        op.safe_set_not_null('users', 'bio')
        op.safe_add_unique('uq_comments_body', 'comments', ['body'])
        """,
    )

    result = sqlite_flask_db("lint", "--all")

    assert "ok       29990101_000000_safe.py" in result.output


def test_each_hazard_names_the_safe_form_with_the_revisions_own_names(
    sqlite_flask_db: FlaskDb, add_revision: AddRevision
) -> None:
    add_revision(
        "plain",
        """
        op.create_index('ix_comments_body', 'comments', ['body'])
        op.create_check_constraint('ck_comments_body', 'comments', 'length(body) > 0')
        op.alter_column('users', 'bio', nullable=False)
        op.drop_column('users', 'image')
        """,
    )

    result = sqlite_flask_db("lint", "--all")

    assert "HAZARDS  29990101_000000_plain.py" in result.output
    for advice in (
        "instead: op.safe_create_index('ix_comments_body', 'comments', ['body'])",
        "op.safe_add_check('ck_comments_ck_comments_body', 'comments', 'length(body) > 0')",
        "instead: op.safe_set_not_null('users', 'bio')",
        "instead: op.unsafe_drop_column('users', 'image') in a contract revision",
    ):
        assert advice in result.output
