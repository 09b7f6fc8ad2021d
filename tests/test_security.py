"""Tokens: both schemes, expiry, tampering, deleted users."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.factories import register


def token_for(user_id: str, secret: str = TEST_SECRET_KEY, **claims) -> str:
    now = datetime.now(UTC)
    payload = {"sub": user_id, "iat": now, "exp": now + timedelta(minutes=5), **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "token", "bearer"])
def test_token_and_bearer_schemes_are_accepted(client, scheme):
    user = register(client)

    response = client.get("/api/user", headers={"Authorization": f"{scheme} {user['token']}"})

    assert response.status_code == 200


def test_expired_token_is_401(client):
    register(client)
    expired = token_for("1", exp=datetime.now(UTC) - timedelta(seconds=5))

    response = client.get("/api/user", headers={"Authorization": f"Token {expired}"})

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["has expired"]}}


def test_token_signed_with_another_key_is_401(client):
    register(client)
    forged = token_for("1", secret="another-secret-that-is-also-long-enough")

    response = client.get("/api/user", headers={"Authorization": f"Token {forged}"})

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}


@pytest.mark.parametrize("subject", ["999", "abc", "-1", "99999999999999999999999"])
def test_token_for_no_such_user_is_401(client, subject):
    response = client.get("/api/user", headers={"Authorization": f"Token {token_for(subject)}"})

    assert response.status_code == 401


def test_unsigned_token_is_401(client):
    register(client)
    unsigned = jwt.encode({"sub": "1"}, key=None, algorithm="none")

    response = client.get("/api/user", headers={"Authorization": f"Token {unsigned}"})

    assert response.status_code == 401
