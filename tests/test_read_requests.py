"""Safe requests read in autocommit (no BEGIN/ROLLBACK); writes stay transactional."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from app.extensions import db
from tests import databases, factories


def _autocommit_states(app: Flask, send) -> list[bool]:
    states: list[bool] = []

    def record(conn: Any, *_: Any) -> None:
        states.append(bool(conn.connection.dbapi_connection.autocommit))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        send()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return states


# Autocommit is observable on the psycopg connection only: PostgreSQL alone.
pytestmark = pytest.mark.parametrize("database_url", [databases.POSTGRESQL], indirect=True)


@pytest.fixture
def on_postgresql(app: Flask) -> Flask:
    return app


def test_reads_run_in_autocommit(on_postgresql: Flask, client) -> None:
    user = factories.register(client)
    article = factories.create_article(client, user)
    states = _autocommit_states(
        on_postgresql,
        lambda: client.get(f"/api/articles/{article['slug']}", headers=factories.auth(user)),
    )
    assert states and all(states)


def test_writes_run_in_a_transaction(on_postgresql: Flask, client) -> None:
    user = factories.register(client)
    states = _autocommit_states(
        on_postgresql, lambda: factories.create_article(client, user, tagList=["a", "b"])
    )
    assert states and not any(states)


def test_a_connection_reused_after_a_read_writes_in_a_transaction(
    on_postgresql: Flask, client
) -> None:
    user = factories.register(client)
    client.get("/api/articles")
    states = _autocommit_states(on_postgresql, lambda: factories.create_article(client, user))
    assert not any(states)
