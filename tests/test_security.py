"""Tokens: both schemes, expiry, tampering, deleted users, session keys, rotated signing keys."""

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from flask import Flask

from app import close_app, tokens
from app.config import DEFAULT_SIGNING_KEY_ID
from app.tokens import CLOCK_LEEWAY_SECONDS
from tests.apps import TEST_SECRET_KEY, make_app
from tests.factories import auth, register
from tests.listening import wait_until_listening

OLD_KEY = "old:" + "o" * 40
NEW_KEY = "new:" + "n" * 40


def session_key_of(user: dict[str, Any]) -> str:
    return jwt.decode(user["token"], options={"verify_signature": False})["sid"]


def token_for(
    user_id: str,
    secret: str = TEST_SECRET_KEY,
    kid: str | None = DEFAULT_SIGNING_KEY_ID,
    **claims: Any,
) -> str:
    """A token signed like the app's (``kid`` in the header); ``sid`` only when given."""
    now = datetime.now(UTC)
    payload = {"sub": user_id, "iat": now, "exp": now + timedelta(minutes=5), **claims}
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers)


def user_token(user: dict[str, Any], **changes: Any) -> str:
    """``user``'s own claims (its id is 1: the first registered), with ``changes``."""
    return token_for("1", **{"sid": session_key_of(user), **changes})


@pytest.fixture
def app_with_keys(database_url: str, app: Flask) -> Iterator[Callable[..., Flask]]:
    """``app_with_keys(JWT_SIGNING_KEYS=…)``: another instance on the same database."""
    made: list[Flask] = []

    def make(**settings: str) -> Flask:
        other = make_app(database_url, **settings)
        made.append(other)
        return other

    yield make
    for other in made:
        close_app(other)


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "token", "bearer"])
def test_token_and_bearer_schemes_are_accepted(client, scheme):
    user = register(client)

    response = client.get("/api/user", headers={"Authorization": f"{scheme} {user['token']}"})

    assert response.status_code == 200


def test_expired_token_is_401(client):
    user = register(client)
    expired = user_token(user, exp=datetime.now(UTC) - timedelta(seconds=CLOCK_LEEWAY_SECONDS + 5))

    response = client.get("/api/user", headers={"Authorization": f"Token {expired}"})

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["has expired"]}}


def test_token_signed_with_another_key_is_401(client):
    user = register(client)
    forged = user_token(user, secret="another-secret-that-is-also-long-enough")

    response = client.get("/api/user", headers={"Authorization": f"Token {forged}"})

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}


@pytest.mark.parametrize("subject", ["999", "abc", "-1", "99999999999999999999999"])
def test_token_for_no_such_user_is_401(client, subject):
    token = token_for(subject, sid="0" * 32)

    response = client.get("/api/user", headers={"Authorization": f"Token {token}"})

    assert response.status_code == 401


def test_unsigned_token_is_401(client):
    register(client)
    unsigned = jwt.encode({"sub": "1"}, key=None, algorithm="none", headers={"kid": "secret-key"})

    response = client.get("/api/user", headers={"Authorization": f"Token {unsigned}"})

    assert response.status_code == 401


def test_a_token_issued_by_a_clock_a_few_seconds_ahead_is_accepted(client):
    user = register(client)
    ahead = datetime.now(UTC) + timedelta(seconds=5)
    token = user_token(user, iat=ahead, nbf=ahead, exp=ahead + timedelta(minutes=5))

    response = client.get("/api/user", headers={"Authorization": f"Token {token}"})

    assert response.status_code == 200


def test_a_token_issued_further_ahead_than_the_leeway_is_401(client):
    user = register(client)
    ahead = datetime.now(UTC) + timedelta(seconds=CLOCK_LEEWAY_SECONDS + 30)

    response = client.get(
        "/api/user", headers={"Authorization": f"Token {user_token(user, iat=ahead)}"}
    )

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}


@pytest.mark.parametrize(
    "subject",
    [str(2**31), str(2**63), str(2**64), "9" * 5000, "٣", "1 ", "+1", "0", "-0", "01"],
    ids=[
        "past int32",
        "past int64",
        "past uint64",
        "past the int() digit limit",
        "arabic-indic",
        "space",
        "plus",
        "zero",
        "minus zero",
        "leading zero",
    ],
)
def test_a_signed_token_whose_subject_is_no_user_id_is_401(client, subject):
    user = register(client)
    token = user_token(user, sub=subject)

    response = client.get("/api/user", headers={"Authorization": f"Token {token}"})

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}


