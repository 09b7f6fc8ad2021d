"""HTTP at the edges: what clients and servers send that no route expects.

One mechanism per kind of fault, applied to every request before any view runs:

- **A trailing slash** on any path is the path without it (``/api/articles/``
  is ``/api/articles``): public Conduit frontends send both. Doubled slashes
  (``/api//articles``) are one. The path is rewritten, not redirected: a
  redirect would drop a POST's body in some clients and fail a CORS preflight
  in every browser.
- **An encoded slash** (``%2F``) in the path is part of its segment, not a
  separator (RFC 3986 §2.2): the server decodes it into the path it hands
  over, where ``DELETE /api/articles/a%2Fcomments%2F7`` became a comment's
  deletion. It stays ``%2F`` in the routed path, which no slug or username
  holds, so such a request is a 404 (and never a cached answer of another
  path).
- **The Host header** is required in HTTP/1.1 and must be a URI host with an
  optional port (RFC 9112 §3.2, RFC 3986 §3.2.2): a request without one, or
  with one that is not (spaces, slashes, an empty host), is a 400.
- **A URL too long** (path plus query string, as sent: ``MAX_URL_LENGTH``
  bytes) is a 414. gunicorn refuses request lines past its own limit before
  the application sees them; gunicorn.conf.py sets that limit above this one
  and has gunicorn write its refusals (``write_gunicorn_error``) in the same
  envelope, so no client ever gets an HTML page.
- **The body is read whole before the view**, and a body that cannot be read is
  a 400 that writes nothing: shorter than its ``Content-Length`` (the client
  half-closed or gave up; gunicorn hands the application the bytes that
  arrived), or a malformed chunked encoding (gunicorn raises while the body is
  read). Without this a request whose body was cut short could still parse as
  JSON and create a user the client never heard about.
- **A body over ``MAX_CONTENT_LENGTH``** is a 413. The rest of the body (up to
  ``DISCARD_LIMIT`` bytes) is read and thrown away first: a server that closes
  the connection while the client is still uploading makes the client's TCP
  stack reset it, and the client never reads the answer.
- **A content-coded body** (``Content-Encoding: gzip`` or any coding but
  ``identity``) is a 415 (RFC 9110, 8.4): the API reads bodies as sent and
  would otherwise parse compressed bytes, or bytes merely labelled compressed,
  as JSON.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.errors import GENERIC_MESSAGES, abort
from app.web.security_headers import API_HEADERS

# The longest URL (percent-encoded path, "?", query string) the API answers; longer is 414.
MAX_URL_LENGTH = 8000
# How much of an oversized body is read and discarded so the client sees the 413.
DISCARD_LIMIT = 64 * 1024 * 1024
_CHUNK = 64 * 1024

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Slashes:
    """WSGI middleware: ``/a//b/`` is routed as ``/a/b`` (the root ``/`` stays).

    Runs of slashes are one (a base URL ending in ``/`` joined with a path
    starting with one), and a trailing slash is dropped. Werkzeug would answer
    the first with a redirect and the second with a 404.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        path = _with_encoded_slashes_kept(environ) or environ.get("PATH_INFO", "")
        if "//" in path or (len(path) > 1 and path.endswith("/")):
            path = _SLASHES.sub("/", path).rstrip("/") or "/"
        environ["PATH_INFO"] = path
        return self.app(environ, start_response)


_SLASHES = re.compile(r"/{2,}")
_ENCODED_SLASH = re.compile(r"%2[fF]")


def _with_encoded_slashes_kept(environ: dict[str, Any]) -> str | None:
    """``PATH_INFO`` decoded from the path as sent, ``%2F`` left as is; ``None``: none sent.

    The path of the request target as sent (:func:`_target_as_sent`) is decoded
    as the server decodes ``PATH_INFO`` (bytes as latin-1, WSGI's convention),
    segment by segment between the encoded slashes.
    """
    raw = _target_as_sent(environ) or ""
    if "%2" not in raw:  # nearly every request: no encoded slash anywhere in it
        return None
    path = urlsplit(raw).path if "://" in raw[:16] else raw.split("?", 1)[0].split("#", 1)[0]
    if not _ENCODED_SLASH.search(path):
        return None
    prefix = environ.get("SCRIPT_NAME", "")
    decoded = "%2F".join(
        unquote_to_bytes(part).decode("latin-1") for part in _ENCODED_SLASH.split(path)
    )
    return decoded[len(prefix) :] if prefix and decoded.startswith(prefix) else decoded


# RFC 3986 host (IP-literal, IPv4address or reg-name; not empty for http) and port.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]*)?")


