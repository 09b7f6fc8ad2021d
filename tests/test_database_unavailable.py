"""Database trouble is a 503 in the envelope, with ``Retry-After``; nothing acknowledged is lost.

The database is unreachable, its connection dies mid-request (PostgreSQL's
``pg_terminate_backend``), or SQLite stays locked past the busy timeout. The
answer is always the JSON envelope: a rollback on a dead connection must not
raise into the server, which would answer with its own HTML page.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, event

from app import close_app
from app.data import counters, database
from app.extensions import db
from tests import databases
from tests.apps import app_with_tables, make_app
from tests.factories import auth, create_article, register
from tests.serving import ServedApp, storm

NEW_ARTICLE = {"article": {"title": "Hello", "description": "d", "body": "b", "tagList": ["x"]}}
UNREACHABLE = {"database": ["is not reachable, please retry"]}
BUSY = {"database": ["is busy, please retry"]}


def assert_unavailable(response: Any, errors: dict[str, list[str]] = UNREACHABLE) -> None:
    assert response.status_code == 503
    assert response.get_json() == {"errors": errors}
    assert response.headers["Retry-After"] == "1"


# --- unreachable ---------------------------------------------------------------


@pytest.fixture(params=[databases.POSTGRESQL, databases.SQLITE])
def unreachable_app(request: pytest.FixtureRequest, tmp_path) -> Flask:
    """An app whose database cannot be reached: a closed port, a directory that is not there."""
    if request.param == "postgresql":
        port = request.getfixturevalue("closed_port")
        return make_app(f"postgresql://postgres@127.0.0.1:{port}/conduit")
    return make_app(f"sqlite:///{tmp_path / 'missing' / 'conduit.db'}")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/articles", None),
        ("GET", "/api/tags", None),
        ("POST", "/api/users", {"user": {"username": "a", "email": "a@b.co", "password": "x" * 8}}),
        ("POST", "/api/users/login", {"user": {"email": "a@b.co", "password": "x" * 8}}),
    ],
    ids=["list", "tags", "register", "login"],
)
def test_an_unreachable_database_is_a_503(unreachable_app: Flask, method, path, body) -> None:
    response = unreachable_app.test_client().open(path, method=method, json=body)

    assert_unavailable(response)


# --- a connection killed mid-request (PostgreSQL) -----------------------------


@pytest.fixture
def pg_app(postgres_url: str) -> Iterator[Flask]:
    with app_with_tables(postgres_url) as app:
        yield app


def terminate(connection: Connection) -> None:
    """Have the server end this connection's backend, and wait until it has."""
    pid = connection.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
    with psycopg.connect(databases.POSTGRES_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


@pytest.fixture
def kill_connection(pg_app: Flask) -> Iterator[Callable[..., None]]:
    """``kill_connection(before=…)`` / ``(after=…)``: end the backend around the first
    statement starting with that text (the commit is sent as ``NOTIFY …; COMMIT``:
    app/data/change_feed.py)."""
    with pg_app.app_context():
        engine = db.engine
    listeners: list[tuple[str, Callable[..., None]]] = []

    def arm(before: str = "", after: str = "") -> None:
        fired = threading.Event()

        def on_statement(prefix: str) -> Callable[..., None]:
            def listener(connection: Connection, _cursor: Any, statement: str, *_: Any) -> None:
                if statement.startswith(prefix) and not fired.is_set():
                    fired.set()
                    terminate(connection)

            return listener

        if before:
            listeners.append(("before_cursor_execute", on_statement(before)))
        if after:
            listeners.append(("after_cursor_execute", on_statement(after)))
        name, listener = listeners[-1]
        event.listen(engine, name, listener)

    yield arm
    for name, listener in listeners:
        event.remove(engine, name, listener)


@pytest.fixture
def pg_client(pg_app: Flask) -> FlaskClient:
    return pg_app.test_client()


def count(app: Flask, table: str) -> int:
    with app.app_context():
        try:
            return db.session.execute(db.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
        finally:
            db.session.remove()


def test_a_connection_killed_before_a_write_is_a_503_and_writes_nothing(
    pg_app, pg_client, kill_connection
) -> None:
    author = register(pg_client)
    slug = create_article(pg_client, author)["slug"]
    kill_connection(before="INSERT INTO comments")

    response = pg_client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "hi"}}, headers=auth(author)
    )

    assert_unavailable(response)
    assert count(pg_app, "comments") == 0


def test_a_connection_killed_at_commit_is_a_503_and_writes_nothing(
    pg_app, pg_client, kill_connection
) -> None:
    author = register(pg_client)
    kill_connection(before="NOTIFY ")  # the change feed's notification, sent with the COMMIT

    response = pg_client.post("/api/articles", json=NEW_ARTICLE, headers=auth(author))

    assert_unavailable(response)
    assert count(pg_app, "articles") == 0
    assert count(pg_app, "article_tags") == 0
    listed = pg_client.get("/api/articles").get_json()
    assert listed == {"articles": [], "articlesCount": 0}


def test_a_connection_killed_during_a_read_is_a_503(pg_client, kill_connection) -> None:
    kill_connection(before="SELECT articles.id")

    assert_unavailable(pg_client.get("/api/articles"))


def test_a_connection_killed_after_an_error_answer_keeps_the_answer(
    pg_client, kill_connection
) -> None:
    """The request answers 404 with its transaction open; the rollback at teardown then
    meets a dead connection and must not turn the 404 into a server error."""
    author = register(pg_client)
    kill_connection(after="SELECT articles.id")

    response = pg_client.post(
        "/api/articles/missing/comments", json={"comment": {"body": "hi"}}, headers=auth(author)
    )

    assert response.status_code == 404
    assert response.get_json() == {"errors": {"article": ["not found"]}}


