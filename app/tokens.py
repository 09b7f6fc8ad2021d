"""JWTs: what a token claims, which key signs it, and how it is read back.

A token is an HS256 JWT (RFC 7519) whose header names its signing key
(``kid``, RFC 7515 section 4.1.4) and whose claims are:

- ``sub``: the user id, as ASCII digits;
- ``sid``: the account's session key (``users.session_key``) when the token was
  issued. The views compare it with the stored key on every request, so a new
  key (a password change, "sign out everywhere") ends every earlier token, and
  an account that takes over a removed account's id (a restored backup) is not
  reachable with the removed account's tokens;
- ``iat`` and ``exp`` (``JWT_EXPIRES_SECONDS`` later).

Keys rotate (docs/configuration.md, "Rotating the signing keys"): every key of
``JWT_SIGNING_KEYS`` verifies the tokens naming its id, the one
``JWT_SIGNING_KEY_ID`` names signs new ones. Nothing here reads the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from flask import current_app

from app.models import MAX_ID, User

JWT_ALGORITHM = "HS256"
SESSION_CLAIM = "sid"
REQUIRED_CLAIMS = ["sub", "exp", SESSION_CLAIM]
# Replicas' clocks drift apart: a token issued by one whose clock runs a few
# seconds ahead must still be valid elsewhere (its ``iat`` is then "in the
# future"), and expiry is judged with the same tolerance.
CLOCK_LEEWAY_SECONDS = 10


@dataclass(frozen=True, slots=True)
class Claims:
    """Who a valid token names: a user id (``0``: nobody, anonymous) and a session key."""

    user_id: int
    session_key: str


ANONYMOUS = Claims(0, "")


def create_token(user: User) -> str:
    """A token for ``user`` under its current session key, signed by the signing key.

    Raises ``ValueError`` for a user without a session key (never written by
    this release; NULL never authenticates).
    """
    if not user.session_key:
        raise ValueError(f"user {user.id} has no session key")
    now = datetime.now(UTC)
    payload = {
        "sub": str(user.id),
        SESSION_CLAIM: user.session_key,
        "iat": now,
        "exp": now + timedelta(seconds=current_app.config["JWT_EXPIRES_SECONDS"]),
    }
    kid = current_app.config["JWT_SIGNING_KEY_ID"]
    secret = current_app.config["JWT_SIGNING_KEYS"][kid]
    return jwt.encode(payload, secret, algorithm=JWT_ALGORITHM, headers={"kid": kid})


def _user_id(subject: Any) -> int:
    """The user id a token's ``sub`` names: ASCII digits within the id range, as the app writes it.

    The length is checked before ``int()``, which refuses (``ValueError``) past
    4,300 digits; a leading zero is not how the app writes an id, so ``01`` names
    no one.
    """
    digits = (
        isinstance(subject, str)
        and 0 < len(subject) <= len(str(MAX_ID))
        and subject.isascii()
        and subject.isdigit()
        and not subject.startswith("0")
    )
    if digits and int(subject) <= MAX_ID:
        return int(subject)
    raise jwt.exceptions.InvalidSubjectError("the subject names no user id")


def read_token(token: str) -> Claims:
    """The claims of a valid, unexpired token signed by a configured key; no database.

    Raises ``jwt.ExpiredSignatureError`` for an expired token and another
    ``jwt.InvalidTokenError`` for anything else: no or an unknown ``kid``, a bad
    signature, a missing ``sub``, ``exp`` or ``sid``, a subject that is no user id.
    """
    kid = jwt.get_unverified_header(token).get("kid")
    secret = current_app.config["JWT_SIGNING_KEYS"].get(kid) if isinstance(kid, str) else None
    if secret is None:
        raise jwt.InvalidTokenError("the token names no configured signing key")
    payload = jwt.decode(
        token,
        secret,
        algorithms=[JWT_ALGORITHM],
        options={"require": REQUIRED_CLAIMS},
        leeway=CLOCK_LEEWAY_SECONDS,
    )
    session_key = payload[SESSION_CLAIM]
    if not (isinstance(session_key, str) and session_key.isascii() and session_key):
        raise jwt.InvalidTokenError("the session claim is not a key")
    return Claims(_user_id(payload["sub"]), session_key)
