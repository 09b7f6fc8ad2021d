"""Attacks on the remembered token users (app/data/known_users.py).

Each test states a promise of the product: a token names one account for its
whole life; signing out everywhere or a password change refuses old tokens at
once; no write leaves a stale answer; never a 500; a failed request writes
nothing. On SQLite and PostgreSQL, through one app, two apps on one database,
raw SQL, and threads.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import inspect, make_url, select, text

from app.data import change_feed, known_users
from app.extensions import db
from app.models import User
from app.users import service as users_service
from app.web import conditional_writes
from tests import databases
from tests.apps import apps_on
from tests.factories import auth, create_article, register, signed_in_and_remembered
from tests.listening import wait_for, wait_until_listening


@pytest.fixture
def make(database_url: str) -> Iterator[Callable[..., Flask]]:
    with apps_on(database_url) as made:
        yield made


def _run_sql(app: Flask, statement: str, **params: Any) -> list[Any]:
    """A raw SQL statement, committed around the app's request sessions.

    SQLite: on a connection of its own (``sqlite3``, as the ``sqlite3`` shell).
    PostgreSQL: through a session of the app (``flask shell``); a ``psql``
    session is heard through the triggers the migrations install, which the
    tables of these tests lack (tests/migrations/test_cache_hears_every_write.py).
    """
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        with closing(sqlite3.connect(str(url.database))) as connection, connection:
            return list(connection.execute(statement, params))
    with app.app_context():
        result = db.session.execute(text(statement), params)
        rows = list(result) if result.returns_rows else []
        db.session.commit()
        db.session.remove()
        return rows


def _once_between_the_token_check_and_the_first_statement(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]
) -> None:
    """Run ``action`` (once) when PUT /api/user has checked its token and reads nothing yet."""
    original = conditional_writes.require
    done = threading.Event()

    def hooked(*args: Any, **kwargs: Any) -> Any:
        if not done.is_set():
            done.set()
            action()
        return original(*args, **kwargs)

    monkeypatch.setattr(conditional_writes, "require", hooked)


_STARTED: list[threading.Thread] = []


@pytest.fixture(autouse=True)
def _threads_joined() -> Iterator[None]:
    """A request left waiting (SQLite's busy timeout) ends before its app is closed."""
    yield
    while _STARTED:
        _STARTED.pop().join(30)


def _in_a_thread(send: Callable[[], Any], seconds: float = 15.0) -> Any:
    """``send()`` in a thread of its own (its own app context and session); its result.

    ``None`` if it is still waiting after ``seconds`` (on SQLite, for the write
    lock the caller holds): the caller goes on, and so, later, does ``send``.
    """
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(send()))
    thread.start()
    _STARTED.append(thread)
    thread.join(seconds)
    return result[0] if result else None


# --- signing out racing a write made with the old token ----------------------


def _an_edit_racing_a_sign_out(
    make: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, remembered: bool
) -> tuple[Any, Any, list[int]]:
    """``PUT /api/user`` whose token was checked (and remembered) before a sign-out ran.

    Returns the client, the edit's response and the sign-out's status (``[0]``:
    still waiting after 3 s).
    """
    app = make(AUTH_USER_CACHE=remembered)
    client = app.test_client()
    jake = register(client)
    wait_until_listening(app)
    client.get("/api/user", headers=auth(jake))  # remembered
    signed_out: list[int] = []

    def sign_out() -> None:
        response = _in_a_thread(
            lambda: app.test_client().delete("/api/user/sessions", headers=auth(jake)), 3.0
        )
        signed_out.append(getattr(response, "status_code", 0))

    _once_between_the_token_check_and_the_first_statement(monkeypatch, sign_out)
    edited = client.put("/api/user", json={"user": {"bio": "after"}}, headers=auth(jake))
    return client, edited, signed_out


