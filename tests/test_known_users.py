"""A token's user is read once, then remembered while the change feed vouches for its row.

Whatever changes the row (this request, another app on the database; a
``psql`` fix: tests/migrations/test_cache_hears_every_write.py) is seen by
the next request that names it; a request that changes
its own user and fails leaves the remembered row as it was; without a feed
that can vouch, or while a cache fill derives its dependencies from the
statements it runs, the row is read (app/data/known_users.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from app.data import known_users
from app.extensions import db
from app.models import User
from tests.apps import apps_on
from tests.databases import reads_a_user_by_id, statements_run
from tests.factories import auth, create_article, register, signed_in_and_remembered
from tests.listening import feed_of, wait_for, wait_until_listening


@pytest.fixture
def make(database_url: str) -> Iterator[Callable[..., Flask]]:
    with apps_on(database_url) as made:
        yield made


def user_reads(app: Flask, *requests: Callable[[], object]) -> int:
    """How many times the requests read a user by id (the token's ``Session.get``)."""
    with statements_run(app) as statements:
        for send in requests:
            send()
    return sum(1 for statement in statements if reads_a_user_by_id(statement))


def test_a_tokens_user_is_read_once_then_remembered(make):
    app = make()
    client = app.test_client()
    jake = register(client)
    wait_until_listening(app)
    me = lambda: client.get("/api/user", headers=auth(jake))  # noqa: E731

    assert user_reads(app, me) == 1
    assert user_reads(app, me, me, me) == 0


def test_a_write_elsewhere_keeps_the_user_remembered(make, database_url):
    """Articles, favorites and comments do not touch ``users``: PostgreSQL keeps the row.

    SQLite's feed cannot tell which table another connection wrote (``PRAGMA
    data_version``): every commit moves everything, and the row is read again.
    """
    app = make()
    client, jake = signed_in_and_remembered(app)

    reads = user_reads(
        app,
        lambda: create_article(client, jake),
        lambda: client.get("/api/user", headers=auth(jake)),
    )

    assert reads == (0 if database_url.startswith("postgresql") else 1)


def test_signing_out_everywhere_refuses_a_remembered_token_at_the_next_request(make):
    app = make()
    client = app.test_client()
    jake = register(client)
    client.get("/api/user", headers=auth(jake))

    assert client.delete("/api/user/sessions", headers=auth(jake)).status_code == 204

    refused = client.get("/api/user", headers=auth(jake))
    assert refused.status_code == 401
    assert refused.get_json() == {"errors": {"token": ["is invalid"]}}


def test_a_profile_edit_is_seen_by_the_next_request(make):
    app = make()
    client = app.test_client()
    jake = register(client)
    client.get("/api/user", headers=auth(jake))

    client.put("/api/user", json={"user": {"bio": "Edited"}}, headers=auth(jake))

    assert client.get("/api/user", headers=auth(jake)).get_json()["user"]["bio"] == "Edited"


def test_a_requests_changes_to_its_user_never_change_the_remembered_row(make):
    """A request gets a copy in its session: an edit it does not commit stays its own."""
    app = make()
    jake = register(app.test_client())
    wait_until_listening(app)
    remembered = known_users.KnownUsers()
    with app.test_request_context():
        user_id = db.session.scalar(select(User.id).where(User.username == jake["username"]))
        remembered.load(user_id)
        db.session.remove()
        edited = remembered.load(user_id)
        edited.bio = "Not stored"
        db.session.remove()

        with statements_run(app) as statements:
            again = remembered.load(user_id)

        assert (again.bio, statements) == (jake["bio"], [])


def test_signing_out_through_another_app_refuses_the_token_once_announced(make):
    here, there = make(), make()
    client = here.test_client()
    jake = register(client)
    wait_until_listening(here)
    client.get("/api/user", headers=auth(jake))

    there.test_client().delete("/api/user/sessions", headers=auth(jake))

    wait_for(lambda: client.get("/api/user", headers=auth(jake)).status_code == 401)


def test_with_the_setting_off_every_request_reads_the_user(make):
    app = make(AUTH_USER_CACHE=False)
    client = app.test_client()
    jake = register(client)
    wait_until_listening(app)
    me = lambda: client.get("/api/user", headers=auth(jake))  # noqa: E731

    assert user_reads(app, me, me, me) == 3


def test_while_the_feed_cannot_vouch_every_request_reads_the_user(make, monkeypatch):
    app = make()
    client = app.test_client()
    jake = register(client)
    wait_until_listening(app)
    me = lambda: client.get("/api/user", headers=auth(jake))  # noqa: E731
    me()

    monkeypatch.setattr(feed_of(app), "current", lambda: None)

    assert user_reads(app, me, me) == 2


def test_without_a_response_cache_every_request_reads_the_user(make):
    app = make(RESPONSE_CACHE=False)
    client = app.test_client()
    jake = register(client)
    me = lambda: client.get("/api/user", headers=auth(jake))  # noqa: E731

    assert user_reads(app, me, me) == 2


def test_a_cache_fill_reads_the_user_among_the_statements_it_derives_from(make):
    """A fill watches the tables its statements read: the token's ``users`` included."""
    app = make()
    client, jake = signed_in_and_remembered(app)

    feed = lambda: client.get("/api/articles/feed", headers=auth(jake))  # noqa: E731

    assert user_reads(app, feed) == 1  # a miss: the fill
    assert user_reads(app, feed) == 0  # a hit


def test_at_most_capacity_users_are_remembered(make):
    app = make()
    client = app.test_client()
    remembered = known_users.KnownUsers(capacity=2)
    from app import security

    security.use_user_loader(app, remembered.load)
    users = [register(client) for _ in range(3)]
    wait_until_listening(app)
    me = [lambda user=user: client.get("/api/user", headers=auth(user)) for user in users]

    assert user_reads(app, *me) == 3
    assert user_reads(app, me[2], me[1]) == 0
    assert user_reads(app, me[0]) == 1  # the least recently used went first
