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

A signature is checked once per token: the claims of the last
:data:`VERIFIED_TOKENS` valid tokens are remembered per app, keyed by the
token's exact text, with the key that verified them. Expiry is judged on every
read, and a token whose key is no longer configured (or has another secret) is
verified again, so a remembered token never outlives its ``exp`` or its key. A
refused token is never remembered: a forged one costs a full verification
each time, as before. (A signed-in hit spent about a third of its time
verifying the same token again and again; docs/performance.md.)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cachetools import LRUCache
from flask import Flask, current_app

from app.models import MAX_ID, User

JWT_ALGORITHM = "HS256"
SESSION_CLAIM = "sid"
REQUIRED_CLAIMS = ["sub", "exp", SESSION_CLAIM]
# Replicas' clocks drift apart: a token issued by one whose clock runs a few
# seconds ahead must still be valid elsewhere (its ``iat`` is then "in the
# future"), and expiry is judged with the same tolerance.
CLOCK_LEEWAY_SECONDS = 10
# Valid tokens whose claims each app remembers (about 400 bytes each).
VERIFIED_TOKENS = 4096
_VERIFIED = "tokens.verified"


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


@dataclass(frozen=True, slots=True)
class _Verified:
    """What a token was found to say, by which key, and until when (``exp``, Unix seconds)."""

    claims: Claims
    kid: str
    secret: str
    expires: int


class _VerifiedTokens:
    """The last ``size`` valid tokens' claims, by the token's text; thread-safe."""

    def __init__(self, size: int) -> None:
        self._tokens: LRUCache[str, _Verified] = LRUCache(size)
        self._lock = threading.Lock()

    def get(self, token: str) -> _Verified | None:
        with self._lock:
            return self._tokens.get(token)

    def put(self, token: str, verified: _Verified) -> None:
        with self._lock:
            self._tokens[token] = verified


def _verified_tokens(app: Flask) -> _VerifiedTokens:
    extensions = app.extensions
    verified = extensions.get(_VERIFIED)
    if verified is None:
        verified = extensions.setdefault(_VERIFIED, _VerifiedTokens(VERIFIED_TOKENS))
    return verified


def read_token(token: str, app: Flask | None = None) -> Claims:
    """The claims of a valid, unexpired token signed by a configured key of ``app``; no database.

    ``app`` defaults to the current app (a request's); cache hits answered
    before Flask's request context pass it (app/web/early_hits.py).

    Raises ``jwt.ExpiredSignatureError`` for an expired token and another
    ``jwt.InvalidTokenError`` for anything else: no or an unknown ``kid``, a bad
    signature, a missing ``sub``, ``exp`` or ``sid``, a subject that is no user id.
    A token verified before is not verified again while its key is configured
    (see the module's doc); its expiry is checked every time, as PyJWT does.
    """
    app = app if app is not None else current_app
    keys = app.config["JWT_SIGNING_KEYS"]
    remembered = _verified_tokens(app)
    known = remembered.get(token)
    if known is not None and keys.get(known.kid) == known.secret:
        if known.expires <= time.time() - CLOCK_LEEWAY_SECONDS:
            raise jwt.ExpiredSignatureError("Signature has expired")
        return known.claims
    kid = jwt.get_unverified_header(token).get("kid")
    secret = keys.get(kid) if isinstance(kid, str) else None
    if secret is None or not isinstance(kid, str):
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
    claims = Claims(_user_id(payload["sub"]), session_key)
    if "nbf" not in payload:  # never issued here; a token valid only later is not remembered
        remembered.put(token, _Verified(claims, kid, secret, int(payload["exp"])))
    return claims
