"""HTTP validators on API reads: ``ETag``, ``If-None-Match`` → 304, ``Cache-Control``.

Every successful ``GET`` (or ``HEAD``) under ``/api/`` carries a strong
``ETag`` (a hash of the body, Werkzeug's ``add_etag``); a request whose
``If-None-Match`` names it gets ``304 Not Modified`` with no body (Werkzeug's
``make_conditional``). Answers depend on who asks, so ``Vary: Authorization``;
an answer for a signed-in viewer is ``private`` (no shared cache may keep it),
and every answer is ``no-cache``: a client may keep it but must revalidate,
which costs it a 304 when nothing changed. A failed ``If-Match`` or
``If-Unmodified-Since`` is a 412 in the error envelope (Werkzeug would keep the
body of the answer it refused); ``If-Match: *`` matches any answer there is.

A request that sends no conditional header (nearly every one) skips
Werkzeug's comparison: it gets what ``make_conditional`` would give it, the
``Date`` header (formatted once a second) and no other change. A response
cache hit arrives with its stored ``ETag`` and is never hashed again.
"""

from __future__ import annotations

import time
from http import HTTPStatus

from flask import Flask, Request, Response, request
from werkzeug.http import http_date

from app.errors import error_response

SAFE_READS = frozenset({"GET", "HEAD"})
API_PREFIX = "/api/"
# The request headers ``make_conditional`` reads (``Range`` and ``If-Range`` too,
# though no answer here offers ranges): without any of them it only adds ``Date``.
CONDITIONAL_HEADERS = (
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
)
# What the validators write on an answer that has no such header yet, as Werkzeug
# writes it (``response.vary.add``, ``response.cache_control``).
VARY = "Authorization"
SHARED_CACHE_CONTROL = "no-cache"
PRIVATE_CACHE_CONTROL = "no-cache, private"


class _Clock:
    """``Date``'s value (RFC 9110 §6.6.1: whole seconds), formatted once per second."""

    def __init__(self) -> None:
        self._formatted: tuple[int, str] = (-1, "")

    def now(self) -> str:
        second = int(time.time())
        formatted = self._formatted  # one read: another thread may replace it
        if formatted[0] != second:
            formatted = (second, http_date(second))
            self._formatted = formatted
        return formatted[1]


_clock = _Clock()


def current_date() -> str:
    """``Date``'s value now (an IMF-fixdate, RFC 9110 §5.6.7), as every API read carries it."""
    return _clock.now()


def _add_validators(response: Response) -> Response:
    if (
        request.method not in SAFE_READS
        or response.status_code != 200
        or not request.path.startswith(API_PREFIX)
        or response.is_streamed
        or response.direct_passthrough
    ):
        return response
    headers = response.headers
    environ = request.environ
    signed_in = "HTTP_AUTHORIZATION" in environ
    present = {name.lower() for name, _value in headers}  # one pass; ``in`` raises per miss
    if "vary" in present:
        response.vary.add(VARY)
    else:
        headers.add("Vary", VARY)
    if "cache-control" in present:
        response.cache_control.no_cache = True
        if signed_in:
            response.cache_control.private = True
    else:
        headers.add("Cache-Control", PRIVATE_CACHE_CONTROL if signed_in else SHARED_CACHE_CONTROL)
    if "etag" not in present:
        response.add_etag()  # a response cache hit has its stored ETag: never hashed again
    if not any(name in environ for name in CONDITIONAL_HEADERS):
        # All that make_conditional does without them, in its order.
        if "date" not in present:
            headers.add("Date", current_date())
        if response.automatically_set_content_length and "content-length" not in present:
            length = response.calculate_content_length()
            if length is not None:
                headers.add("Content-Length", str(length))
        return response
    conditions: Request | dict = request
    if "HTTP_IF_MATCH" in environ and _if_match_holds(response):
        # A true If-Match is done with (RFC 9110 §13.2.2): If-None-Match comes next,
        # which Werkzeug skips whenever If-Match is present.
        conditions = {k: v for k, v in environ.items() if k != "HTTP_IF_MATCH"}
    response.make_conditional(conditions)  # in place: 304 and no body when If-None-Match matches
    if response.status_code == HTTPStatus.PRECONDITION_FAILED:
        field = "If-Match" if "If-Match" in request.headers else "If-Unmodified-Since"
        return error_response(412, {field: ["does not match the current representation"]})
    return response


def _if_match_holds(response: Response) -> bool:
    """``If-Match``: ``*`` matches any current representation (RFC 9110 §13.1.1; Werkzeug
    compares it as an entity tag), otherwise the answer's tag, compared strongly."""
    if request.if_match.star_tag:
        return True
    etag, weak = response.get_etag()
    return etag is not None and not weak and request.if_match.is_strong(etag)


def init_app(app: Flask) -> None:
    app.after_request(_add_validators)
