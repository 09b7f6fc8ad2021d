"""Sessions: every token names its account's session key, and a new key ends the old tokens.

A password change and "sign out everywhere" (``DELETE /api/user/sessions``)
give the account a new key; other accounts keep theirs. The restore case (an
account removed, its id taken by another) is in tests/migrations/test_restore.py.
"""

from __future__ import annotations

import re

from sqlalchemy import text, update

from app.extensions import db
from app.models import User
from tests.factories import PASSWORD, auth, create_article
from tests.listening import wait_until_listening


def sign_in(client, user):
    response = client.post(
        "/api/users/login", json={"user": {"email": user["email"], "password": PASSWORD}}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["user"]


def sign_out_everywhere(client, user):
    return client.delete("/api/user/sessions", headers=auth(user))


def change_password(client, user):
    new = {"password": "a-new-password-for-jake"}
    return client.put("/api/user", json={"user": new}, headers=auth(user))


def assert_refused(response):
    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is invalid"]}}
    assert response.headers["WWW-Authenticate"] == "Token"


def test_signing_out_everywhere_answers_204_without_a_body(client, jake):
    response = sign_out_everywhere(client, jake)

    assert response.status_code == 204
    assert response.get_data() == b""


def test_signing_out_everywhere_ends_every_token_of_the_account(client, jake):
    laptop, phone = sign_in(client, jake), sign_in(client, jake)

    sign_out_everywhere(client, laptop)

    for token in (jake, laptop, phone):
        assert_refused(client.get("/api/user", headers=auth(token)))


def test_signing_out_everywhere_leaves_other_accounts_signed_in(client, jake, anna):
    sign_out_everywhere(client, jake)

    assert client.get("/api/user", headers=auth(anna)).status_code == 200


def test_signing_in_again_after_signing_out_everywhere_works(client, jake):
    sign_out_everywhere(client, jake)

    again = sign_in(client, jake)

    assert client.get("/api/user", headers=auth(again)).status_code == 200


def test_signing_out_everywhere_needs_a_token(client):
    response = client.delete("/api/user/sessions")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


def test_a_password_change_ends_earlier_tokens_and_answers_with_a_working_one(client, jake):
    phone = sign_in(client, jake)

    response = change_password(client, jake)

    assert response.status_code == 200
    fresh = response.get_json()["user"]
    assert client.get("/api/user", headers=auth(fresh)).status_code == 200
    assert_refused(client.get("/api/user", headers=auth(jake)))
    assert_refused(client.get("/api/user", headers=auth(phone)))


def test_other_changes_keep_every_token(client, jake):
    phone = sign_in(client, jake)

    response = client.put(
        "/api/user", json={"user": {"bio": "Hi", "password": ""}}, headers=auth(jake)
    )

    assert response.status_code == 200
    assert client.get("/api/user", headers=auth(jake)).status_code == 200
    assert client.get("/api/user", headers=auth(phone)).status_code == 200


def test_every_account_gets_its_own_random_128_bit_key(app, client, jake, anna):
    with app.app_context():
        keys = db.session.scalars(db.select(User.session_key)).all()

    assert len(set(keys)) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) for key in keys)


def test_an_account_without_a_session_key_cannot_authenticate(app, client, jake):
    """NULL is what a row has before the backfill reaches it: it never authenticates."""
    with app.app_context():
        db.session.execute(update(User).values(session_key=None))
        db.session.commit()

    assert_refused(client.get("/api/user", headers=auth(jake)))


def test_signing_in_gives_an_account_without_a_session_key_one(app, client, jake):
    """An account the backfill has not reached yet signs in as usual (and only then)."""
    with app.app_context():
        db.session.execute(update(User).values(session_key=None))
        db.session.commit()

    signed_in = sign_in(client, jake)

    assert client.get("/api/user", headers=auth(signed_in)).status_code == 200
    assert_refused(client.get("/api/user", headers=auth(jake)))


def test_a_row_inserted_without_a_session_key_gets_one_from_the_database(app):
    """The previous release does not know the column: its inserts get the server default."""
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO users (username, email, username_key, email_key, password_hash,"
                " created_at, updated_at) VALUES ('old', 'old@example.com', 'old',"
                " 'old@example.com', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        db.session.commit()
        key = db.session.scalar(text("SELECT session_key FROM users WHERE username = 'old'"))

    assert re.fullmatch(r"[0-9a-f]{32}", key)


def test_a_revoked_token_does_not_get_a_cached_answer(app, client, jake):
    create_article(client, jake)
    wait_until_listening(app)
    client.get("/api/articles", headers=auth(jake))
    assert client.get("/api/articles", headers=auth(jake)).headers["X-Cache"] == "hit"

    sign_out_everywhere(client, jake)
    response = client.get("/api/articles", headers=auth(jake))

    assert_refused(response)
    assert response.headers["X-Cache"] == "miss"


def test_a_revoked_token_misses_the_answer_cached_for_the_accounts_new_token(app, client, jake):
    """The entry a new token refills is current (no write since): only the key tells them apart."""
    wait_until_listening(app)
    sign_out_everywhere(client, jake)
    again = sign_in(client, jake)
    client.get("/api/articles", headers=auth(again))
    assert client.get("/api/articles", headers=auth(again)).headers["X-Cache"] == "hit"

    response = client.get("/api/articles", headers=auth(jake))

    assert_refused(response)
    assert response.headers["X-Cache"] == "miss"
