"""Scratch PostgreSQL databases created and dropped in separate calls (app/db/scratch.py)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

from app.db import scratch


def _exists(server: URL, name: str) -> bool:
    dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return found.fetchone() is not None


@pytest.fixture
def server(postgres_url: str) -> URL:
    """The test server; its session database serves as the admin connection."""
    return make_url(postgres_url)


def test_a_created_database_stays_until_it_is_dropped(server: URL) -> None:
    url = scratch.create_postgres_database(server, "outlives")
    try:
        assert url.database is not None and url.database.startswith("conduit_outlives_")
        assert _exists(server, url.database)
    finally:
        scratch.drop_postgres_database(url, server)

    assert not _exists(server, url.database)


def test_dropping_closes_the_connections_still_open_to_it(server: URL) -> None:
    url = scratch.create_postgres_database(server, "open")
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True):
        scratch.drop_postgres_database(url, server)

        assert not _exists(server, url.database or "")


def test_an_unreachable_server_is_one_line_naming_it() -> None:
    unreachable = make_url("postgresql+psycopg://postgres@127.0.0.1:1/postgres")

    named = r"PostgreSQL at .*127\.0\.0\.1:1/postgres"
    with pytest.raises(scratch.ScratchUnavailable, match=named):
        scratch.create_postgres_database(unreachable, "nowhere")
