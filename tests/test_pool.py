"""Pooled connections are pinged only after sitting idle, and a dead one is replaced."""

from __future__ import annotations

import time

import psycopg

from app.extensions import db
from tests.apps import app_with_tables
from tests.databases import POSTGRES_URL

IDLE_SECONDS = 0.2


def _terminate_app_connections(database: str) -> int:
    """What a database restart does to the pool: every connection of the app is gone."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() "
            "AND application_name <> 'conduit-change-feed'",
            (database,),
        ).fetchall()
    return len(rows)


def test_a_pooled_connection_killed_while_idle_is_replaced_not_an_error(postgres_url):
    settings = {"POOL_PING_AFTER_IDLE_SECONDS": IDLE_SECONDS, "RESPONSE_CACHE": False}
    with app_with_tables(postgres_url, **settings) as app:
        with app.app_context():
            database = db.engine.url.database
        client = app.test_client()
        assert client.get("/api/tags").status_code == 200  # a connection is now pooled

        assert _terminate_app_connections(database) >= 1
        time.sleep(IDLE_SECONDS * 2)
        response = client.get("/api/tags")

        assert response.status_code == 200
