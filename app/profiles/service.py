"""Profiles and follows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, Row, and_, bindparam, delete, exists, false, select

from app.data import change_feed
from app.data.unit_of_work import commit
from app.data.upserts import insert_ignoring_conflicts
from app.errors import abort
from app.extensions import db
from app.models import Follow, User
from app.text import identity_key


def profile_payload(person: User | Row[Any], following: object) -> dict[str, Any]:
    """The profile shape, also every article's and comment's author.

    ``person`` is a user or a row with its ``username``, ``bio`` and ``image`` columns.
    """
    return {
        "username": person.username,
        "bio": person.bio,
        "image": person.image,
        "following": bool(following),
    }


def stored_profile(user_id: Any) -> list[ColumnElement[Any]]:
    """SQL: user ``user_id``'s ``username``, ``bio`` and ``image`` as stored, labelled so.

    For a write's ``RETURNING`` or its last ``SELECT``: its answer then shows
    the author as the database has them, as the ``GET`` that follows does, and
    not as this process remembers the token's user (app/data/known_users.py),
    which a profile change made through another instance moves only once its
    notice arrives. ``user_id`` is a bound parameter or a column.
    """
    return [
        select(column).where(User.id == user_id).scalar_subquery().label(column.key)
        for column in (User.username, User.bio, User.image)
    ]


def is_following(follower_id: Any, author_id: Any) -> ColumnElement[bool]:
    """SQL: does ``follower_id`` follow ``author_id``?

    ``follower_id`` is an id or a bound parameter; ``None`` (nobody signed in) is false.
    """
    if follower_id is None:
        return false()
    return exists().where(and_(Follow.follower_id == follower_id, Follow.followed_id == author_id))


# The signed-in viewer's id in a statement built once; bound by :func:`viewer_parameters`.
VIEWER = bindparam("viewer_id", type_=Integer)


def viewer_parameters(viewer: User | None) -> dict[str, Any]:
    """:data:`VIEWER` bound to ``viewer``'s id; nothing when no one is signed in."""
    return {} if viewer is None else {"viewer_id": viewer.id}


def viewer_id(viewer: User | None) -> int | None:
    return None if viewer is None else viewer.id


def get_user(username: str) -> User:
    """The user ``username`` names as people read it (``Kay`` is ``kay``), as stored; else 404.

    ``populate_existing``: when it is the request's own user, the session may
    hold a remembered copy (app/data/known_users.py), which would otherwise be
    returned, stale, in place of the row just read.
    """
    user = db.session.scalar(
        select(User)
        .where(User.username_key == identity_key(username))
        .execution_options(populate_existing=True)
    )
    if user is None:
        abort(404, "profile", "not found")
    return user


def get_profile(username: str, viewer: User | None) -> dict[str, Any]:
    row = db.session.execute(
        select(User, is_following(viewer_id(viewer), User.id))
        .where(User.username_key == identity_key(username))
        .execution_options(populate_existing=True)  # as in get_user
    ).first()
    if row is None:
        abort(404, "profile", "not found")
    user, following = row
    change_feed.depends_on("usernames", f"user:{user.id}")
    if viewer is not None:
        change_feed.depends_on(f"follows:{viewer.id}")
    return profile_payload(user, following)


def follow(username: str, follower: User) -> dict[str, Any]:
    """Follow ``username``; following twice is not an error."""
    followed = get_user(username)
    if followed.id == follower.id:
        abort(422, "profile", "cannot follow yourself")
    insert_ignoring_conflicts(Follow, [{"follower_id": follower.id, "followed_id": followed.id}])
    change_feed.purge(f"follows:{follower.id}")
    return _answer_then_commit(followed, following=True)


def unfollow(username: str, follower: User) -> dict[str, Any]:
    """Stop following ``username``; unfollowing twice is not an error."""
    followed = get_user(username)
    db.session.execute(
        delete(Follow).where(Follow.follower_id == follower.id, Follow.followed_id == followed.id)
    )
    change_feed.purge(f"follows:{follower.id}")
    return _answer_then_commit(followed, following=False)


def _answer_then_commit(followed: User, *, following: bool) -> dict[str, Any]:
    """The profile as the write leaves it, taken before the commit.

    The commit expires the user it read: its columns read after it would be
    read again, a round trip more, and a 404 for a write that succeeded if
    the user was deleted meanwhile.
    """
    payload = profile_payload(followed, following)
    commit()
    return payload
