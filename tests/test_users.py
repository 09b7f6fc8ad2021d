"""Registration, login and the current user."""

import unicodedata

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import User
from app.security import hash_password, password_hasher
from tests.factories import PASSWORD, auth, register

NEW_USER = {"username": "jake", "email": "jake@example.com", "password": PASSWORD}


def test_register_returns_201_with_user_and_token(client):
    response = client.post("/api/users", json={"user": NEW_USER})

    assert response.status_code == 201
    user = response.get_json()["user"]
    assert user["username"] == "jake"
    assert user["email"] == "jake@example.com"
    assert user["bio"] is None
    assert user["image"] is None
    assert user["token"].count(".") == 2
    assert "password" not in user


def test_register_answers_json_with_utf8(client):
    response = client.post("/api/users", json={"user": NEW_USER})

    assert response.mimetype == "application/json"


@pytest.mark.parametrize("field", ["username", "email", "password"])
def test_register_requires_each_field(client, field):
    user = {k: v for k, v in NEW_USER.items() if k != field}

    response = client.post("/api/users", json={"user": user})

    assert response.status_code == 422
    assert response.get_json() == {"errors": {field: ["can't be blank"]}}


@pytest.mark.parametrize("field", ["username", "email", "password"])
def test_register_rejects_blank_fields(client, field):
    response = client.post("/api/users", json={"user": {**NEW_USER, field: "   "}})

    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_register_rejects_invalid_email(client):
    response = client.post("/api/users", json={"user": {**NEW_USER, "email": "not-an-email"}})

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"email": ["is invalid"]}}


def test_register_rejects_wrong_types(client):
    response = client.post("/api/users", json={"user": {**NEW_USER, "username": 42}})

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["username"]


def test_register_rejects_short_password(client):
    response = client.post("/api/users", json={"user": {**NEW_USER, "password": "short"}})

    assert response.status_code == 422
    assert "password" in response.get_json()["errors"]


@pytest.mark.parametrize("password", [" " * 10, "\u200b" * 8, "\u3000 \u3164 \t   "])
def test_a_blank_password_is_refused_when_it_is_set(client, password):
    """Spaces only, or characters that show nothing only, could never be typed back."""
    jake = register(client)
    registered = client.post("/api/users", json={"user": {**NEW_USER, "password": password}})
    updated = client.put("/api/user", json={"user": {"password": password}}, headers=auth(jake))

    assert registered.status_code == updated.status_code == 422
    assert (
        registered.get_json() == updated.get_json() == {"errors": {"password": ["can't be blank"]}}
    )


def test_an_account_whose_password_is_spaces_still_signs_in(client, app):
    """Set before blank passwords were refused: signing in checks it like any other."""
    register(client, email="jake@example.com")
    with app.app_context():
        db.session.execute(update(User).values(password_hash=hash_password(" " * 10)))
        db.session.commit()

    response = client.post(
        "/api/users/login", json={"user": {"email": "jake@example.com", "password": " " * 10}}
    )

    assert response.status_code == 200


def test_register_rejects_taken_username_and_email(client):
    register(client, username="jake", email="jake@example.com")

    response = client.post(
        "/api/users",
        json={"user": {**NEW_USER, "email": "JAKE@example.com"}},
    )

    assert response.status_code == 422
    assert response.get_json() == {
        "errors": {"username": ["has already been taken"], "email": ["has already been taken"]}
    }


def test_register_without_envelope_is_422(client):
    response = client.post("/api/users", json=NEW_USER)

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"user": ["can't be blank"]}}


def test_password_is_stored_as_argon2id_hash(client, sql):
    register(client, username="jake", password=PASSWORD)

    [(password_hash,)] = sql("SELECT password_hash FROM users WHERE username = 'jake'")

    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash


def test_login_returns_user_with_token(client):
    register(client, email="jake@example.com")

    response = client.post(
        "/api/users/login", json={"user": {"email": "jake@example.com", "password": PASSWORD}}
    )

    assert response.status_code == 200
    assert response.get_json()["user"]["email"] == "jake@example.com"
    assert response.get_json()["user"]["token"]


def test_login_email_is_case_insensitive(client):
    register(client, email="jake@example.com")

    response = client.post(
        "/api/users/login", json={"user": {"email": "Jake@Example.com", "password": PASSWORD}}
    )

    assert response.status_code == 200


