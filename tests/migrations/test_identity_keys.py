"""The identity keys revision: existing users get their keys; clashing accounts stop it.

Runs on SQLite and PostgreSQL, from the revision before it.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from pytest_alembic import MigrationContext as AlembicRunner
from sqlalchemy import Engine, inspect, text

BEFORE = "5118002ee141"
REVISION = "234cf5ebce0c"


def insert_users(engine: Engine, *users: tuple[int, str, str]) -> None:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for user_id, username, email in users:
            connection.execute(
                text(
                    "INSERT INTO users (id, username, email, password_hash, created_at,"
                    " updated_at) VALUES (:id, :username, :email, 'x', :now, :now)"
                ),
                {"id": user_id, "username": username, "email": email, "now": now},
            )


def test_existing_users_get_their_keys(
    alembic_runner: AlembicRunner, alembic_engine: Engine
) -> None:
    alembic_runner.migrate_up_to(BEFORE)
    nfd = unicodedata.normalize("NFD", "José")
    insert_users(alembic_engine, (1, "Kay", "kay@example.com"), (2, nfd, "\uff4aose@example.com"))

    alembic_runner.migrate_up_to(REVISION)

    with alembic_engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, username_key, email_key FROM users ORDER BY id")
        ).all()
    assert [tuple(row) for row in rows] == [
        (1, "kay", "kay@example.com"),
        (2, unicodedata.normalize("NFC", "josé"), "jose@example.com"),
    ]


def test_accounts_that_read_the_same_stop_the_upgrade_and_change_nothing(
    alembic_runner: AlembicRunner, alembic_engine: Engine
) -> None:
    alembic_runner.migrate_up_to(BEFORE)
    insert_users(alembic_engine, (1, "Kay", "kay@example.com"), (2, "kay", "k2@example.com"))

    with pytest.raises(RuntimeError, match=r"username 'kay': users \[1, 2\]"):
        alembic_runner.migrate_up_to(REVISION)

    columns = {column["name"] for column in inspect(alembic_engine).get_columns("users")}
    assert "username_key" not in columns
    assert "email_key" not in columns