def test_the_next_request_after_a_killed_connection_succeeds(pg_client, kill_connection) -> None:
    kill_connection(before="SELECT articles.id")
    assert pg_client.get("/api/articles").status_code == 503

    assert pg_client.get("/api/articles").status_code == 200


# --- served: connections killed at random while requests run ------------------


@pytest.mark.parametrize("served_app", [databases.POSTGRESQL], indirect=True)
def test_connections_killed_under_load_answer_503_and_lose_nothing_acknowledged(
    served_app: ServedApp,
) -> None:
    author = served_app.register("author")
    database_name = served_app.database_url.rsplit("/", 1)[1]
    done = threading.Event()

    def killer() -> int:
        return databases.terminate_backends(database_name, done, 0.02)

    def writer(n: int) -> list[Any]:
        client = served_app.client(author)
        responses = []
        for i in range(15):
            article = {**NEW_ARTICLE["article"], "title": f"Article {n}-{i}"}
            responses.append(client.post("/api/articles", json={"article": article}))
            responses.append(client.get("/api/articles?limit=5"))
        client.close()
        return responses

    def writers() -> list[Any]:
        try:
            return [r for batch in storm([lambda n=n: writer(n) for n in range(4)]) for r in batch]
        finally:
            done.set()

    kills, responses = storm([killer, writers], threads=2)

    assert kills > 0
    by_status = {response.status_code for response in responses}
    assert by_status <= {200, 201, 503}, by_status
    for response in responses:
        assert response.headers["Content-Type"] == "application/json"
        if response.status_code == 503:
            assert response.headers["Retry-After"] == "1"
    acknowledged = {r.json()["article"]["slug"] for r in responses if r.status_code == 201}
    stored = {row[0] for row in served_app.sql("SELECT slug FROM articles")}
    assert acknowledged <= stored
    with served_app.app.app_context():
        assert counters.drift() == []


# --- SQLite locked past the busy timeout --------------------------------------


@pytest.fixture
def sqlite_app(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """An app on a SQLite file whose writers give up after 200 ms instead of 5 s."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    app = make_app(f"sqlite:///{tmp_path / 'conduit.db'}")
    with app.app_context():
        db.create_all()
    yield app
    close_app(app)


def test_a_write_waiting_past_the_busy_timeout_is_a_503_and_writes_nothing(
    sqlite_app: Flask,
) -> None:
    client = sqlite_app.test_client()
    author = register(client)
    path = sqlite_app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

        response = client.post("/api/articles", json=NEW_ARTICLE, headers=auth(author))

        assert_unavailable(response, BUSY)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert client.get("/api/articles").get_json()["articlesCount"] == 0
    retried = client.post("/api/articles", json=NEW_ARTICLE, headers=auth(author))
    assert retried.status_code == 201


# --- a PostgreSQL lock held past DATABASE_LOCK_TIMEOUT ----------------------------

LOCK_HELD_SECONDS = 20  # released then even if the request waited (the test fails, not hangs)


@pytest.fixture
def impatient_app(postgres_url: str) -> Iterator[Flask]:
    """An app on PostgreSQL whose requests wait 300 ms for a lock instead of 5 s."""
    with app_with_tables(postgres_url, DATABASE_LOCK_TIMEOUT="300ms") as app:
        yield app


@pytest.fixture
def lock_table(postgres_url: str) -> Iterator[Callable[[str], None]]:
    """``lock_table("articles")``: another session holds it as a migration's DDL would."""
    holders: list[tuple[psycopg.Connection, threading.Timer]] = []

    def lock(table: str) -> None:
        holder = psycopg.connect(postgres_url)
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        release = threading.Timer(LOCK_HELD_SECONDS, holder.rollback)
        release.start()
        holders.append((holder, release))

    yield lock
    for holder, release in holders:
        release.cancel()
        holder.rollback()
        holder.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "table"),
    [
        ("GET", "/api/articles", None, "articles"),
        ("GET", "/api/tags", None, "tags"),
        ("POST", "/api/articles", NEW_ARTICLE, "articles"),
        ("PUT", "/api/user", {"user": {"bio": "new"}}, "users"),
    ],
    ids=["list", "tags", "create article", "update user"],
)
def test_a_request_blocked_by_a_lock_past_the_lock_timeout_is_a_503(
    impatient_app: Flask, lock_table: Callable[[str], None], method, path, body, table
) -> None:
    client = impatient_app.test_client()
    author = register(client)
    lock_table(table)

    response = client.open(path, method=method, json=body, headers=auth(author))

    assert_unavailable(response, BUSY)


def test_a_write_blocked_by_a_lock_writes_nothing_and_succeeds_once_it_is_released(
    impatient_app: Flask, postgres_url: str
) -> None:
    client = impatient_app.test_client()
    author = register(client)
    with psycopg.connect(postgres_url) as holder:
        holder.execute("LOCK TABLE tags IN ACCESS EXCLUSIVE MODE")

        response = client.post("/api/articles", json=NEW_ARTICLE, headers=auth(author))

        assert_unavailable(response, BUSY)
        holder.rollback()
    assert client.get("/api/articles").get_json()["articlesCount"] == 0
    retried = client.post("/api/articles", json=NEW_ARTICLE, headers=auth(author))
    assert retried.status_code == 201
