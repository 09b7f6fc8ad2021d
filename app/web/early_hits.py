"""Response cache hits answered before Flask's request context: the same answer, less CPU.

Through Flask, a hit costs several times the bare route's CPU (docs/performance.md,
"Hits before the request context"): a request context pushed and popped, the
URL routed, and every request hook run through Flask's machinery (the request
log, the edges' checks, the validators, CORS), none of which a stored answer
needs. :class:`EarlyHits`, the innermost WSGI middleware around Flask's own
``wsgi_app``, answers the plainest hits itself, with what Flask would send:

- the stored body, ``Content-Type`` and ``ETag``, and ``X-Cache: hit``;
- ``Vary`` and ``Cache-Control`` as app/web/http_validators.py writes them on
  an answer that has none, and ``Date``;
- the request id and the access line (app/web/request_log.py), with the same fields;
- the CORS headers flask-cors adds to a request without ``Origin``
  (app/web/cross_origin.py);
- the security headers, which the outer middleware adds to every answer
  (app/web/security_headers.py), and a routed path, since
  app/web/http_edges.py's ``Slashes`` is outside too.

The plainest hit is a ``GET`` routed to a hot read
(``response_cache.HOT_READS``), with a valid ``Host``, a URL within
``MAX_URL_LENGTH``, no body, no conditional header, no ``Origin``, and either
no token or a valid one, whose answer this process holds and is current
(``ResponseCache.get``, the check every hit passes). Anything else goes to
Flask, which answers it as before: a miss (with the second level, single
flight and the fill), a ``304``, a CORS request, a token the view refuses, a
bad ``Host``. tests/test_early_hits.py compares both answers, headers in
order and log line included, for every hot read, signed in and not.

The lane is off (every request goes to Flask) when the response cache is, when
tracing or metrics are on or read replicas are configured (their hooks must
see every request), and with ``RESPONSE_CACHE_EARLY_HITS=off``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from flask import Flask, Request

from app.data import replicas
from app.web import cross_origin, http_edges, http_validators, request_log, response_cache

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SETTING = "RESPONSE_CACHE_EARLY_HITS"
# What the hosts and paths whose routing is remembered may hold (``sys.getsizeof``,
# bookkeeping included): about 4,000 of the usual ones, a few hundred of the longest a
# client may send (a path up to MAX_URL_LENGTH, a Host up to gunicorn's 8 KiB field).
ROUTES_BYTES = 2 * 1024 * 1024
# Extensions whose request hooks must see every request: with one, the lane is off.
_WATCHERS = ("tracing", "metrics")
# Request headers (WSGI keys) whose answer Flask's hooks shape: such requests go to Flask.
_FLASK_ANSWERS = frozenset(
    {
        *http_validators.CONDITIONAL_HEADERS,  # a 304 or a 412
        "HTTP_ORIGIN",  # CORS: the allowed origin and Vary depend on it
        "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK",  # CORS: answered by flask-cors
        "HTTP_TRANSFER_ENCODING",  # a body, which app/web/http_edges.py reads and checks
        "HTTP_" + replicas.HEADER.upper().replace("-", "_"),  # read-your-writes (replicas)
    }
)


@dataclass(frozen=True, slots=True)
class _Route:
    endpoint: str | None
    size: int  # the bytes the place and this record hold (``sys.getsizeof``, bookkeeping)


def _route_size(route: _Route) -> int:
    return route.size


_ROUTE_RECORD_BYTES = sys.getsizeof(_Route(None, 0))


class _HotRoutes:
    """The hot read a ``GET`` is routed to, remembered per ``Host`` and path (in ``max_bytes``).

    Routing is Flask's (``create_url_adapter(request).match()``), a
    function of the host and path once the app serves: remembering it spares
    a hit most of the routing's cost. ``None``: routed elsewhere, or not at
    all (a redirect, a ``404``, a ``405``), which Flask answers. The places
    are counted by their bytes, not their number: clients choose the hosts
    and paths, up to 16 KiB a request.
    """

    def __init__(self, app: Flask, max_bytes: int = ROUTES_BYTES) -> None:
        self.app = app
        self._known: LRUCache[tuple[str, str], _Route] = LRUCache(max_bytes, getsizeof=_route_size)
        self._lock = threading.Lock()

    def endpoint(self, asked: Request) -> str | None:
        place = (asked.environ.get("HTTP_HOST", ""), asked.environ.get("PATH_INFO", ""))
        with self._lock:
            known = self._known.get(place)
        if known is not None:
            return known.endpoint
        try:
            adapter = self.app.create_url_adapter(asked)
            rule, _arguments = adapter.match(return_rule=True)  # type: ignore[union-attr]
            endpoint = rule.endpoint if rule.endpoint in response_cache.HOT_READS else None
        except Exception:  # a redirect, 404, 405, an untrusted host: Flask's to answer
            endpoint = None
        size = (
            sys.getsizeof(place)
            + sys.getsizeof(place[0])
            + sys.getsizeof(place[1])
            + _ROUTE_RECORD_BYTES
            + response_cache.BOOKKEEPING
        )
        if size <= self._known.maxsize:
            with self._lock:
                self._known[place] = _Route(endpoint, size)
        return endpoint


@dataclass(frozen=True, slots=True)
class _Lane:
    app: Flask
    cache: response_cache.ResponseCache
    cors: tuple[tuple[str, str], ...]
    routes: _HotRoutes


class EarlyHits:
    """WSGI middleware: the plainest response cache hits, answered without Flask (module doc)."""

    def __init__(self, app: Flask, wsgi_app: WsgiApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._lane: _Lane | None = None
        self._decided = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        lane = self._lane if self._decided else self._open()
        if (
            lane is not None
            and environ.get("REQUEST_METHOD") == "GET"
            and environ.get("PATH_INFO", "").startswith("/api/")
        ):
            try:
                answer = _answer(lane, environ)
            except Exception:  # a bug here must not cost the request: Flask answers it
                log.exception("early hit failed; Flask answers the request")
                answer = None
            if answer is not None:
                headers, body = answer
                start_response("200 OK", headers)
                return [body]
        return self.wsgi_app(environ, start_response)

    def _open(self) -> _Lane | None:
        """The lane, decided at the first request, once the app's settings are complete."""
        app = self.app
        cache: response_cache.ResponseCache | None = app.extensions.get(response_cache.EXTENSION)
        # Hooks that must see every request: tracing's, metrics', the replicas' choice.
        watched = any(name in app.extensions for name in _WATCHERS) or (
            replicas.current_or_none(app) is not None
        )
        if cache is None or watched or not app.config.get(SETTING, True):
            self._lane = None
        else:
            cors = tuple(cross_origin.api_read_headers_without_origin(app))
            self._lane = _Lane(app, cache, cors, _HotRoutes(app))
        self._decided = True
        return self._lane