def test_a_token_made_like_the_apps_is_accepted(client):
    """The helper above signs as the app does: the refusals below are about one change each."""
    user = register(client)

    response = client.get("/api/user", headers={"Authorization": f"Token {user_token(user)}"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "sid",
    ["0" * 32, "", 12345, None, "é" * 32],
    ids=["forged", "empty", "a number", "null", "not ascii"],
)
def test_a_token_whose_session_key_is_not_the_accounts_is_401(client, sid):
    user = register(client)

    response = client.get(
        "/api/user", headers={"Authorization": f"Token {user_token(user, sid=sid)}"}
    )

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}
    assert response.headers["WWW-Authenticate"] == "Token"


def test_a_token_without_a_session_key_is_401(client):
    """Tokens from before session keys carry none: everyone signs in again once."""
    register(client)

    response = client.get("/api/user", headers={"Authorization": f"Token {token_for('1')}"})

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}


@pytest.mark.parametrize("kid", [None, "retired", ""], ids=["no kid", "unknown kid", "empty kid"])
def test_a_token_naming_no_configured_signing_key_is_401(client, kid):
    user = register(client)

    response = client.get(
        "/api/user", headers={"Authorization": f"Token {user_token(user, kid=kid)}"}
    )

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}


def test_new_tokens_name_the_key_that_signs_them(app_with_keys):
    app = app_with_keys(JWT_SIGNING_KEYS=f"{OLD_KEY},{NEW_KEY}", JWT_SIGNING_KEY_ID="new")

    user = register(app.test_client())

    assert jwt.get_unverified_header(user["token"])["kid"] == "new"
    assert jwt.decode(user["token"], "n" * 40, algorithms=["HS256"])["sub"]


def test_a_token_of_the_previous_key_is_valid_while_that_key_is_configured(app_with_keys):
    before = app_with_keys(JWT_SIGNING_KEYS=OLD_KEY)
    user = register(before.test_client())
    rotated = app_with_keys(JWT_SIGNING_KEYS=f"{OLD_KEY},{NEW_KEY}", JWT_SIGNING_KEY_ID="new")

    response = rotated.test_client().get("/api/user", headers=auth(user))

    assert response.status_code == 200
    assert jwt.get_unverified_header(response.get_json()["user"]["token"])["kid"] == "new"


def test_removing_a_key_ends_its_tokens(app_with_keys):
    before = app_with_keys(JWT_SIGNING_KEYS=f"{OLD_KEY},{NEW_KEY}", JWT_SIGNING_KEY_ID="old")
    user = register(before.test_client())
    after = app_with_keys(JWT_SIGNING_KEYS=NEW_KEY)

    response = after.test_client().get("/api/user", headers=auth(user))

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}


def test_without_signing_keys_the_secret_key_signs_under_its_own_key_id(client):
    user = register(client)

    assert jwt.get_unverified_header(user["token"])["kid"] == DEFAULT_SIGNING_KEY_ID
    assert jwt.decode(user["token"], TEST_SECRET_KEY, algorithms=["HS256"])["sid"]


# A valid token's signature is checked once (app/tokens.py): what is remembered
# must never let a token through that a full verification would refuse.


def test_a_tokens_signature_is_checked_once_while_it_is_valid(client, monkeypatch):
    user = register(client)
    decoded: list[str] = []
    decode = tokens.jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counted)

    for _ in range(3):
        assert client.get("/api/articles/feed", headers=auth(user)).status_code == 200

    assert decoded == [user["token"]]


@pytest.mark.parametrize("path", ["/api/user", "/api/articles/feed"])
def test_a_token_accepted_before_is_refused_once_it_expires(app, client, path):
    user = register(client)
    wait_until_listening(app)
    expires = int(time.time()) - CLOCK_LEEWAY_SECONDS + 2  # valid for one to two seconds more
    token = user_token(user, exp=expires)
    assert client.get(path, headers={"Authorization": f"Token {token}"}).status_code == 200
    assert client.get(path, headers={"Authorization": f"Token {token}"}).status_code == 200

    time.sleep(expires + CLOCK_LEEWAY_SECONDS - time.time() + 0.1)
    response = client.get(path, headers={"Authorization": f"Token {token}"})

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["has expired"]}}


@pytest.mark.parametrize("path", ["/api/user", "/api/articles/feed"])
def test_a_token_with_an_accepted_tokens_header_and_claims_but_another_signature_is_401(
    client, path
):
    user = register(client)
    assert client.get(path, headers=auth(user)).status_code == 200
    header_and_claims, _, signature = user["token"].rpartition(".")
    flipped = "B" if signature[0] == "A" else "A"  # the first character: no unused bits
    forged = f"{header_and_claims}.{flipped}{signature[1:]}"

    response = client.get(path, headers={"Authorization": f"Token {forged}"})

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}


def test_a_key_removed_from_the_configuration_ends_its_remembered_tokens(app, client, monkeypatch):
    user = register(client)
    assert client.get("/api/user", headers=auth(user)).status_code == 200
    monkeypatch.setitem(app.config, "JWT_SIGNING_KEYS", {"another": "a" * 40})

    response = client.get("/api/user", headers=auth(user))

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}