@pytest.mark.parametrize("remembered", [True, False], ids=["cache-on", "cache-off"])
def test_an_edit_checked_before_a_sign_out_never_lands_after_it(make, monkeypatch, remembered):
    """The sign-out answered 204: the edit that was still to write must not succeed after it.

    Without the remembered row, on SQLite the token's read took the write lock
    (``BEGIN IMMEDIATE``): the sign-out waited for the edit, or the edit saw
    the new key. With it, the token check runs no statement and the edit
    writes after the sign-out committed, with the revoked token.
    """
    _client, edited, signed_out = _an_edit_racing_a_sign_out(make, monkeypatch, remembered)

    if signed_out == [204]:  # on SQLite the edit holds the write lock: the sign-out waits
        assert edited.status_code == 401, "an edit landed after the sign-out, with its token"


@pytest.mark.parametrize("remembered", [True, False], ids=["cache-on", "cache-off"])
def test_a_revoked_token_is_never_exchanged_for_a_valid_one(make, monkeypatch, remembered):
    """PUT /api/user answers a new token: one signed under the key the sign-out set must not be.

    A stolen token racing its owner's "sign out everywhere" would otherwise
    come back with a token that survives the sign-out.
    """
    client, edited, signed_out = _an_edit_racing_a_sign_out(make, monkeypatch, remembered)

    if edited.status_code == 200 and signed_out == [204]:
        minted = edited.get_json()["user"]["token"]
        after = client.get("/api/user", headers={"Authorization": f"Token {minted}"})
        assert after.status_code == 401, "the stolen token bought one valid after the sign-out"


@pytest.mark.parametrize("remembered", [True, False], ids=["cache-on", "cache-off"])
def test_a_password_change_never_overrides_a_sign_out_made_while_it_hashed(
    make, monkeypatch, remembered
):
    """The sign-out answered 204 while the change hashed: the revoked token changes nothing.

    ``update`` ends its transaction before argon2 (half a second in
    production) and then writes a new session key: without a second look at
    the key, a stolen token racing the owner's sign-out sets the password and
    walks away with a token valid after the sign-out.
    """
    app = make(AUTH_USER_CACHE=remembered)
    client = app.test_client()
    jake = register(client)
    wait_until_listening(app)
    client.get("/api/user", headers=auth(jake))
    signed_out: list[int] = []
    original = users_service.hash_password

    def hashing(password: str) -> str:
        if not signed_out:
            response = _in_a_thread(
                lambda: app.test_client().delete("/api/user/sessions", headers=auth(jake)), 3.0
            )
            signed_out.append(getattr(response, "status_code", 0))
        return original(password)

    monkeypatch.setattr(users_service, "hash_password", hashing)
    changed = client.put(
        "/api/user", json={"user": {"password": "stolen token's password"}}, headers=auth(jake)
    )

    assert signed_out == [204]
    assert changed.status_code == 401, "a revoked token changed the password"


# --- stale user data ---------------------------------------------------------


@pytest.mark.parametrize("field", ["username", "email", "bio", "image"])
def test_an_edit_through_another_app_shows_everywhere_the_user_is_embedded(make, field):
    here, there = make(), make()
    client = here.test_client()
    jake = register(client)
    wait_until_listening(here)
    wait_until_listening(there)
    client.get("/api/user", headers=auth(jake))
    value = {
        "username": f"renamed{jake['username']}",
        "email": f"renamed{jake['email']}",
        "bio": "bio from there",
        "image": "https://example.org/there.png",
    }[field]

    edited = there.test_client().put("/api/user", json={"user": {field: value}}, headers=auth(jake))
    assert edited.status_code == 200

    wait_for(lambda: client.get("/api/user", headers=auth(jake)).get_json()["user"][field] == value)
    if field in ("username", "bio", "image"):
        article = create_article(client, jake)
        assert article["author"][field] == value
        commented = client.post(
            f"/api/articles/{article['slug']}/comments",
            json={"comment": {"body": "hi"}},
            headers=auth(jake),
        )
        assert commented.status_code in (200, 201)
        assert commented.get_json()["comment"]["author"][field] == value


