"""Browser hardening headers on every answer: the second line of defence.

The web app already sanitises what users write (markdown through DOMPurify);
these headers make the browser refuse what would slip past it:

- **Content-Security-Policy** (CSP Level 3, https://www.w3.org/TR/CSP3/), one
  of three by path:

  * the web app (``/`` and every other path the app's build is served at,
    :data:`WEB_APP_POLICY`): scripts and styles from its own origin only (no
    inline script or style, no ``eval``), images from itself, any ``https:``
    URL (article images, avatars) or ``data:`` (the default avatar, Bootstrap's
    icons), fonts from itself, fetches to its own API only; no plugins, no
    ``<base>``, forms post only to itself, never framed;
  * the docs page (``/docs``, :data:`DOCS_POLICY`): the same for Swagger UI,
    whose starter is a file (app/web/docs.py) rather than the inline script
    flask-smorest's page has, so that ``script-src 'self'`` holds there too;
  * everything else (the API ``/api/…``, ``/openapi.json``, the probes, the
    docs' assets, :data:`API_POLICY`): ``default-src 'none'``. JSON is not a
    document, so a browser that is made to render one anyway runs nothing in
    it and loads nothing for it.

- **X-Content-Type-Options: nosniff** (Fetch, §3.5 https://fetch.spec.whatwg.org/#x-content-type-options-header):
  a JSON answer holding ``<script>`` is never taken for HTML or script.
- **X-Frame-Options: DENY** (RFC 7034), for browsers older than
  ``frame-ancestors``.
- **Referrer-Policy: no-referrer** (https://www.w3.org/TR/referrer-policy/):
  the app needs no ``Referer``, and an article's links and images then learn
  nothing of which page the reader came from.
- **Strict-Transport-Security: max-age=31536000** (RFC 6797), only with the
  ``HTTPS_ONLY`` setting on: the site is served over HTTPS and never over
  plain HTTP, so browsers may refuse plain HTTP to it for a year. (Browsers
  ignore the header on a plain-HTTP answer, §8.1, so a proxy that terminates
  TLS in front of the app is fine.) Not ``includeSubDomains``: the setting
  speaks for this host only.

Why a WSGI middleware of a few lines rather than Flask-Talisman: Talisman's
maintenance has moved between forks, and most of what it does (redirects to
HTTPS, cookie flags, per-request nonces) this app does not need: it has no
cookies and, with no inline script anywhere, no nonces. Why a middleware and
not an ``after_request`` function: it sees every answer the application gives,
whichever part built it (a cache hit answered in ``before_request``, an error
handler's envelope, a ``304``, an answer a later ``after_request`` replaced),
and the answer's own headers cannot drop it. gunicorn's own refusals, which
never reach the application, carry :data:`API_HEADERS` too
(app/web/http_edges.py ``write_gunicorn_error``).

nginx sends the same headers on what it answers itself (deploy/nginx.conf's
error pages, deploy/nginx-webapp.conf's files); tests/test_security_headers.py
compares those files with the constants here. The Vite development server
(``make dev``) sends none on the pages it serves, since its hot reload runs
inline scripts; what it forwards to Flask (``/api``, ``/docs``) carries them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def policy(directives: Mapping[str, str]) -> str:
    """A ``Content-Security-Policy`` value from ``{directive: sources}``, in that order."""
    return "; ".join(f"{name} {sources}" for name, sources in directives.items())


WEB_APP_POLICY = policy(
    {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' https: data:",
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
)
DOCS_POLICY = policy(
    {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
)
API_POLICY = policy({"default-src": "'none'", "frame-ancestors": "'none'"})

_COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
WEB_APP_HEADERS: dict[str, str] = {"Content-Security-Policy": WEB_APP_POLICY, **_COMMON}
DOCS_HEADERS: dict[str, str] = {"Content-Security-Policy": DOCS_POLICY, **_COMMON}
API_HEADERS: dict[str, str] = {"Content-Security-Policy": API_POLICY, **_COMMON}
HSTS = ("Strict-Transport-Security", "max-age=31536000")

DOCS_PAGE = "/docs"
# Paths that are not the web app's: the API, the docs' assets, the spec, the probes.
_NOT_WEB_APP = ("/api", "/docs", "/openapi.json", "/healthz", "/readyz")
_NOT_WEB_APP_PATHS = frozenset(_NOT_WEB_APP)
_NOT_WEB_APP_PREFIXES = tuple(prefix + "/" for prefix in _NOT_WEB_APP)


def headers_for(path: str) -> dict[str, str]:
    """The headers an answer to ``path`` (routed, slashes already folded) carries."""
    if path == DOCS_PAGE:
        return DOCS_HEADERS
    if path in _NOT_WEB_APP_PATHS or path.startswith(_NOT_WEB_APP_PREFIXES):
        return API_HEADERS
    return WEB_APP_HEADERS


class SecurityHeaders:
    """WSGI middleware: :func:`headers_for` the path on every answer, HSTS when asked.

    A header of the same name the application set is replaced: the policy is
    decided here, in one place.
    """

    def __init__(self, app: WsgiApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts
        # Each policy's header list and lowercased names, built once, not per answer.
        self._built = {
            id(policy): self._build(policy)
            for policy in (WEB_APP_HEADERS, DOCS_HEADERS, API_HEADERS)
        }

    def _build(self, policy: dict[str, str]) -> tuple[list[tuple[str, str]], frozenset[str]]:
        extra = dict(policy)
        if self.hsts:
            extra[HSTS[0]] = HSTS[1]
        return list(extra.items()), frozenset(name.lower() for name in extra)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        policy = headers_for(environ.get("PATH_INFO", "") or "/")
        built = self._built.get(id(policy))
        extra, names = built if built is not None else self._build(policy)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            kept = [(name, value) for name, value in headers if name.lower() not in names]
            return start_response(status, kept + extra, exc_info)

        return self.app(environ, start)


def init_app(app: Flask) -> None:
    """Wrap the app. Call before app/web/http_edges.py wraps it in ``Slashes``, so
    the path seen here is the routed one (``/docs/`` is ``/docs``)."""
    app.wsgi_app = SecurityHeaders(  # type: ignore[method-assign]
        app.wsgi_app, hsts=bool(app.config.get("HTTPS_ONLY", False))
    )
