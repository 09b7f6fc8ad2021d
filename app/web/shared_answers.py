"""The response cache's second level: answers shared by the workers of one master, in Redis.

Each gunicorn worker keeps its own response cache (app/web/response_cache.py),
so one invalidation costs a miss in every worker: the second recomputes what
the first just did. Here a worker that kept a fill also ``SET``s it in Redis,
and a worker that misses locally ``GET``s it from there before running the
view.

An entry is usable only against the stamps it was read against. Stamps live
in the master's shared memory and their sequence numbers restart with a new
master, so every Redis key carries the stamps' random identity
(``Stamps.identity``): ``conduit:answers:<identity>:<sha256 of the cache key>``
(a hash: the path and query are the client's, of any length, and the key
holds the viewer's session key). An entry of another identity is never read,
and the identity is checked again inside the value. A fetched entry passes
exactly the check a local one gets at lookup (the feed vouching and the
replicas having heard are checked before either lookup;
``ChangeFeed.fresh(watches, read_at)``), after ``Stamps.plausible``, so a
value no worker could have written is ignored. A usable entry is kept locally
and served as a local hit is (``X-Cache: hit``, the same headers and body).

The value is a small explicit format, never pickle (reading it runs no code)::

    {"v": 1, "identity": "...", "read_at": 41, "watches": [...], "etag": "...",
     "content_type": "...", "length": 1234, "crc32": 567}  (JSON, one line)
    b"\\n"
    <length bytes of body>

Anything else (garbage, a truncated body, another version) is ignored: a miss.

Redis's memory is bounded: a worker keeps at most its local cache's
``RESPONSE_CACHE_MAX_BYTES`` of values there at a time (:meth:`SharedAnswers.store`),
so a master's entries take at most its workers' budgets, whatever the traffic.

Redis unreachable, slow (:data:`TIMEOUT_SECONDS`) or not Redis at all (a
server answering what redis-py cannot parse raises ``AttributeError``,
``ValueError``… rather than ``RedisError``) is never an error nor a wrong
answer: the request goes on as without the second level, the outage is
logged once, and Redis is not asked again for :data:`RETRY_AFTER_SECONDS`.
``RESPONSE_CACHE_SHARED_URL`` (app/config.py) says where; none: no second level.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any

import orjson
from cachetools import TTLCache
from flask import Flask

from app.data.change_feed import Stamps
from app.web.response_cache import EXTENSION as RESPONSE_CACHE
from app.web.response_cache import Entry, Key, ResponseCache

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

EXTENSION = "shared_answers"
PREFIX = "conduit:answers:"
FORMAT_VERSION = 1
# A fill is worth sharing until the other workers have read it (seconds, at
# hot-read rates) or its stamps move (a write); a minute bounds Redis's memory
# by a minute of distinct fills, whatever the traffic.
TTL_SECONDS = 60
# Loopback answers in ~0.1 ms; a Redis slower than this is treated as down. A
# miss waits at most this long per command before running the view anyway.
TIMEOUT_SECONDS = 0.05
RETRY_AFTER_SECONDS = 5.0  # after a failure, the second level rests this long
_HEADER_FIELDS = frozenset(
    {"v", "identity", "read_at", "watches", "etag", "content_type", "length", "crc32"}
)


def redis_key(identity: str, key: Key) -> str:
    """Where the answer under ``key``, read against the stamps ``identity``, is kept."""
    digest = hashlib.sha256(orjson.dumps(list(key))).hexdigest()
    return f"{PREFIX}{identity}:{digest}"


def encode(identity: str, entry: Entry) -> bytes:
    """``entry`` as stored in Redis (the format in the module's doc)."""
    header = {
        "v": FORMAT_VERSION,
        "identity": identity,
        "read_at": entry.read_at,
        "watches": list(entry.watches),
        "etag": entry.etag,
        "content_type": entry.content_type,
        "length": len(entry.body),
        "crc32": zlib.crc32(entry.body),
    }
    return orjson.dumps(header) + b"\n" + entry.body


def _header_value(value: object) -> bool:
    """Could a worker have sent ``value`` as a header: printable ASCII (no CR, LF, NUL)?

    Anything else would fail the response (werkzeug refuses a newline: a 500)
    or split it (a header injected), so such an entry is not one a worker wrote.
    """
    return isinstance(value, str) and value.isascii() and value.isprintable()


def decode(value: bytes, stamps: Stamps) -> Entry | None:
    """The entry ``value`` holds, if it is one written against ``stamps``; else ``None``."""
    head, newline, body = value.partition(b"\n")
    if not newline:
        return None
    try:
        header: Any = orjson.loads(head)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(header, dict) or header.keys() != _HEADER_FIELDS:
        return None
    read_at, watches = header["read_at"], header["watches"]
    if (
        header["v"] != FORMAT_VERSION
        or header["identity"] != stamps.identity
        or type(read_at) is not int
        or not isinstance(watches, list)
        or not all(type(index) is int for index in watches)
        or not _header_value(header["etag"])
        or not _header_value(header["content_type"])
        or header["length"] != len(body)
        or header["crc32"] != zlib.crc32(body)
        or not stamps.plausible(watches, read_at)
    ):
        return None
    return Entry(body, header["etag"], header["content_type"], read_at, tuple(watches))


class SharedAnswers:
    """The second level of one response cache: ``fetch`` on a local miss, ``store`` on a fill."""

    def __init__(self, cache: ResponseCache, client: redis.Redis) -> None:
        self.cache = cache
        self.client = client
        self._resume_at = 0.0  # time.monotonic() before which Redis is not asked
        self._down = False
        self._lock = threading.Lock()
        # What this worker SET and Redis still holds: its key and bytes, for TTL_SECONDS.
        self._written: TTLCache[str, int] = TTLCache(
            maxsize=cache.max_bytes, ttl=TTL_SECONDS, getsizeof=lambda size: size
        )

    @property
    def identity(self) -> str:
        return self.cache.feed.stamps.identity

    def fetch(self, key: Key) -> Entry | None:
        """Another worker's answer under ``key``, if current; it is kept locally too."""
        if not self._available():
            return None
        try:
            value = self.client.get(redis_key(self.identity, key))
        except Exception as error:  # not a usable Redis: whatever answered
            self._failed(error)
            return None
        self._answered()
        if not isinstance(value, bytes):
            return None
        entry = decode(value, self.cache.feed.stamps)
        if entry is None or not self.cache.feed.fresh(entry.watches, entry.read_at):
            return None
        self.cache.put(key, entry)
        return entry

    def store(self, key: Key, entry: Entry) -> None:
        """Share ``entry``, just kept locally, for :data:`TTL_SECONDS`, within the budget.

        A worker keeps at most the local cache's ``max_bytes`` of values in
        Redis at a time (counted over the keys it ``SET`` in the last
        :data:`TTL_SECONDS`). A new answer beyond that is not shared; a
        re-fill of a key it already wrote replaces its value and always is.
        So a flood of distinct URLs, read once each and never throttled, grows
        Redis by at most the workers' budgets, while the hot answers (filled
        again after each write) keep being shared.
        """
        if not self._available():
            return
        value = encode(self.identity, entry)
        name = redis_key(self.identity, key)
        if not self._within_budget(name, len(value)):
            return
        try:
            self.client.set(name, value, ex=TTL_SECONDS)
        except Exception as error:  # as in fetch
            self._failed(error)
            return
        self._answered()

    def _within_budget(self, name: str, size: int) -> bool:
        """Count ``size`` bytes under ``name`` against the budget; ``False``: over it."""
        with self._lock:
            written = self._written
            written.expire()
            if name not in written and written.currsize + size > written.maxsize:
                return False
            try:
                written[name] = size
            except ValueError:  # larger than the whole budget
                return False
            return True

    def _available(self) -> bool:
        return time.monotonic() >= self._resume_at

    def _failed(self, error: Exception) -> None:
        with self._lock:
            self._resume_at = time.monotonic() + RETRY_AFTER_SECONDS
            if self._down:
                return
            self._down = True
        log.warning(
            "response cache: shared answers off for %.0f s, Redis failed (%s)",
            RETRY_AFTER_SECONDS,
            error,
        )

    def _answered(self) -> None:
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                log.info("response cache: shared answers on again")


def client_for(url: str) -> redis.Redis:
    """A client that fails fast: :data:`TIMEOUT_SECONDS`, no retry (the view is the fallback).

    No connection is made here; redis-py's pool opens connections per process
    (it starts afresh in a forked worker).
    """
    # redis-py imports OpenTelemetry when it is installed: only a process that
    # shares answers pays for that (tests/test_tracing.py).
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Redis.from_url(
        url,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


def init_app(app: Flask) -> None:
    """Give the response cache a second level when ``RESPONSE_CACHE_SHARED_URL`` names Redis.

    Register after app/web/response_cache.py (it needs the cache).
    """
    cache: ResponseCache | None = app.extensions.get(RESPONSE_CACHE)
    url = app.config.get("RESPONSE_CACHE_SHARED_URL")
    if cache is None or not url:
        return
    shared = SharedAnswers(cache, client_for(url))
    cache.second_level = shared
    app.extensions[EXTENSION] = shared


def close(app: Flask) -> None:
    """Close this process's connections to Redis (tests; a process that exits needs nothing)."""
    shared: SharedAnswers | None = app.extensions.get(EXTENSION)
    if shared is not None:
        shared.client.close()
