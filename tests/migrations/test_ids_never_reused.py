"""The ids-never-reused revision: SQLite's tables with ids of their own become AUTOINCREMENT.

Runs on SQLite and PostgreSQL (where the revision does nothing and sequences
already never hand an id out twice), from the revision before it, with rows in
every table it copies.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pytest_alembic import MigrationContext as AlembicRunner
from sqlalchemy import Engine, text

BEFORE = "8650e4f73dbf"
REVISION = "e6f3c5dded28"

ROWS = [
    "INSERT INTO users (id, username, email, username_key, email_key, password_hash,"
    " created_at, updated_at) VALUES (7, 'kay', 'kay@example.com', 'kay',"
    " 'kay@example.com', 'x', :now, :now)",
    "INSERT INTO articles (id, slug, title, description, body, author_id, created_at,"
    " updated_at) VALUES (5, 'a', 'A', 'd', 'b', 7, :now, :now)",
    "INSERT INTO tags (id, name, article_count) VALUES (3, 'x', 1)",
    "INSERT INTO article_tags (article_id, tag_id) VALUES (5, 3)",
    "INSERT INTO comments (id, body, article_id, author_id, created_at, updated_at)"
    " VALUES (9, 'first', 5, 7, :now, :now)",
    "INSERT INTO favorites (user_id, article_id, created_at) VALUES (7, 5, :now)",
]


def insert_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement), {"now": datetime.now(UTC)})


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}"))]  # noqa: S608 (fixed names)
            for table in ("users", "articles", "tags", "article_tags", "comments", "favorites")
        }


def new_comment_id(engine: Engine) -> int:
    with engine.begin() as connection:
        return connection.scalar(
            text(
                "INSERT INTO comments (body, article_id, author_id, created_at, updated_at)"
                " VALUES ('next', 5, 7, :now, :now) RETURNING id"
            ),
            {"now": datetime.now(UTC)},
        )


def test_upgrading_keeps_every_row_and_id(
    alembic_runner: AlembicRunner, alembic_engine: Engine
) -> None:
    alembic_runner.migrate_up_to(BEFORE)
    insert_rows(alembic_engine)
    before = snapshot(alembic_engine)

    alembic_runner.migrate_up_one()

    assert snapshot(alembic_engine) == before


def test_after_it_the_newest_rows_id_is_not_handed_out_again_once_deleted(
    alembic_runner: AlembicRunner, alembic_engine: Engine
) -> None:
    alembic_runner.migrate_up_to(BEFORE)
    insert_rows(alembic_engine)
    alembic_runner.migrate_up_one()
    newest = new_comment_id(alembic_engine)
    with alembic_engine.begin() as connection:
        connection.execute(text("DELETE FROM comments WHERE id = :id"), {"id": newest})

    assert new_comment_id(alembic_engine) > newest


def test_upgrading_keeps_the_foreign_keys_cascading(
    alembic_runner: AlembicRunner, alembic_engine: Engine
) -> None:
    alembic_runner.migrate_up_to(BEFORE)
    insert_rows(alembic_engine)
    alembic_runner.migrate_up_one()

    with alembic_engine.begin() as connection:
        connection.execute(text("DELETE FROM articles WHERE id = 5"))
    remaining = snapshot(alembic_engine)

    assert (remaining["comments"], remaining["article_tags"], remaining["favorites"]) == (
        [],
        [],
        [],
    )


def test_reverting_it_keeps_every_row_and_id(
    alembic_runner: AlembicRunner, alembic_engine: Engine
) -> None:
    alembic_runner.migrate_up_to(REVISION)
    insert_rows(alembic_engine)
    before = snapshot(alembic_engine)

    alembic_runner.migrate_down_to(BEFORE)

    assert snapshot(alembic_engine) == before