NFD_PASSWORD = unicodedata.normalize("NFD", "café-crème-brûlée")
NFC_PASSWORD = unicodedata.normalize("NFC", NFD_PASSWORD)
FULLWIDTH_PASSWORD = "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11"  # "password1"


@pytest.mark.parametrize(
    ("registered_with", "typed"),
    [
        (NFD_PASSWORD, NFC_PASSWORD),
        (NFC_PASSWORD, NFD_PASSWORD),
        (FULLWIDTH_PASSWORD, "password1"),
    ],
    ids=["nfd then nfc", "nfc then nfd", "fullwidth then ascii"],
)
def test_login_accepts_any_spelling_of_the_same_password(client, registered_with, typed):
    register(client, email="jake@example.com", password=registered_with)

    response = client.post(
        "/api/users/login", json={"user": {"email": "jake@example.com", "password": typed}}
    )

    assert response.status_code == 200


def test_a_password_hashed_as_typed_before_normalisation_still_logs_in(client, app):
    register(client, email="jake@example.com")
    with app.app_context():
        legacy_hash = password_hasher().hash(NFD_PASSWORD)  # as hashes were made before NFKC
        db.session.execute(update(User).values(password_hash=legacy_hash))
        db.session.commit()

    response = client.post(
        "/api/users/login", json={"user": {"email": "jake@example.com", "password": NFD_PASSWORD}}
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    "credentials",
    [
        {"email": "jake@example.com", "password": "wrong-password"},
        {"email": "nobody@example.com", "password": PASSWORD},
    ],
    ids=["wrong-password", "unknown-email"],
)
def test_login_with_wrong_credentials_is_401(client, credentials):
    register(client, email="jake@example.com")

    response = client.post("/api/users/login", json={"user": credentials})

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"email or password": ["is invalid"]}}


def test_login_requires_password(client):
    response = client.post("/api/users/login", json={"user": {"email": "jake@example.com"}})

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"password": ["can't be blank"]}}


def test_current_user_requires_a_token(client):
    response = client.get("/api/user")

    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is missing"]}}


def test_current_user_with_token(client):
    user = register(client, username="jake")

    response = client.get("/api/user", headers=auth(user))

    assert response.status_code == 200
    assert response.get_json()["user"]["username"] == "jake"


def test_update_changes_only_sent_fields(client):
    user = register(client, username="jake")

    response = client.put(
        "/api/user",
        json={"user": {"bio": "I like to skateboard", "image": "https://example.com/a.jpg"}},
        headers=auth(user),
    )

    assert response.status_code == 200
    updated = response.get_json()["user"]
    assert updated["bio"] == "I like to skateboard"
    assert updated["image"] == "https://example.com/a.jpg"
    assert updated["username"] == "jake"
    assert updated["email"] == user["email"]


def test_update_password_allows_login_with_new_one(client):
    user = register(client, email="jake@example.com")

    client.put("/api/user", json={"user": {"password": "a-new-password"}}, headers=auth(user))
    response = client.post(
        "/api/users/login",
        json={"user": {"email": "jake@example.com", "password": "a-new-password"}},
    )

    assert response.status_code == 200


def test_update_with_empty_image_clears_it(client):
    user = register(client)
    client.put(
        "/api/user", json={"user": {"image": "https://example.com/a.jpg"}}, headers=auth(user)
    )

    response = client.put("/api/user", json={"user": {"image": ""}}, headers=auth(user))

    assert response.get_json()["user"]["image"] is None


def test_update_requires_at_least_one_field(client):
    user = register(client)

    response = client.put("/api/user", json={"user": {}}, headers=auth(user))

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"user": ["at least one field is required"]}}


def test_update_to_a_taken_username_is_422(client):
    register(client, username="taken")
    user = register(client)

    response = client.put("/api/user", json={"user": {"username": "taken"}}, headers=auth(user))

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"username": ["has already been taken"]}}


def test_update_to_own_username_is_allowed(client):
    user = register(client, username="jake")

    response = client.put("/api/user", json={"user": {"username": "jake"}}, headers=auth(user))

    assert response.status_code == 200


def test_update_requires_a_token(client):
    response = client.put("/api/user", json={"user": {"bio": "x"}})

    assert response.status_code == 401
