"""Hot reads answered from memory, never stale to the client who just wrote.

The article list (with its filters), the feed, one article, its comments, the
tags and profiles are kept per process as the bytes of their ``200`` answers,
keyed by who asks (the token's user id and session key, ``0`` and ``""`` for
anonymous) and the path with its query string. A hit is answered in
``before_request``: no view, no argument parsing, no serialization, no database.

Correctness rests on the change feed's *stamps* (app/data/change_feed.py):
a sequence number, and stamps it writes when committed writes move a
surrogate key (``article:<id>``, ``list:tag:<name>``, … : the read services
declare them with ``change_feed.depends_on``, the write services with
``change_feed.purge``) or a table, in any process or replica. A miss notes the
sequence number *before* the view reads the database; the statements the view
runs name the tables it read. The answer is stored only if every table it read
is covered by a key it declared (``change_feed.COVERS``; else it is logged once
per endpoint and not kept, so a new join never serves stale answers), and only
if none of the stamps of its keys and tables moved past that number since; a
hit is served only while none has. So a comment leaves the article lists
cached, a favorite moves that article and the lists showing it, and a follow
moves only the follower's answers. While the feed cannot vouch for the stamps
(the listener lost its connection) the cache is off: every request goes to
the database.

Answers that depend on the viewer (``favorited``, ``following``) are keyed by
viewer. The token is checked (signature, key id, expiry) on every hit; the
user's existence and session key are not re-read: the entry was computed for
a token naming that user *and that session key*, after the view found them
current. A token whose key was replaced since (a password change, "sign out
everywhere", an account restored away and its id reused) names another key,
so it misses and the view answers 401; and the new key's write to the users
table moved that table's stamp anyway.

The key's query is the canonical form of what the view reads: the query
arguments its schema declares (flask-smorest ``@blp.arguments(...,
location="query")``), in their order of the URL but grouped by name, names
sorted. Arguments no view reads are accepted and ignored by the API (the
schemas' ``unknown = EXCLUDE``), so ``/api/articles?junk=1`` and
``/api/articles`` are one entry. A hot read must therefore read its query
through such a schema, never from ``request.args`` directly.

The bound, ``max_bytes`` per process, counts what an entry costs in memory:
``sys.getsizeof`` of the body, headers, stamps watched, the entry and its key,
plus :data:`BOOKKEEPING` for the LRU's own dictionaries. Admission is a
segmented LRU (Karedla, Love and Wherry, "Caching strategies to improve disk
system performance", IEEE Computer 27(3), 1994): a new answer enters the
*probation* segment (:data:`PROBATION_SHARE` of the bytes); a second hit
promotes it to the *protected* segment, whose least recently used entries
fall back to probation. A flood of URLs each read once (``?offset=N`` for
every N) only churns probation: the answers read again and again stay.

A local miss first asks the second level, when there is one: the answers the
other workers of this master computed, checked as a local entry is
(app/web/shared_answers.py, in Redis); a fill kept here is offered to it.

One fill at a time per key and process (app/web/single_flight.py): a miss
whose key another thread of the process is already filling waits for that
fill (at most :data:`FILL_WAIT_SECONDS`), then looks the key up again; found,
it is a hit (why that is as correct as any hit: :func:`_after_the_fill`);
not stored or still running, the request computes the answer itself.

``X-Cache`` tells ``hit``, ``miss`` or ``off`` on the hot reads.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from cachetools import LRUCache
from flask import Flask, Request, Response, current_app, g, request

from app.data import change_feed, replicas
from app.extensions import db
from app.security import viewer_claimed_by
from app.tokens import ANONYMOUS, Claims
from app.web.single_flight import Flights

log = logging.getLogger(__name__)

EXTENSION = "response_cache"
HOT_READS = frozenset(
    {
        "Articles.Articles",
        "Articles.Feed",
        "Articles.Article",
        "Comments.Comments",
        "Tags.Tags",
        "Profile.Profile",
    }
)
VIEWER_BLIND = frozenset({"Tags.Tags"})  # the same answer for everyone, token or not
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# Bytes per entry for the LRU's three dictionaries (values, sizes, order):
# ~134 measured with tracemalloc on CPython 3.11-3.13, twice that for the slack
# of a dictionary that has just grown.
BOOKKEEPING = 256
PROBATION_SHARE = 0.2  # of max_bytes, for answers read once so far
# How long a miss waits for another thread's fill of its key before computing
# the answer itself. A cold read costs a few ms of CPU, tens of ms of wall time
# when the worker's other threads and PostgreSQL share the two cores: 0.1 s
# lets such a fill land, and bounds what a fill stuck on a lock or a slow
# database costs its followers (then each computes, as without the wait). A
# follower holds one of the worker's threads (4) meanwhile: at most that long.
FILL_WAIT_SECONDS = 0.1

Key = tuple[int, str, str, str]  # user id (0: anonymous), session key, path, canonical query


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    etag: str
    content_type: str
    read_at: int = 0  # the change feed's sequence number before the view read
    watches: tuple[int, ...] = ()  # the stamps it depends on (change_feed.Stamps.indexes)


def footprint(key: Key, entry: Entry) -> int:
    """The bytes ``entry`` stored under ``key`` holds: its objects' sizes plus bookkeeping."""
    return (
        sys.getsizeof(key)
        + sum(sys.getsizeof(part) for part in key)
        + sys.getsizeof(entry)
        + sys.getsizeof(entry.body)
        + sys.getsizeof(entry.etag)
        + sys.getsizeof(entry.content_type)
        + sys.getsizeof(entry.read_at)
        + sys.getsizeof(entry.watches)
        + sum(sys.getsizeof(index) for index in entry.watches)
        + BOOKKEEPING
    )


