"""Users: registration, login, profile updates and signing out everywhere, one transaction each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.data.unit_of_work import commit, end_reads
from app.errors import ApiError, abort
from app.extensions import db
from app.models import User, new_session_key
from app.security import hash_password, lock_token_session, verify_password
from app.text import identity_key, is_blank, normalize_email
from app.tokens import create_token
from app.web import conditional_writes

TAKEN = "has already been taken"


def user_payload(user: User) -> dict[str, Any]:
    """The authenticated user as the contract shows it, with a fresh token (its current key)."""
    return {
        "email": user.email,
        "token": create_token(user),
        "username": user.username,
        "bio": user.bio,
        "image": user.image,
    }


def _ensure_available(*, username: str | None, email: str | None, exclude_id: int | None) -> None:
    """422 naming every field whose value another user already has, as people read it.

    Compared through the identity keys: ``Kay`` is taken when ``kay`` exists.
    """
    taken: dict[str, list[str]] = {}
    for field, column, value in (
        ("username", User.username_key, username),
        ("email", User.email_key, email),
    ):
        if value is None:
            continue
        stmt = select(User.id).where(column == identity_key(value))
        if exclude_id is not None:
            stmt = stmt.where(User.id != exclude_id)
        if db.session.scalar(stmt.limit(1)) is not None:
            taken[field] = [TAKEN]
    if taken:
        raise ApiError(422, taken)


def register(username: str, email: str, password: str) -> User:
    email = normalize_email(email)
    password_hash = hash_password(password)  # before the first statement (see end_reads)
    _ensure_available(username=username, email=email, exclude_id=None)
    user = User(username=username, email=email, password_hash=password_hash)
    db.session.add(user)
    commit(lambda: _ensure_available(username=username, email=email, exclude_id=None))
    return user


def authenticate(email: str, password: str) -> User:
    user = db.session.scalar(select(User).where(User.email_key == identity_key(email.strip())))
    password_hash = user.password_hash if user else None
    end_reads()  # argon2 takes ~0.5 s: not while holding SQLite's write lock
    if not verify_password(password_hash, password) or user is None:
        abort(401, "email or password", "is invalid")
    if user.session_key is None:  # a row the migration's backfill has not reached yet
        user.session_key = new_session_key()
        commit()
    return user


def update(user: User, changes: dict[str, Any]) -> User:
    """Apply the fields sent: an empty password keeps it, a blank bio or image clears it.

    Blank as ``app.text.is_blank`` says: nothing a reader sees.

    A new password also gives the account a new session key: every token
    issued before ends, and ``user_payload`` then signs one under the new key.

    The current user's answer carries a token minted for it, so no tag read
    earlier names its current representation: ``If-Match: *`` holds, a listed
    tag is a 412 (app/web/conditional_writes.py).
    """
    conditional_writes.require(lambda: None)
    if "email" in changes:
        changes["email"] = normalize_email(changes["email"])
    password = changes.pop("password", "")  # "" (a blank settings field) keeps it
    password_hash = None
    if password:
        end_reads()  # argon2 takes ~0.5 s: not while holding SQLite's write lock
        password_hash = hash_password(password)
    _ensure_available(
        username=changes.get("username"), email=changes.get("email"), exclude_id=user.id
    )
    lock_token_session()  # a sign-out made since the token's check (or the hash) wins
    if password_hash is not None:
        user.password_hash = password_hash
        user.session_key = new_session_key()
    for field in ("image", "bio"):
        if field in changes and changes[field] is not None and is_blank(changes[field]):
            changes[field] = None  # an emptied field is cleared
    for field, value in changes.items():
        setattr(user, field, value)
    commit(
        lambda: _ensure_available(
            username=changes.get("username"), email=changes.get("email"), exclude_id=user.id
        )
    )
    return user


def sign_out_everywhere(user: User) -> None:
    """Give ``user`` a new session key: every token issued so far answers 401 from now on."""
    lock_token_session()  # a token another sign-out ended since its check ends nothing more
    user.session_key = new_session_key()
    commit()