def _answer(lane: _Lane, environ: dict[str, Any]) -> tuple[list[tuple[str, str]], bytes] | None:
    """The headers and body of the hit ``environ`` asks for; ``None``: Flask answers it."""
    started = time.perf_counter()
    if environ.get("CONTENT_LENGTH") or not _FLASK_ANSWERS.isdisjoint(environ):
        return None
    host = environ.get("HTTP_HOST")
    if host is None or not http_edges.valid_host(host):
        return None
    if http_edges.url_length(environ) > http_edges.MAX_URL_LENGTH:
        return None
    app = lane.app
    asked = app.request_class(environ)
    endpoint = lane.routes.endpoint(asked)
    if endpoint is None:
        return None
    viewer = response_cache.viewer_asking(app, endpoint, asked)
    if viewer is None:  # a token the view will refuse
        return None
    if lane.cache.feed.current() is None:  # the cache is off for now
        return None
    entry = lane.cache.get(response_cache.key_of(app, endpoint, asked, viewer))
    if entry is None:
        return None
    request_id = request_log.request_id_for(environ)
    headers = [
        ("Content-Type", entry.content_type),
        ("Content-Length", str(len(entry.body))),
        ("ETag", entry.etag),
        ("X-Cache", "hit"),
        ("Vary", http_validators.VARY),
        (
            "Cache-Control",
            http_validators.PRIVATE_CACHE_CONTROL
            if "HTTP_AUTHORIZATION" in environ
            else http_validators.SHARED_CACHE_CONTROL,
        ),
        ("Date", http_validators.current_date()),
        (request_log.REQUEST_ID_HEADER, request_id),
        *lane.cors,
    ]
    if request_log.request_logger.isEnabledFor(logging.INFO):
        duration_ms = (time.perf_counter() - started) * 1000
        request_log.log_access(request_id, asked, 200, duration_ms, viewer.user_id or None)
    return headers, entry.body


def init_app(app: Flask) -> None:
    """Wrap Flask's own ``wsgi_app``: call before any other middleware wraps it."""
    app.wsgi_app = EarlyHits(app, app.wsgi_app)  # type: ignore[method-assign]