@dataclass(frozen=True, slots=True)
class _Stored:
    entry: Entry
    size: int


def _size(stored: _Stored) -> int:
    return stored.size


class _Probation(LRUCache[Key, _Stored]):
    """The probation segment, which counts what it drops to make room (app/web/metrics.py)."""

    evictions = 0

    def popitem(self) -> tuple[Key, _Stored]:
        item = super().popitem()
        self.evictions += 1
        return item


class _Protected(LRUCache[Key, _Stored]):
    """The protected segment: what it evicts goes back to probation, not away."""

    def __init__(self, maxsize: int, probation: _Probation) -> None:
        super().__init__(maxsize, getsizeof=_size)
        self.probation = probation

    def popitem(self) -> tuple[Key, _Stored]:
        key, stored = super().popitem()
        self.probation[key] = stored
        return key, stored


class SecondLevel(Protocol):
    """Answers shared with the other workers of this master (app/web/shared_answers.py)."""

    def fetch(self, key: Key) -> Entry | None:
        """Another worker's answer, current and now kept here too; ``None``: none usable."""

    def store(self, key: Key, entry: Entry) -> None:
        """Offer an answer just kept here to the other workers (best effort)."""


class ResponseCache:
    """Answers with the sequence number they were read at, in at most ``max_bytes``.

    A segmented LRU: new answers in probation (``PROBATION_SHARE`` of the
    bytes), promoted to the protected segment when hit. An answer larger than
    probation is never kept.
    """

    second_level: SecondLevel | None = None

    def __init__(self, feed: change_feed.ChangeFeed, max_bytes: int) -> None:
        self.feed = feed
        self.max_bytes = max_bytes
        probation_bytes = int(max_bytes * PROBATION_SHARE)
        self._probation = _Probation(probation_bytes, getsizeof=_size)
        self._protected = _Protected(max_bytes - probation_bytes, self._probation)
        self._lock = threading.Lock()
        self.flights: Flights[Key] = Flights()

    def get(self, key: Key) -> Entry | None:
        """The entry, if none of the stamps it watches moved since it was read.

        A hit in probation promotes the entry to the protected segment.
        """
        with self._lock:
            stored = self._protected.get(key)
            if stored is not None:
                if not self._fresh(stored.entry):
                    return None  # kept where it is until put() replaces it
                return stored.entry
            stored = self._probation.get(key)
            if stored is None:
                return None
            del self._probation[key]
            if not self._fresh(stored.entry):
                return None
            if stored.size <= self._protected.maxsize:
                self._protected[key] = stored
            return stored.entry

    def _fresh(self, entry: Entry) -> bool:
        return self.feed.fresh(entry.watches, entry.read_at)

    def put(self, key: Key, entry: Entry) -> bool:
        """Store what was read at ``entry.read_at``, unless what it watches moved since.

        An answer already promoted is replaced in place; a new one enters probation.
        """
        if not self._fresh(entry):
            return False
        stored = _Stored(entry, footprint(key, entry))
        with self._lock:
            if key in self._protected:
                del self._protected[key]
                if stored.size <= self._protected.maxsize:
                    self._protected[key] = stored
                    return True
                return False
            if stored.size > self._probation.maxsize:
                return False
            self._probation[key] = stored
        return True

    @property
    def size_bytes(self) -> int:
        """The entries' bytes (both segments), as counted against ``max_bytes``."""
        return int(self._probation.currsize + self._protected.currsize)

    @property
    def evictions(self) -> int:
        """Entries dropped so far to make room for others (demotions to probation are not)."""
        return self._probation.evictions

    def __len__(self) -> int:
        return len(self._probation) + len(self._protected)


