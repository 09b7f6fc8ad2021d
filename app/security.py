"""Password hashing and the ``auth_required`` / ``auth_optional`` decorators.

Clients send ``Authorization: Token <jwt>`` (``Bearer <jwt>`` is accepted too;
the tokens themselves are app/tokens.py). A token is accepted when it is valid
and its session key is the user's current one: a password change or "sign out
everywhere" gives the account a new key and ends every token issued before.
The decorators also add the ``Token`` security requirement and the 401
response to the operation's OpenAPI entry.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import cache, wraps
from typing import Any, TypeVar, cast

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY
from flask import Flask, current_app, g, request
from flask_smorest import Blueprint
from sqlalchemy import select

from app.errors import abort
from app.extensions import db
from app.models import User
from app.text import nfkc
from app.tokens import ANONYMOUS, Claims, read_token

F = TypeVar("F", bound=Callable[..., Any])
TOKEN_SCHEMES = ("token", "bearer")
_USER_LOADER = "security.user_loader"  # app.extensions: see use_user_loader


@cache
def _hasher(profile: str) -> PasswordHasher:
    if profile == "testing":
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def password_hasher() -> PasswordHasher:
    return _hasher(current_app.config["PASSWORD_HASH_PROFILE"])


def hash_password(password: str) -> str:
    """Hash the NFKC form with argon2id.

    One typed password has several Unicode spellings (``é`` precomposed or as
    ``e`` plus an accent, depending on the keyboard and system); NIST SP
    800-63B (5.1.1.2) asks verifiers to normalise with NFKC before hashing.
    """
    return password_hasher().hash(nfkc(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check ``password``; spends the same effort when there is no user to compare.

    Hashes made before passwords were normalised hold the form as typed, so
    that form is tried too when it differs.
    """
    hasher = password_hasher()
    if password_hash is None:
        hasher.hash(password)  # no timing difference between unknown and wrong
        return False
    for candidate in dict.fromkeys((nfkc(password), password)):
        try:
            if hasher.verify(password_hash, candidate):
                return True
        except (VerificationError, InvalidHashError):
            continue
    return False


def _token_from_header() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in TOKEN_SCHEMES or not token.strip():
        abort(401, "token", "must be sent as 'Authorization: Token <jwt>'")
    return token.strip()


def viewer_claimed_by(authorization: str | None, app: Flask | None = None) -> Claims | None:
    """Who an ``Authorization`` header's value says is asking, checked without the database.

    ``ANONYMOUS`` when no token is sent (``None``); the token's user id and
    session key when it is valid, unexpired and signed by a key of ``app``
    (app/tokens.py; ``app`` defaults to the current app); ``None`` for
    anything the views would answer 401 to. Only a view knows the user still
    exists and still holds that session key; the response cache keys its
    answers by both, so a revoked token never matches an answer computed for
    a valid one (app/web/response_cache.py).
    """
    if authorization is None:
        return ANONYMOUS
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() not in TOKEN_SCHEMES or not token.strip():
        return None
    try:
        return read_token(token.strip(), app)
    except jwt.InvalidTokenError:
        return None


def _is_session_key(stored: str | None, claimed: str) -> bool:
    """Whether ``claimed`` is the ``stored`` session key (constant time); never a NULL key."""
    return stored is not None and hmac.compare_digest(stored.encode(), claimed.encode())


def _user_from_token(token: str) -> User:
    try:
        claims = read_token(token)
    except jwt.ExpiredSignatureError:
        abort(401, "token", "has expired")
    except jwt.InvalidTokenError:
        abort(401, "token", "is invalid")
    user = _load_user(claims.user_id)
    if user is not None and not _is_session_key(user.session_key, claims.session_key):
        # A remembered row may predate a key set on another replica whose notice
        # has not arrived (a token its password change or sign-in minted): a
        # refusal is decided on the stored row, never on a remembered one.
        user = stored_user(user.id)
    if user is None or not _is_session_key(user.session_key, claims.session_key):
        abort(401, "token", "is invalid")
    g.token_session_key = claims.session_key
    return user


def stored_user(user_id: int, *, lock: bool = False) -> User | None:
    """User ``user_id`` as the database holds it now, in the request's session.

    ``populate_existing``: a copy already in the session (a remembered row,
    app/data/known_users.py) takes the stored values instead of shadowing them.
    ``lock``: ``FOR NO KEY UPDATE`` on PostgreSQL, until the transaction ends.
    """
    statement = select(User).where(User.id == user_id)
    if lock:
        statement = statement.with_for_update(key_share=True)
    return db.session.scalar(statement.execution_options(populate_existing=True))


def lock_token_session() -> None:
    """Lock the current user's row for this transaction; 401 if the token's key is no longer its.

    For a write that sets the account's session key or answers a new token
    (PUT /api/user, signing out everywhere): the key read when the token was
    checked may be older than the write (read from memory, app/data/known_users.py;
    in an earlier transaction, a password change ends its own before hashing;
    or under READ COMMITTED, just before a sign-out committed). Read again
    ``FOR NO KEY UPDATE`` on PostgreSQL (a sign-out under way commits first and
    is seen, or waits for this transaction); on SQLite the request already holds
    the write lock (``BEGIN IMMEDIATE``). So a revoked token never changes the
    password nor comes back with a token signed under the sign-out's new key.

    The whole row is read again into the current user (:func:`stored_user`):
    a remembered copy may predate another replica's change that has not been
    announced here yet, and a field set back to the copy's value would then be
    no change to the session, so no ``UPDATE``: a 200 that wrote nothing.
    Call it before setting any field.
    """
    claimed = g.get("token_session_key")
    user = g.get("current_user")
    if claimed is None or user is None:
        return
    stored = stored_user(user.id, lock=True)
    if stored is None or not _is_session_key(stored.session_key, claimed):
        abort(401, "token", "is invalid")


def use_user_loader(app: Flask, loader: Callable[[int], User | None]) -> None:
    """Read tokens' users through ``loader`` (user id → the user in the request's session, or None).

    Installed by a layer above this one (app/data/known_users.py), as
    Flask-Login's ``user_loader`` is; without one, ``Session.get``.
    """
    app.extensions[_USER_LOADER] = loader


def _load_user(user_id: int) -> User | None:
    loader = current_app.extensions.get(_USER_LOADER)
    if loader is None:
        return db.session.get(User, user_id)
    return cast(User | None, loader(user_id))


def current_user() -> User:
    """The authenticated user of an ``auth_required`` view."""
    return cast(User, g.current_user)


def viewer() -> User | None:
    """The authenticated user, if any, of an ``auth_optional`` view."""
    return cast(User | None, g.get("current_user"))


def _authenticating(required: bool) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _token_from_header()
            if token is None:
                if required:
                    abort(401, "token", "is missing")
                g.current_user = None
            else:
                g.current_user = _user_from_token(token)
            return view(*args, **kwargs)

        security: list[dict[str, list[str]]] = [{"Token": []}]
        if not required:
            security.append({})
        documented = Blueprint.doc(
            security=security,
            responses={"401": "UNAUTHORIZED"},
        )
        return cast(F, documented(wrapper))

    return decorator


auth_required = _authenticating(required=True)
auth_optional = _authenticating(required=False)
