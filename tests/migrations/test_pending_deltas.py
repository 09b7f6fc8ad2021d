"""The pending deltas revision, reverted: the previous release reads the stored totals alone.

Runs on SQLite and PostgreSQL, from the revision before it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pytest_alembic import MigrationContext as AlembicRunner
from sqlalchemy import Engine, text

BEFORE = "5f3c2d9a1b7e"
REVISION = "8650e4f73dbf"


def insert_tagged_article_not_yet_folded(engine: Engine) -> None:
    """One article tagged ``x``, its totals still in ``counter_deltas`` (not folded yet)."""
    now = datetime.now(UTC)
    statements = [
        "INSERT INTO users (id, username, email, username_key, email_key, password_hash,"
        " created_at, updated_at) VALUES (1, 'kay', 'kay@example.com', 'kay',"
        " 'kay@example.com', 'x', :now, :now)",
        "INSERT INTO articles (id, slug, title, description, body, author_id, created_at,"
        " updated_at) VALUES (1, 'a', 'A', 'd', 'b', 1, :now, :now)",
        "INSERT INTO tags (id, name, article_count) VALUES (1, 'x', 0)",
        "INSERT INTO article_tags (article_id, tag_id) VALUES (1, 1)",
        "UPDATE counters SET value = 0 WHERE name = 'articles'",
        "INSERT INTO counter_deltas (tag_id, delta) VALUES (1, 1), (NULL, 1)",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), {"now": now})


def test_reverting_it_keeps_the_pending_deltas_in_the_totals(
    alembic_runner: AlembicRunner, alembic_engine: Engine
) -> None:
    alembic_runner.migrate_up_to(REVISION)
    insert_tagged_article_not_yet_folded(alembic_engine)

    alembic_runner.migrate_down_to(BEFORE)

    with alembic_engine.connect() as connection:
        tag_count = connection.scalar(text("SELECT article_count FROM tags WHERE name = 'x'"))
        total = connection.scalar(text("SELECT value FROM counters WHERE name = 'articles'"))
    assert (tag_count, total) == (1, 1)