def _query_names(view: Any) -> frozenset[str]:
    """The query arguments a view reads: those its flask-smorest schemas declare for GET."""
    handler = getattr(getattr(view, "view_class", None), "get", view)
    parameters = getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    names: set[str] = set()
    for parameter in parameters:
        if parameter.get("in") == "query":
            schema = parameter["schema"]
            schema = schema() if isinstance(schema, type) else schema
            names.update(field.data_key or name for name, field in schema.fields.items())
    return frozenset(names)


_QUERY_NAMES = "response_cache.query_names"


def viewer_asking(app: Flask, endpoint: str, asked: Request) -> Claims | None:
    """Whose answer request ``asked`` (routed to ``endpoint``) wants, without the database.

    ``ANONYMOUS`` for a read that answers everyone alike (:data:`VIEWER_BLIND`),
    else what its token claims (``security.viewer_claimed_by``); ``None``: a
    token the view will refuse. Both the hooks here and the early hits
    (app/web/early_hits.py) ask this, so they look up the same entries.
    """
    if endpoint in VIEWER_BLIND:
        return ANONYMOUS
    return viewer_claimed_by(asked.environ.get("HTTP_AUTHORIZATION"), app)


def key_of(app: Flask, endpoint: str, asked: Request, viewer: Claims) -> Key:
    """The key of request ``asked``'s answer for ``viewer``: who, path, :func:`canonical_query`."""
    query = canonical_query(app, endpoint, asked)
    return (viewer.user_id, viewer.session_key, asked.path, query)


def canonical_query(app: Flask, endpoint: str, asked: Request) -> str:
    """Request ``asked``'s query as the view at ``endpoint`` reads it (see the module's doc)."""
    known: dict[str, frozenset[str]] = app.extensions[_QUERY_NAMES]
    names = known.get(endpoint)
    if names is None:
        names = known[endpoint] = _query_names(app.view_functions[endpoint])
    if not names or not asked.environ.get("QUERY_STRING"):
        return ""
    pairs = [(name, value) for name, value in asked.args.items(multi=True) if name in names]
    return urlencode(sorted(pairs, key=lambda pair: pair[0]))


def _cache() -> ResponseCache | None:
    return current_app.extensions.get(EXTENSION)


def _serve_from_cache() -> Response | None:
    cache = _cache()
    if cache is None or request.method != "GET":
        return None
    endpoint = request.endpoint
    if endpoint not in HOT_READS:
        return None
    viewer = viewer_asking(current_app, endpoint, request)
    if viewer is None:  # a token the view will refuse: let it
        return None
    now = cache.feed.current()
    if now is None:
        g.response_cache = "off"
        return None
    key = key_of(current_app, endpoint, request, viewer)
    if not replicas.feed_has_heard(cache.feed):  # the client's write not heard yet
        g.response_cache = "miss"
        return None
    entry = cache.get(key)
    if entry is None and cache.second_level is not None:
        entry = cache.second_level.fetch(key)
    flight: threading.Event | None = None
    leading = False
    if entry is None:
        flight, leading = cache.flights.join(key)
        if not leading:
            entry, now = _after_the_fill(cache, key, flight)
            if now is None:
                g.response_cache = "off"
                return None
            if entry is None:  # lead the next fill if none is under way; never wait twice
                flight, leading = cache.flights.join(key)
    if entry is None:
        g.response_cache = "miss"
        if leading:
            g.response_cache_flight = (key, flight)
        g.response_cache_fill = (key, now)
        g.response_cache_position = cache.feed.position()  # read after the sequence number
        # The view reads the viewer's row (the token's user and session key).
        change_feed.start_reading(() if not viewer.user_id else (f"user:{viewer.user_id}",))
        return None
    g.response_cache = "hit"
    # For the request log: no view ran to set the user.
    g.cached_viewer_id = viewer.user_id or None
    response = current_app.response_class(entry.body, status=200, content_type=entry.content_type)
    response.headers["ETag"] = entry.etag
    return response