def test_a_raw_sql_edit_is_seen_by_the_next_request(make):
    app = make()
    client, jake = signed_in_and_remembered(app)

    _run_sql(app, "UPDATE users SET bio = 'psql fix' WHERE username = :name", name=jake["username"])

    wait_for(
        lambda: client.get("/api/user", headers=auth(jake)).get_json()["user"]["bio"] == "psql fix"
    )


def test_a_raw_sql_new_session_key_refuses_the_token(make):
    app = make()
    client, jake = signed_in_and_remembered(app)

    _run_sql(
        app,
        "UPDATE users SET session_key = 'revoked-by-hand' WHERE username = :name",
        name=jake["username"],
    )

    wait_for(lambda: client.get("/api/user", headers=auth(jake)).status_code == 401)


@pytest.mark.parametrize("database_url", [databases.SQLITE], indirect=True)
def test_a_reused_id_never_names_the_new_account(make):
    """An account that gets a removed account's id (a restored backup, a ``psql`` fix; ids
    are never handed out twice otherwise, revision e6f3c5dded28): the old token must not
    follow."""
    app = make()
    client = app.test_client()
    jake = register(client)
    client.get("/api/user", headers=auth(jake))
    (old_id,) = _run_sql(app, "SELECT id FROM users WHERE username = :n", n=jake["username"])[0]
    _run_sql(app, "DELETE FROM users WHERE id = :id", id=old_id)
    anna = register(client)
    _run_sql(app, "UPDATE users SET id = :old WHERE username = :n", old=old_id, n=anna["username"])

    refused = client.get("/api/user", headers=auth(jake))
    assert refused.status_code == 401


def test_a_password_change_through_another_app_refuses_the_token_once_announced(make):
    here, there = make(), make()
    client = here.test_client()
    jake = register(client)
    wait_until_listening(here)
    wait_until_listening(there)
    client.get("/api/user", headers=auth(jake))

    changed = there.test_client().put(
        "/api/user", json={"user": {"password": "a new password 123"}}, headers=auth(jake)
    )
    assert changed.status_code == 200

    wait_for(lambda: client.get("/api/user", headers=auth(jake)).status_code == 401)
    assert client.get("/api/user", headers=auth(changed.get_json()["user"])).status_code == 200


def test_a_failed_edit_leaves_neither_the_row_nor_the_remembered_copy_changed(make):
    app = make()
    client = app.test_client()
    jake, anna = register(client), register(client)
    wait_until_listening(app)
    client.get("/api/user", headers=auth(jake))

    taken = client.put(
        "/api/user",
        json={"user": {"bio": "never", "username": anna["username"]}},
        headers=auth(jake),
    )
    assert taken.status_code == 422

    me = client.get("/api/user", headers=auth(jake)).get_json()["user"]
    assert (me["bio"], me["username"]) == (jake["bio"], jake["username"])
    rows = _run_sql(app, "SELECT bio FROM users WHERE username = :n", n=jake["username"])
    assert rows == [(jake["bio"],)]


def test_the_cached_feed_follows_a_profile_edit_of_an_author(make):
    """A hot read filled with a remembered viewer still watches the authors it shows."""
    app = make()
    client = app.test_client()
    jake, anna = register(client), register(client)
    wait_until_listening(app)
    client.post(f"/api/profiles/{jake['username']}/follow", headers=auth(anna))
    create_article(client, jake)
    feed = lambda: client.get("/api/articles/feed", headers=auth(anna))  # noqa: E731
    feed()
    feed()

    client.put("/api/user", json={"user": {"bio": "edited"}}, headers=auth(jake))

    assert feed().get_json()["articles"][0]["author"]["bio"] == "edited"


