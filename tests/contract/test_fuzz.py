"""Contract fuzzing: schemathesis drives every operation of the live spec in-process.

The spec is the one the code generates (``openapi_document()``), the app is the
real one on a fresh database per operation (SQLite and PostgreSQL), and every
request that an operation secures carries a registered user's ``Authorization:
Token`` header. Path parameters are generated, or two times in three point at
rows that exist (the fuzzing user's article, comment and profile, or someone
else's), so the handlers past the 404 get fuzzed too.

Each response must: not be a 5xx, use a status code, content type and headers
the operation documents, match the documented schema; an operation that
requires a token must refuse the same request without one (``ignored_auth``
replays it). ``test_secured_operations_reject_a_request_without_a_valid_token``
states that rule directly for every operation. Bounded and derandomized: the same examples
every run; ``make fuzz`` runs the long, randomized campaign against gunicorn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import stamp
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import close_app
from app.extensions import db
from app.models import User
from app.tokens import create_token
from app.web.openapi import openapi_document
from tests import factories
from tests.apps import make_app, reset_database
from tests.contract.operations import operations

pytestmark = pytest.mark.slow  # schemathesis: hypothesis-generated requests

SPEC = openapi_document()
schema = schemathesis.openapi.from_dict(SPEC)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
]
EXAMPLES_PER_OPERATION = 30


def _secured(operation: dict) -> bool:
    return bool(operation.get("security"))


def _token_required(operation: dict) -> bool:
    security = operation.get("security") or []
    return bool(security) and {} not in security


@dataclass(frozen=True)
class World:
    """The app under test, its fuzzing user, and someone else's article to aim at.

    Fuzzing renames and deletes the fuzzing user's rows, so they are looked up
    (and recreated) through the API right before each example that needs them.
    """

    app: Flask
    fuzzer: dict[str, Any]
    other: dict[str, Any]
    their_slug: str

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    @property
    def auth(self) -> dict[str, str]:
        """The fuzzing user's token under its current session key.

        Fuzzing changes the password and signs out everywhere, each of which
        ends the tokens issued before; a fresh one keeps every example signed in.
        """
        return factories.auth(self.signed_in(self.fuzzer))

    def signed_in(self, account: dict[str, Any]) -> dict[str, Any]:
        """``account`` with a token under its current session key."""
        user_id = int(jwt.decode(account["token"], options={"verify_signature": False})["sub"])
        with self.app.app_context():
            return {**account, "token": create_token(db.session.get_one(User, user_id))}

    def username(self, whose: str) -> str:
        if whose == "theirs":
            return self.other["username"]
        return self.client.get("/api/user", headers=self.auth).get_json()["user"]["username"]

    def own_slug(self) -> str:
        query = {"author": self.username("own"), "limit": 1}
        articles = self.client.get("/api/articles", query_string=query).get_json()["articles"]
        if articles:
            return articles[0]["slug"]
        return factories.create_article(self.client, self.signed_in(self.fuzzer))["slug"]

    def comment_id(self, whose: str) -> int:
        """A comment on their article, by the fuzzing user (own) or by its author (theirs)."""
        author = self.signed_in(self.fuzzer) if whose == "own" else self.other
        username = self.username(whose)
        comments = self.client.get(f"/api/articles/{self.their_slug}/comments").get_json()
        for comment in comments["comments"]:
            if comment["author"]["username"] == username:
                return comment["id"]
        return factories.add_comment(self.client, author, self.their_slug)["id"]


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    """A fresh database at the migrations' head (so /readyz is ready), with a few rows."""
    app = make_app(database_url)
    reset_database(app)
    with app.app_context():
        db.create_all()
        stamp()
    client = app.test_client()
    fuzzer = factories.register(client)
    other = factories.register(client)
    factories.create_article(client, fuzzer, tagList=["fuzz"])
    theirs = factories.create_article(client, other, tagList=["other"])
    factories.add_comment(client, other, theirs["slug"])
    factories.favorite(client, fuzzer, theirs["slug"])
    factories.follow(client, fuzzer, other["username"])
    yield World(app, fuzzer, other, theirs["slug"])
    reset_database(app)
    close_app(app)


def _aim_at_real_rows(case: schemathesis.Case, world: World, target: str) -> None:
    """Point the path parameters at existing rows: the fuzzing user's (own) or not."""
    parameters = case.path_parameters
    if not parameters or target == "generated":
        return
    if "id" in parameters:  # a comment: on their article, by either of them
        parameters["slug"] = world.their_slug
        parameters["id"] = world.comment_id(target)
    elif "slug" in parameters:
        parameters["slug"] = world.own_slug() if target == "own" else world.their_slug
    if "username" in parameters:  # "own": following yourself is refused with a 422
        parameters["username"] = world.username(target)


@schema.parametrize()
@schema.given(target=st.sampled_from(["generated", "own", "theirs"]))
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_honours_its_contract(
    case: schemathesis.Case, world: World, target: str
) -> None:
    _aim_at_real_rows(case, world, target)
    headers = world.auth if _secured(case.operation.definition.raw) else None
    # The checks' own probes (ignored_auth replays without the token) go through schema.app.
    case.operation.schema.app = world.app
    case.call_and_validate(app=world.app, headers=headers, checks=CHECKS)


SECURED = [
    pytest.param(path, method, id=operation["operationId"])
    for path, method, operation in operations(SPEC)
    if _token_required(operation)
]


@pytest.mark.parametrize("authorization", [None, "Token not-a-jwt"], ids=["missing", "invalid"])
@pytest.mark.parametrize(("path", "method"), SECURED)
def test_secured_operations_reject_a_request_without_a_valid_token(
    world: World, path: str, method: str, authorization: str | None
) -> None:
    url = (
        path.replace("{slug}", world.their_slug)
        .replace("{id}", str(world.comment_id("theirs")))
        .replace("{username}", world.username("theirs"))
    )
    headers = {"Authorization": authorization} if authorization else {}
    response = world.app.test_client().open(url, method=method, json={}, headers=headers)
    assert response.status_code == 401, response.get_json()
    assert list(response.get_json()["errors"]) == ["token"]


# Whitespace to Python (str.isspace) or to JavaScript (which adds U+FEFF).
BLANK_CHARACTERS = "".join(chr(c) for c in range(0x110000) if chr(c).isspace()) + "\ufeff"


def test_blank_means_the_same_to_the_published_pattern_and_to_the_server(world: World) -> None:
    pattern = SPEC["components"]["schemas"]["NewArticle"]["properties"]["title"]["pattern"]
    assert all(re.search(pattern, char) is None for char in BLANK_CHARACTERS)
    assert re.search(pattern, " a ") is not None
    blank = {"title": BLANK_CHARACTERS, "description": "\ufeff", "body": "\x1f\x85"}
    response = world.client.post("/api/articles", json={"article": blank}, headers=world.auth)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"title", "description", "body"}