def _after_the_fill(
    cache: ResponseCache, key: Key, flight: threading.Event
) -> tuple[Entry | None, int | None]:
    """(the entry, the sequence number now) once another thread's fill of ``key`` is over.

    Waits at most :data:`FILL_WAIT_SECONDS`, then looks ``key`` up again as
    any request does (``current()`` first: on SQLite it is what hears other
    processes' writes): ``None`` for the sequence number when the feed cannot
    vouch (the cache is off), ``None`` for the entry when the fill was not
    stored (it failed, answered no ``200``, or read across a write) or is
    still running.

    Serving what this finds is as correct as any hit. The fill read the
    database after its ``read_at``; it was stored only if none of the stamps
    it watches had moved past ``read_at`` by then, and the lookup finds it
    only if none has moved since, up to now, which is after this request
    arrived. So no write this process heard of between the fill's read and
    this lookup changed what the entry shows: it answers what a read at the
    lookup would, the guarantee of any hit (a client's own write moved the
    stamps before it was answered, so before this request was sent). A write
    that moved them voids the fill, and this request computes the answer
    itself, after the write.
    """
    flight.wait(FILL_WAIT_SECONDS)
    now = cache.feed.current()
    if now is None:
        return None, None
    return cache.get(key), now


def _land(_error: BaseException | None) -> None:
    """End this request's flight, if it led one: its followers look the key up again.

    At teardown, which every request reaches (after :func:`_keep` stored the
    fill, or when the view raised, answered no ``200``, or skipped it).
    """
    flight = g.pop("response_cache_flight", None)
    cache = _cache()
    if flight is not None and cache is not None:
        cache.flights.land(*flight)


def _keep(response: Response) -> Response:
    state = g.pop("response_cache", None)
    if state is None:
        return response
    response.headers["X-Cache"] = state
    fill = g.pop("response_cache_fill", None)
    if fill is None:  # a hit, or a miss that is not to be stored: nothing was collected
        return response
    reading = change_feed.finish_reading()
    cache = _cache()
    if (
        reading is None
        or cache is None
        or response.status_code != 200
        or response.is_streamed
        or response.direct_passthrough
    ):
        return response
    if "ETag" not in response.headers:
        response.add_etag()
    etag = response.headers["ETag"]
    key, read_at = fill
    if not replicas.read_was_current(g.pop("response_cache_position", 0)):
        return response  # read from a replica that had not replayed the latest invalidation
    keys, tables = reading
    uncovered = tables - change_feed.covered(keys)
    if uncovered:
        _refuse_once(request.endpoint or "", uncovered)
        return response
    watches = cache.feed.stamps.indexes(keys, tables)
    entry = Entry(response.get_data(), etag, response.content_type or "", read_at, watches)
    if cache.put(key, entry) and cache.second_level is not None:
        cache.second_level.store(key, entry)
    return response


_refused: set[str] = set()


def _refuse_once(endpoint: str, uncovered: set[str]) -> None:
    """Log, once per endpoint and process, a hot read that cannot be kept (see the module's doc)."""
    if endpoint not in _refused:
        _refused.add(endpoint)
        log.warning(
            "response cache: %s read %s, which no surrogate key it declared covers: not stored",
            endpoint,
            ", ".join(sorted(uncovered)),
        )


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
    feed.track_positions = replicas.current_or_none(app) is not None
    app.extensions[change_feed.EXTENSION] = feed
    app.extensions[_QUERY_NAMES] = {}
    app.extensions[EXTENSION] = ResponseCache(
        feed, int(app.config.get("RESPONSE_CACHE_MAX_BYTES", DEFAULT_MAX_BYTES))
    )
    app.before_request(_serve_from_cache)
    app.after_request(_keep)
    app.teardown_request(_land)


def close(app: Flask) -> None:
    """Stop the change feed's listener (tests; a process that exits needs nothing)."""
    change_feed.close(app.extensions.get(change_feed.EXTENSION))