def test_the_cached_feed_refuses_a_token_signed_out_elsewhere(make):
    here, there = make(), make()
    client = here.test_client()
    jake = register(client)
    wait_until_listening(here)
    wait_until_listening(there)
    feed = lambda: client.get("/api/articles/feed", headers=auth(jake))  # noqa: E731
    assert feed().status_code == 200
    assert feed().status_code == 200

    there.test_client().delete("/api/user/sessions", headers=auth(jake))

    wait_for(lambda: feed().status_code == 401)


# --- threads ------------------------------------------------------------------


def test_threads_writing_with_a_token_while_it_is_signed_out_never_500(make):
    """Many threads use one token while others edit and sign out: no 500; refused after."""
    app = make()
    client, jake = signed_in_and_remembered(app)
    statuses: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def use() -> None:
        mine = app.test_client()
        while not stop.is_set():
            for response in (
                mine.get("/api/user", headers=auth(jake)),
                mine.put("/api/user", json={"user": {"bio": "b"}}, headers=auth(jake)),
                mine.get("/api/articles/feed", headers=auth(jake)),
            ):
                with lock:
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(5):
            client.put(
                "/api/user", json={"user": {"image": "https://x.org/a.png"}}, headers=auth(jake)
            )
        out = client.delete("/api/user/sessions", headers=auth(jake))
        after = [client.get("/api/user", headers=auth(jake)).status_code for _ in range(20)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    assert 500 not in statuses
    assert out.status_code in (204, 401, 503)
    if out.status_code == 204:
        assert set(after) == {401}


def test_a_key_revoked_through_the_apps_engine_refuses_the_token(make, database_url):
    """``flask shell``: ``db.engine.begin()`` and an ``UPDATE``, outside any session.

    SQLite hears it (``PRAGMA data_version``). On PostgreSQL the app's
    connections set ``conduit.change_feed=app``, which silences the tables'
    triggers, and no session saw the statement: nobody announces it, so the
    remembered row (and its session key) stays "fresh". Before the
    remembered users, the token's read saw the new key at once.
    """
    app = make()
    client, jake = signed_in_and_remembered(app)

    with app.app_context(), db.engine.begin() as connection:
        connection.execute(
            text("UPDATE users SET session_key = NULL WHERE username = :name"),
            {"name": jake["username"]},
        )

    wait_for(lambda: client.get("/api/user", headers=auth(jake)).status_code == 401, 3.0)


@pytest.mark.parametrize("database_url", [databases.POSTGRESQL], indirect=True)
def test_a_key_revoked_in_autocommit_through_the_apps_engine_refuses_the_token(make):
    """The same outside a session, each statement committed as it runs.

    PostgreSQL only: the app's SQLite connections begin a transaction of their
    own whatever the isolation level (app/data/database.py).
    """
    app = make()
    client, jake = signed_in_and_remembered(app)

    with app.app_context():
        engine = db.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(
            text("UPDATE users SET session_key = NULL WHERE username = :name"),
            {"name": jake["username"]},
        )

    wait_for(lambda: client.get("/api/user", headers=auth(jake)).status_code == 401, 3.0)


@pytest.mark.parametrize(
    ("statement", "writes"),
    [
        ("UPDATE users SET session_key = NULL", True),
        ("  delete from users", True),
        ("WITH gone AS (\ndelete from users RETURNING id) SELECT count(*) FROM gone", True),
        ("WITH t AS (INSERT INTO tags (name) VALUES ('x') RETURNING id) SELECT id FROM t", True),
        ("ALTER TABLE users ADD COLUMN x int", True),
        ("SELECT users.updated_at FROM users", False),
        ("WITH page AS (SELECT id, updated_at FROM articles) SELECT * FROM page", False),
        ("NOTIFY conduit_changes, '*'", False),
    ],
)
def test_what_counts_as_a_write_outside_a_session(statement, writes):
    """A write is announced; a read must not be, or every answer would move at every read."""
    assert change_feed._may_write(statement) is writes


# --- served: gunicorn's processes and threads ---------------------------------


def test_served_edits_and_a_sign_out_under_load_never_answer_stale(served_app):
    """Two processes, four threads each: no 500; nothing started after a write answers before it.

    Threads read and write with one token while the main thread changes the
    image (which the threads never write), then signs out everywhere. Each
    answer is stamped with when it was sent and received.
    """
    jake = served_app.register("stormjake")
    warm = served_app.client(jake)
    for _ in range(16):  # every worker remembers jake
        assert warm.get("/api/user").status_code == 200
    stop = threading.Event()
    seen: list[tuple[float, float, str, int, Any]] = []
    lock = threading.Lock()

    def hammer(index: int) -> None:
        mine = served_app.client(jake)
        try:
            while not stop.is_set():
                for method, path, body in (
                    ("GET", "/api/user", None),
                    ("PUT", "/api/user", {"user": {"bio": f"bio {index}"}}),
                    ("GET", "/api/articles/feed", None),
                    (
                        "POST",
                        "/api/articles",
                        {
                            "article": {
                                "title": f"t {index} {time.monotonic()}",
                                "description": "d",
                                "body": "b",
                            }
                        },
                    ),
                ):
                    sent = time.monotonic()
                    response = mine.request(method, path, json=body)
                    got = time.monotonic()
                    image = None
                    if path == "/api/user" and response.status_code == 200:
                        image = response.json()["user"]["image"]
                    with lock:
                        seen.append((sent, got, f"{method} {path}", response.status_code, image))
        finally:
            mine.close()

    threads = [threading.Thread(target=hammer, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    images: list[tuple[float, str]] = []
    try:
        for step in range(6):
            image = f"https://example.org/{step}.png"
            assert warm.put("/api/user", json={"user": {"image": image}}).status_code == 200
            images.append((time.monotonic(), image))
            time.sleep(0.05)
        out = warm.delete("/api/user/sessions")
        signed_out_at = time.monotonic()
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        warm.close()

    assert out.status_code == 204
    assert len(seen) > 50 and any(row[0] > signed_out_at for row in seen), len(seen)
    assert not [row for row in seen if row[3] >= 500], [row for row in seen if row[3] >= 500][:5]
    late = [row for row in seen if row[0] > signed_out_at and row[3] != 401]
    assert not late, late[:5]
    order = [image for _, image in images]
    for sent, _got, _what, status, image in seen:
        if status == 200 and image is not None:
            done = [order.index(i) for at, i in images if at < sent]
            if done:
                assert order.index(image) >= max(done), (image, done)


# --- the remembered copy itself -------------------------------------------------


def test_one_remembered_copy_merged_by_many_threads_at_once_stays_clean(make):
    """Threads merge the same detached copy into their sessions and edit what they got."""
    app = make()
    client = app.test_client()
    jake = register(client)
    wait_until_listening(app)
    remembered = known_users.KnownUsers()
    with app.test_request_context():
        user_id = db.session.scalar(select(User.id).where(User.username == jake["username"]))
        remembered.load(user_id)
        db.session.remove()
    errors: list[BaseException] = []
    bios: list[str | None] = []

    def merge_many(index: int) -> None:
        try:
            for _ in range(200):
                with app.test_request_context():
                    user = remembered.load(user_id)
                    bios.append(user.bio)
                    user.bio = f"thread {index}"  # never committed
                    assert len(user.articles) == 0  # a lazy load on the merged copy
                    db.session.remove()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=merge_many, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    assert set(bios) == {jake["bio"]}
    (copy, _, _) = remembered._rows[user_id]
    assert not inspect(copy).modified and inspect(copy).session_id is None


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_user_deleted_by_raw_sql_is_refused_never_a_500(make, method):
    app = make()
    client, jake = signed_in_and_remembered(app)

    _run_sql(app, "DELETE FROM users WHERE username = :name", name=jake["username"])

    path = "/api/user/sessions" if method == "DELETE" else "/api/user"
    body = {"user": {"bio": "ghost"}} if method == "PUT" else None
    wait_for(
        lambda: client.open(path, method=method, json=body, headers=auth(jake)).status_code == 401
    )
