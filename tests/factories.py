"""Test data made through the public API, so every row is one a client could create."""

from __future__ import annotations

import itertools
from typing import Any

import jwt
from flask import Flask
from flask.testing import FlaskClient

PASSWORD = "correct-horse-battery"
_sequence = itertools.count(1)


def _unique() -> int:
    return next(_sequence)


def auth(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Token {user['token']}"}


def token_subject(token: str) -> str:
    """Whom a token names (its ``sub`` claim), read without checking the signature."""
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def minted_token_set_aside(body: dict[str, Any]) -> dict[str, Any]:
    """A ``{"user": …}`` answer with its token replaced by whom the token names.

    Each such answer mints a new token whose ``iat``/``exp`` are the second
    it was made, so two answers a second apart differ there and only there;
    what they mean (the same user, signed in) compares equal.
    """
    user = dict(body["user"])
    user["token"] = f"<a token for {token_subject(user['token'])}>"
    return {**body, "user": user}


def new_user(**fields: Any) -> dict[str, Any]:
    """A ``NewUser`` for ``POST /api/users``: a unique name and email, PASSWORD, then ``fields``."""
    n = _unique()
    return {"username": f"user{n}", "email": f"user{n}@example.com", "password": PASSWORD, **fields}


def register(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    """Register a user; returns the ``user`` object (with its token)."""
    response = client.post("/api/users", json={"user": new_user(**fields)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["user"]


def create_article(client: FlaskClient, author: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Create an article by ``author``; returns the ``article`` object."""
    n = _unique()
    article = {
        "title": f"Article {n}",
        "description": f"Description {n}",
        "body": f"Body {n}",
        "tagList": [],
        **fields,
    }
    response = client.post("/api/articles", json={"article": article}, headers=auth(author))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["article"]


def add_comment(
    client: FlaskClient, author: dict[str, Any], slug: str, body: str = "Nice."
) -> dict[str, Any]:
    response = client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": body}}, headers=auth(author)
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["comment"]


def follow(client: FlaskClient, follower: dict[str, Any], username: str) -> None:
    response = client.post(f"/api/profiles/{username}/follow", headers=auth(follower))
    assert response.status_code == 200, response.get_json()


def favorite(client: FlaskClient, user: dict[str, Any], slug: str) -> None:
    response = client.post(f"/api/articles/{slug}/favorite", headers=auth(user))
    assert response.status_code == 200, response.get_json()


def signed_in_and_remembered(app: Flask) -> tuple[FlaskClient, dict[str, Any]]:
    """A client and a new user whose token's user ``app`` now remembers.

    The change feed listens first (PostgreSQL), then one signed-in read lets
    the app remember the user (app/data/known_users.py).
    """
    from tests.listening import wait_until_listening

    client = app.test_client()
    user = register(client)
    wait_until_listening(app)
    client.get("/api/user", headers=auth(user))
    return client, user
