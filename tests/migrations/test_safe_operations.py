"""op.safe_* (app/db/ops.py): each operation's statements and end state, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from sqlalchemy import inspect, text

from tests.migrations.flask_db import AddRevision, FlaskDb, cli, reset_postgres_schema


@pytest.fixture
def postgres_db(
    app_for: Callable[..., Flask], postgres_url: str, migrations_dir: Path
) -> tuple[FlaskDb, str]:
    """``flask db …`` on an empty PostgreSQL database, and the database's URL."""
    reset_postgres_schema(postgres_url)
    app = app_for(postgres_url, migrations_dir, MIGRATION_RETRY_DELAY=0.05)
    return cli(app), postgres_url


def catalog(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(sql).fetchall()


def applied(flask_db: FlaskDb) -> None:
    result = flask_db("run")
    assert result.exit_code == 0, result.output


# --- the SQL each renders (offline), in order ------------------------------------


def sql_of(flask_db: FlaskDb, revision: str) -> str:
    result = flask_db("sql", revision)
    assert result.exit_code == 0, result.output
    return result.output


def test_safe_create_index_builds_concurrently_outside_the_transaction(
    postgres_db: tuple[FlaskDb, str], add_revision: AddRevision
) -> None:
    flask_db, _ = postgres_db
    add_revision("ix", "op.safe_create_index('ix_comments_body', 'comments', ['body'])")

    sql = sql_of(flask_db, "ix")

    assert "CREATE INDEX CONCURRENTLY ix_comments_body ON comments (body)" in sql
    assert sql.index("COMMIT") < sql.index("CREATE INDEX CONCURRENTLY")


def test_safe_add_check_adds_not_valid_then_validates(
    postgres_db: tuple[FlaskDb, str], add_revision: AddRevision
) -> None:
    flask_db, _ = postgres_db
    add_revision("ck", "op.safe_add_check('ck_comments_body', 'comments', 'length(body) > 0')")

    sql = sql_of(flask_db, "ck")

    added = sql.index("ADD CONSTRAINT ck_comments_body CHECK (length(body) > 0) NOT VALID")
    assert added < sql.index("ALTER TABLE comments VALIDATE CONSTRAINT ck_comments_body")


def test_safe_set_not_null_goes_through_a_validated_check(
    postgres_db: tuple[FlaskDb, str], add_revision: AddRevision
) -> None:
    flask_db, _ = postgres_db
    add_revision("nn", "op.safe_set_not_null('users', 'bio')")

    steps = [
        "ADD CONSTRAINT ck_users_bio_not_null CHECK (bio IS NOT NULL) NOT VALID",
        "VALIDATE CONSTRAINT ck_users_bio_not_null",
        "ALTER COLUMN bio SET NOT NULL",
        "DROP CONSTRAINT IF EXISTS ck_users_bio_not_null",
    ]
    sql = sql_of(flask_db, "nn")
    assert [sql.index(step) for step in steps] == sorted(sql.index(step) for step in steps)


# --- end states on PostgreSQL ---------------------------------------------------


def test_safe_create_index_replaces_an_invalid_index_left_by_a_failed_build(
    postgres_db: tuple[FlaskDb, str], add_revision: AddRevision
) -> None:
    flask_db, url = postgres_db
    add_revision(
        "ix", "op.safe_create_index('ix_tags_one', 'tags', ['article_count'], unique=True)"
    )
    flask_db("upgrade", "234cf5ebce0c")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("INSERT INTO tags (name, article_count) VALUES ('a', 1), ('b', 1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            connection.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY ix_tags_one ON tags (article_count)"
            )
        connection.execute("UPDATE tags SET article_count = 2 WHERE name = 'b'")
    assert catalog(
        url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_tags_one'::regclass"
    ) == [(False,)]

    applied(flask_db)

    assert catalog(
        url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_tags_one'::regclass"
    ) == [(True,)]


def test_a_check_the_rows_break_fails_and_leaves_no_constraint_behind(
    postgres_db: tuple[FlaskDb, str], add_revision: AddRevision
) -> None:
    flask_db, url = postgres_db
    add_revision("ck", "op.safe_add_check('ck_tags_short', 'tags', 'length(name) < 3')")
    flask_db("upgrade", "heads-1")
    catalog(url, "INSERT INTO tags (name, article_count) VALUES ('long name', 0) RETURNING id")

    result = flask_db("run")

    assert result.exit_code != 0
    assert catalog(url, "SELECT conname FROM pg_constraint WHERE conname = 'ck_tags_short'") == []


def test_a_unique_index_the_rows_break_fails_and_leaves_no_index_behind(
    postgres_db: tuple[FlaskDb, str], add_revision: AddRevision
) -> None:
    flask_db, url = postgres_db
    add_revision(
        "ix", "op.safe_create_index('ix_tags_count', 'tags', ['article_count'], unique=True)"
    )
    flask_db("upgrade", "heads-1")
    catalog(url, "INSERT INTO tags (name, article_count) VALUES ('a', 1), ('b', 1) RETURNING id")

    result = flask_db("run")

    assert result.exit_code != 0
    assert catalog(url, "SELECT relname FROM pg_class WHERE relname = 'ix_tags_count'") == []


def test_safe_add_foreign_key_and_check_end_validated(
    postgres_db: tuple[FlaskDb, str], add_revision: AddRevision
) -> None:
    flask_db, url = postgres_db
    add_revision(
        "fk",
        """
        op.add_column('comments', sa.Column('reply_to_id', sa.Integer()))
        op.safe_add_foreign_key(
            'fk_comments_reply_to_id_comments', 'comments', 'comments', ['reply_to_id'], ['id']
        )
        op.safe_add_check('ck_comments_body', 'comments', 'length(body) > 0')
        """,
    )

    applied(flask_db)

    rows = catalog(
        url,
        "SELECT conname, convalidated FROM pg_constraint WHERE conname IN "
        "('fk_comments_reply_to_id_comments', 'ck_comments_body') ORDER BY conname",
    )
    assert rows == [("ck_comments_body", True), ("fk_comments_reply_to_id_comments", True)]


def test_safe_set_not_null_ends_not_null_without_its_check(
    postgres_db: tuple[FlaskDb, str], add_revision: AddRevision
) -> None:
    flask_db, url = postgres_db
    add_revision(
        "nn",
        """
        op.execute("UPDATE users SET bio = '' WHERE bio IS NULL")
        op.safe_set_not_null('users', 'bio')
        """,
    )

    applied(flask_db)

    nullable = (
        "SELECT is_nullable FROM information_schema.columns "
        "WHERE table_name = 'users' AND column_name = 'bio'"
    )
    assert catalog(url, nullable) == [("NO",)]
    assert catalog(url, "SELECT 1 FROM pg_constraint WHERE conname = 'ck_users_bio_not_null'") == []


def test_safe_add_unique_is_a_constraint_using_the_concurrent_index(
    postgres_db: tuple[FlaskDb, str], add_revision: AddRevision
) -> None:
    flask_db, url = postgres_db
    add_revision("uq", "op.safe_add_unique('uq_comments_body', 'comments', ['body', 'article_id'])")

    applied(flask_db)

    rows = catalog(
        url,
        "SELECT contype, conindid::regclass::text FROM pg_constraint "
        "WHERE conname = 'uq_comments_body'",
    )
    assert rows == [("u", "uq_comments_body")]


# --- SQLite: the plain forms ----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ("op.safe_create_index('ix_comments_body', 'comments', ['body'])", "index"),
        ("op.safe_add_check('ck_comments_body', 'comments', 'length(body) > 0')", "check"),
        ("op.safe_add_unique('uq_comments_body', 'comments', ['body', 'article_id'])", "unique"),
        ("op.safe_set_not_null('users', 'bio')", "not null"),
        ("op.unsafe_drop_column('users', 'image')", "dropped"),
    ],
)
def test_on_sqlite_each_safe_operation_is_the_plain_one(
    app_for: Callable[..., Flask],
    sqlite_database: str,
    migrations_dir: Path,
    add_revision: AddRevision,
    body: str,
    check: str,
) -> None:
    add_revision("op", body)
    app = app_for(sqlite_database, migrations_dir)

    applied(cli(app))

    with app.app_context():
        from app.extensions import db

        found = inspect(db.engine)
        if check == "index":
            assert "ix_comments_body" in {i["name"] for i in found.get_indexes("comments")}
        elif check == "check":
            assert "ck_comments_body" in {
                c["name"] for c in found.get_check_constraints("comments")
            }
        elif check == "unique":
            assert "uq_comments_body" in {
                c["name"] for c in found.get_unique_constraints("comments")
            }
        elif check == "not null":
            (bio,) = [c for c in found.get_columns("users") if c["name"] == "bio"]
            assert bio["nullable"] is False
        else:
            assert "image" not in {c["name"] for c in found.get_columns("users")}
        with db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
