"""The user a token names, without a round trip while the change feed vouches for its row.

Every signed-in request reads its token's user (app/security.py): the row's
session key decides whether the token is still honoured, and the row is the
view's ``current_user()``. ``KnownUsers`` remembers each row read (a detached
copy, per user id) with the change feed's sequence number taken *before* the
read, and hands out a copy of it, attached to the request's session without
a statement (``Session.merge(load=False)``), while none of the stamps the row
depends on has moved: the ``users`` table's and the ``user:<id>`` key's
(app/data/change_feed.py). Any write to the row, by this process, another
worker, another replica (its notification) or anyone else (the database's
trigger), moves one of them; so do a restore and a migration. A changed
session key (signing out everywhere) thus refuses the old token at the next
request, as the database would: after the write is announced, exactly as a
cached answer is (docs/performance.md, "The response cache").

The database is read instead when:

* the feed cannot vouch now (``current()`` is ``None``: PostgreSQL's listener
  is down, or SQLite's ``data_version`` cannot be read), or there is no feed
  (``RESPONSE_CACHE=off``);
* a cache fill is pending (``change_feed.collecting()``): the fill derives
  what its answer depends on from the statements it runs, the token's
  ``SELECT … FROM users`` included;
* reads may go to read replicas (the feed tracks WAL positions): a lagging
  replica's row would be remembered as current;
* ``AUTH_USER_CACHE=off``.

A request that may write begins its transaction first (on SQLite ``BEGIN
IMMEDIATE``, app/data/database.py: the write lock, no round trip): no other
connection commits between the token's check and the request's own write, as
when the token's read took the lock. Otherwise a write checked against the
remembered row could land after a sign-out that answered first.

A remembered row is only as new as the last announcement this process
heard: another replica's change may not have arrived yet. So a token is
refused only on the stored row (a key that does not match the remembered
one is checked again, ``security.stored_user``: a token minted elsewhere
works at once), and a write takes nothing from the copy but the session key
checked above. A write to the row itself (``PUT /api/user``, signing out
everywhere) reads it again under its lock first
(``security.lock_token_session``); the keys a write purges name its writer
by id (``favorites:<user id>``; ``favorited:<name>`` only for the previous
release's answers); and a read of a user by name in the same request
(``profiles.service.get_user``) takes the stored values over the copy
(``populate_existing``), which the session would otherwise hand back.

At most :data:`CAPACITY` users are remembered per process (least recently
used first out).
"""

from __future__ import annotations

import threading
from typing import Any, cast

from cachetools import LRUCache
from flask import Flask, has_request_context, request
from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app import security
from app.data import change_feed
from app.data.database import SAFE_METHODS
from app.extensions import db
from app.models import User

CAPACITY = 4_096  # users per process; a copy of a row is about 2 KiB
WATCHED_TABLES = ("users",)


class KnownUsers:
    """Users by id, each a detached copy of its row and the sequence number it was read at."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._rows: LRUCache[int, tuple[User, int, tuple[int, ...]]] = LRUCache(capacity)
        self._lock = threading.Lock()

    def load(self, user_id: int) -> User | None:
        """User ``user_id`` attached to the request's session, or ``None`` if there is none.

        From memory while the change feed vouches that its row is unchanged
        since it was read (no statement); else read (``Session.get``) and,
        when the feed vouched before the read, remembered.
        """
        feed = change_feed.current_feed()
        if feed is None or feed.track_positions or change_feed.collecting():
            return db.session.get(User, user_id)
        if has_request_context() and request.method not in SAFE_METHODS:
            db.session.connection()  # SQLite: the write lock before the feed vouches
        now = feed.current()
        if now is None:
            return db.session.get(User, user_id)
        with self._lock:
            known = self._rows.get(user_id)
        if known is not None:
            copy, read_at, watches = known
            if feed.fresh(watches, read_at):
                return db.session.merge(copy, load=False)
        user = db.session.get(User, user_id)
        if user is not None:
            watches = feed.stamps.indexes((f"user:{user_id}",), WATCHED_TABLES)
            with self._lock:
                self._rows[user_id] = (_detached_copy(user), now, watches)
        return user


def _detached_copy(user: User) -> User:
    """A detached ``User`` holding the column values ``user`` has loaded, as committed state.

    A copy, so that the request changing its own ``user`` (a profile edit,
    signing out) never changes what is remembered; never attached to a session.
    """
    loaded = inspect(user).dict
    mapper = inspect(User)
    copy: Any = mapper.class_manager.new_instance()
    for column in mapper.column_attrs:
        if column.key in loaded:
            set_committed_value(copy, column.key, loaded[column.key])
    make_transient_to_detached(copy)
    return cast(User, copy)


def init_app(app: Flask) -> None:
    """Token lookups through a :class:`KnownUsers` (``AUTH_USER_CACHE``, on by default)."""
    if app.config.get("AUTH_USER_CACHE", True):
        security.use_user_loader(app, KnownUsers().load)