def init_app(app: Flask) -> None:
    app.wsgi_app = Slashes(app.wsgi_app)  # type: ignore[method-assign]
    app.before_request(_check_host)
    app.before_request(_check_url_length)
    app.before_request(_read_body)


def _check_host() -> None:
    host = request.environ.get("HTTP_HOST")
    if host is None:
        if request.environ.get("SERVER_PROTOCOL") == "HTTP/1.1":
            abort(400, "Host", "is required in HTTP/1.1")
        return
    if not valid_host(host):
        abort(400, "Host", "is not a valid host[:port]")


def valid_host(host: str) -> bool:
    """Whether ``host`` is an RFC 3986 host with an optional port (a ``Host`` header's form)."""
    return _HOST.fullmatch(host) is not None


def _target_as_sent(environ: dict[str, Any]) -> str | None:
    """The request target as the client sent it: gunicorn's and Werkzeug's ``RAW_URI``
    (``REQUEST_URI`` on other servers); ``None`` when the server keeps neither."""
    return environ.get("RAW_URI") or environ.get("REQUEST_URI")


def url_length(environ: dict[str, Any]) -> int:
    """The URL's length as the client sent it (:func:`_target_as_sent`), else rebuilt."""
    raw = _target_as_sent(environ)
    if raw:
        return len(raw)
    query = environ.get("QUERY_STRING", "")
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return len(path.encode("latin-1", "replace")) + (len(query) + 1 if query else 0)


def _check_url_length() -> None:
    if url_length(request.environ) > MAX_URL_LENGTH:
        abort(414, "url", f"is too long (maximum is {MAX_URL_LENGTH} bytes)")


def _has_body() -> bool:
    environ = request.environ
    if not environ.get("CONTENT_LENGTH") and "HTTP_TRANSFER_ENCODING" not in environ:
        return False  # nearly every GET: no header to parse
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def _read_body() -> None:
    if not _has_body():
        return
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        _discard_rest(request.environ["wsgi.input"])
        raise
    except HTTPException:
        raise  # werkzeug's ClientDisconnected (400) when it limits the stream itself
    except Exception:  # gunicorn's chunk errors, connection resets: the body is unreadable
        abort(400, "body", "could not be read (malformed chunked encoding or connection lost)")
    expected = request.content_length
    limit = request.max_content_length
    if expected is None and limit is not None and len(data) >= limit:
        # A chunked body: werkzeug stops reading at the limit without a word.
        _refuse_if_more(request.environ["wsgi.input"])
    if expected is not None and len(data) < expected:
        abort(400, "body", f"is shorter than its Content-Length ({len(data)} of {expected} bytes)")
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("", "identity"):
        abort(415, "body", f"must not be encoded (Content-Encoding: {coding} is not supported)")


def _refuse_if_more(stream: Any) -> None:
    try:
        more = stream.read(1)
    except Exception:  # a broken chunk past the limit: the body is unreadable either way
        abort(400, "body", "could not be read (malformed chunked encoding or connection lost)")
    if more:
        _discard_rest(stream)
        raise RequestEntityTooLarge()


def _discard_rest(stream: Any) -> None:
    remaining = DISCARD_LIMIT
    try:
        while remaining > 0:
            chunk = stream.read(min(_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
    except Exception:  # the client went away or broke the body: nothing left to keep
        return


# What gunicorn refuses on its own (before the application runs), by status:
# the field the envelope names and the message.
_GUNICORN_REFUSALS = {
    414: ("url", f"is too long (maximum is {MAX_URL_LENGTH} bytes)"),
    431: ("headers", "are too large"),
}


def gunicorn_error_body(status: int) -> bytes:
    field, message = _GUNICORN_REFUSALS.get(
        status, ("body", GENERIC_MESSAGES.get(status, "is malformed"))
    )
    return json.dumps({"errors": {field: [message]}}).encode()


def write_gunicorn_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, in the envelope instead of an HTML page.

    gunicorn answers by itself what it cannot hand to the application: a
    request line or headers past its limits (414, 431), a malformed request
    (400). gunicorn.conf.py installs this in its place; ``mesg`` (gunicorn's
    detail, which may echo the request) is not sent. The answer carries the
    API's hardening headers (app/web/security_headers.py), as every other does.
    """
    body = gunicorn_error_body(status_int)
    hardening = "".join(f"{name}: {value}\r\n" for name, value in API_HEADERS.items())
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"{hardening}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    blocking = sock.gettimeout() != 0.0
    sock.setblocking(True)  # gthread keeps its sockets non-blocking; this reply is small
    try:
        sock.sendall(head.encode("latin-1") + body)
    finally:
        sock.setblocking(blocking)
