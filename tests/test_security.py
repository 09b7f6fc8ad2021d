"""Tokens: both schemes, expiry, tampering, deleted users."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from app.security import CLOCK_LEEWAY_SECONDS
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
    expired = token_for("1", exp=datetime.now(UTC) - timedelta(seconds=CLOCK_LEEWAY_SECONDS + 5))

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


def test_a_token_issued_by_a_clock_a_few_seconds_ahead_is_accepted(client):
    register(client)
    ahead = datetime.now(UTC) + timedelta(seconds=5)
    token = token_for("1", iat=ahead, nbf=ahead, exp=ahead + timedelta(minutes=5))

    response = client.get("/api/user", headers={"Authorization": f"Token {token}"})

    assert response.status_code == 200


def test_a_token_issued_further_ahead_than_the_leeway_is_401(client):
    register(client)
    ahead = datetime.now(UTC) + timedelta(seconds=CLOCK_LEEWAY_SECONDS + 30)

    response = client.get(
        "/api/user", headers={"Authorization": f"Token {token_for('1', iat=ahead)}"}
    )

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}


@pytest.mark.parametrize(
    "subject",
    [str(2**31), str(2**63), str(2**64), "٣", "1 ", "+1", "0", "-0"],
    ids=[
        "past int32",
        "past int64",
        "past uint64",
        "arabic-indic",
        "space",
        "plus",
        "zero",
        "minus zero",
    ],
)
def test_a_signed_token_whose_subject_is_no_user_id_is_401(client, subject):
    register(client)

    response = client.get("/api/user", headers={"Authorization": f"Token {token_for(subject)}"})

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}
