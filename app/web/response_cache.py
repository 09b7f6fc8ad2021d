"""Hot reads answered from memory, never stale to the client who just wrote.

The article list (with its filters), the feed, one article, its comments, the
tags and profiles are kept per process as the bytes of their ``200`` answers,
keyed by who asks (the token's user id, ``0`` for anonymous) and the path
with its query string. A hit is answered in ``before_request``: no view, no
argument parsing, no serialization, no database.

Correctness rests on the change feed's *generations* (app/data/change_feed.py):
one number per table, moved after every committed write to it by any process
or replica. Each hot read names the tables its answer is read from
(``DEPENDS_ON``). A miss notes their generations *before* the view reads the
database and stores its answer only if they are still the same afterwards,
so an answer computed from data a concurrent write replaced is never kept; a
hit is served only while they are unchanged. A comment therefore leaves the
article lists cached, and a favorite leaves comments, tags and profiles
cached. While the feed cannot vouch for the generations (the listener lost
its connection) the cache is off: every request goes to the database.

Answers that depend on the viewer (``favorited``, ``following``) are keyed by
viewer. The token is checked (signature, expiry) on every hit; the user's
existence is not re-read: the entry was computed for that user, and any
change to the users table would have moved the generation.

``X-Cache`` tells ``hit``, ``miss`` or ``off`` on the hot reads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cachetools import LRUCache
from flask import Flask, Response, current_app, g, request

from app.data import change_feed
from app.extensions import db
from app.security import claimed_viewer_id

EXTENSION = "response_cache"
# The tables each hot read's answer is read from (the viewer's row included).
# An article's answer is everything about articles but their comments.
_ARTICLE_READ = (
    "article_tags",
    "articles",
    "counters",
    "favorites",
    "follows",
    "tags",
    "users",
)
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "Articles.Articles": _ARTICLE_READ,
    "Articles.Feed": _ARTICLE_READ,
    "Articles.Article": _ARTICLE_READ,
    "Comments.Comments": ("articles", "comments", "follows", "users"),
    "Tags.Tags": ("tags",),
    "Profile.Profile": ("follows", "users"),
}
HOT_READS = frozenset(DEPENDS_ON)
VIEWER_BLIND = frozenset({"Tags.Tags"})  # the same answer for everyone, token or not
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
ENTRY_OVERHEAD = 256  # bytes beyond the body: key, headers, bookkeeping

Key = tuple[int, str, bytes]
Generations = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    etag: str
    content_type: str
    read_at: Generations = ()

    @property
    def size(self) -> int:
        return len(self.body) + ENTRY_OVERHEAD


def _size(entry: Entry) -> int:
    return entry.size


class _Entries(LRUCache[Key, Entry]):
    """An LRU that counts what it drops to make room (app/web/metrics.py reads it)."""

    evictions = 0

    def popitem(self) -> tuple[Key, Entry]:
        item = super().popitem()
        self.evictions += 1
        return item


class ResponseCache:
    """Answers with the generations they were read at; least recently used dropped past
    ``max_bytes``."""

    def __init__(self, feed: change_feed.ChangeFeed, max_bytes: int) -> None:
        self.feed = feed
        self._entries = _Entries(max_bytes, getsizeof=_size)
        self._lock = threading.Lock()

    def get(self, key: Key, now: Generations) -> Entry | None:
        """The entry, if the tables it was read from are still at ``now``'s generations."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.read_at != now:
                del self._entries[key]
                return None
            return entry

    def put(self, key: Key, tables: tuple[str, ...], entry: Entry) -> bool:
        """Store what was read at ``entry.read_at``, unless a write to ``tables`` came since."""
        if self.feed.current(tables) != entry.read_at or entry.size > self._entries.maxsize:
            return False
        with self._lock:
            self._entries[key] = entry
        return True

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The entries' bytes, as counted against ``max_bytes``."""
        return int(self._entries.currsize)

    @property
    def evictions(self) -> int:
        """Entries dropped so far to make room for others."""
        return self._entries.evictions


def _cache() -> ResponseCache | None:
    return current_app.extensions.get(EXTENSION)


def _serve_from_cache() -> Response | None:
    cache = _cache()
    if cache is None or request.method != "GET" or request.endpoint not in HOT_READS:
        return None
    viewer = 0 if request.endpoint in VIEWER_BLIND else claimed_viewer_id()
    if viewer is None:  # a token the view will refuse: let it
        return None
    tables = DEPENDS_ON[request.endpoint]
    now = cache.feed.current(tables)
    if now is None:
        g.response_cache = "off"
        return None
    key = (viewer, request.path, request.query_string)
    entry = cache.get(key, now)
    if entry is None:
        g.response_cache = "miss"
        g.response_cache_fill = (key, tables, now)
        return None
    g.response_cache = "hit"
    g.cached_viewer_id = viewer or None  # for the request log: no view ran to set the user
    response = current_app.response_class(entry.body, status=200, content_type=entry.content_type)
    response.headers["ETag"] = entry.etag
    return response


def _keep(response: Response) -> Response:
    state = g.pop("response_cache", None)
    if state is None:
        return response
    response.headers["X-Cache"] = state
    fill = g.pop("response_cache_fill", None)
    cache = _cache()
    if (
        fill is None
        or cache is None
        or response.status_code != 200
        or response.is_streamed
        or response.direct_passthrough
    ):
        return response
    if "ETag" not in response.headers:
        response.add_etag()
    etag = response.headers["ETag"]
    key, tables, read_at = fill
    cache.put(key, tables, Entry(response.get_data(), etag, response.content_type or "", read_at))
    return response


def init_app(app: Flask) -> None:
    """Serve hot reads from the cache when ``RESPONSE_CACHE`` is on.

    Register after app/web/http_validators.py: Flask runs ``after_request``
    functions last-registered first, and the answer must be stored before a
    ``304`` empties it.
    """
    if not app.config.get("RESPONSE_CACHE", True):
        return
    with app.app_context():
        feed = change_feed.feed_for(
            db.engine,
            reconnect_seconds=float(
                app.config.get("RESPONSE_CACHE_RECONNECT_SECONDS", change_feed.RECONNECT_SECONDS)
            ),
        )
    app.extensions[change_feed.EXTENSION] = feed
    app.extensions[EXTENSION] = ResponseCache(
        feed, int(app.config.get("RESPONSE_CACHE_MAX_BYTES", DEFAULT_MAX_BYTES))
    )
    app.before_request(_serve_from_cache)
    app.after_request(_keep)


def close(app: Flask) -> None:
    """Stop the change feed's listener (tests; a process that exits needs nothing)."""
    change_feed.close(app.extensions.get(change_feed.EXTENSION))
