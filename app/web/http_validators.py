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
"""

from __future__ import annotations

from http import HTTPStatus

from flask import Flask, Request, Response, request

from app.errors import error_response

SAFE_READS = frozenset({"GET", "HEAD"})
API_PREFIX = "/api/"


def _add_validators(response: Response) -> Response:
    if (
        request.method not in SAFE_READS
        or response.status_code != 200
        or not request.path.startswith(API_PREFIX)
        or response.is_streamed
        or response.direct_passthrough
    ):
        return response
    response.vary.add("Authorization")
    signed_in = "Authorization" in request.headers
    response.cache_control.no_cache = True
    if signed_in:
        response.cache_control.private = True
    if "ETag" not in response.headers:
        response.add_etag()
    conditions: Request | dict = request
    if request.if_match.star_tag:
        # "*" matches any current representation (RFC 9110 §13.1.1) and this is
        # one; Werkzeug compares it as an entity tag and answers 412.
        conditions = {k: v for k, v in request.environ.items() if k != "HTTP_IF_MATCH"}
    response.make_conditional(conditions)  # in place: 304 and no body when If-None-Match matches
    if response.status_code == HTTPStatus.PRECONDITION_FAILED:
        field = "If-Match" if "If-Match" in request.headers else "If-Unmodified-Since"
        return error_response(412, {field: ["does not match the current representation"]})
    return response


def init_app(app: Flask) -> None:
    app.after_request(_add_validators)
