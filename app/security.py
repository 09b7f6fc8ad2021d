"""Password hashing, JWTs and the ``auth_required`` / ``auth_optional`` decorators.

Clients send ``Authorization: Token <jwt>`` (``Bearer <jwt>`` is accepted too).
The decorators also add the ``Token`` security requirement and the 401
response to the operation's OpenAPI entry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache, wraps
from typing import Any, TypeVar, cast

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY
from flask import current_app, g, request
from flask_smorest import Blueprint

from app.errors import abort
from app.extensions import db
from app.models import MAX_ID, User
from app.text import nfkc

F = TypeVar("F", bound=Callable[..., Any])
JWT_ALGORITHM = "HS256"
TOKEN_SCHEMES = ("token", "bearer")
# Replicas' clocks drift apart: a token issued by one whose clock runs a few
# seconds ahead must still be valid elsewhere (its ``iat`` is then "in the
# future"), and expiry is judged with the same tolerance.
CLOCK_LEEWAY_SECONDS = 10


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


def create_token(user: User) -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": str(user.id),
        "iat": now,
        "exp": now + timedelta(seconds=current_app.config["JWT_EXPIRES_SECONDS"]),
    }
    return jwt.encode(payload, current_app.config["SECRET_KEY"], algorithm=JWT_ALGORITHM)


def _token_from_header() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in TOKEN_SCHEMES or not token.strip():
        abort(401, "token", "must be sent as 'Authorization: Token <jwt>'")
    return token.strip()


def _user_id(subject: Any) -> int | None:
    """The user id a token's ``sub`` names: ASCII digits within the id range, else ``None``."""
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()):
        return None
    user_id = int(subject)
    return user_id if 0 < user_id <= MAX_ID else None


def _claimed_user_id(token: str) -> int | None:
    """The user id a valid, unexpired token names (raises otherwise); no database.

    ``None`` when the token is valid but its subject can name no user.
    """
    payload = jwt.decode(
        token,
        current_app.config["SECRET_KEY"],
        algorithms=[JWT_ALGORITHM],
        options={"require": ["sub", "exp"]},
        leeway=CLOCK_LEEWAY_SECONDS,
    )
    return _user_id(payload["sub"])


def claimed_viewer_id() -> int | None:
    """Who the request's token says is asking, checked without the database.

    ``0`` when no token is sent, the user id when the token is valid and
    unexpired, ``None`` for anything the views would answer 401 to. Only a
    view knows the user still exists; the response cache relies on this for
    answers it computed for that user earlier (app/web/response_cache.py).
    """
    header = request.headers.get("Authorization")
    if header is None:
        return 0
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in TOKEN_SCHEMES or not token.strip():
        return None
    try:
        return _claimed_user_id(token.strip())
    except jwt.InvalidTokenError:
        return None


def _user_from_token(token: str) -> User:
    try:
        user_id = _claimed_user_id(token)
    except jwt.ExpiredSignatureError:
        abort(401, "token", "has expired")
    except jwt.InvalidTokenError:
        abort(401, "token", "is invalid")
    user = db.session.get(User, user_id) if user_id is not None else None
    if user is None:
        abort(401, "token", "is invalid")
    return user


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
