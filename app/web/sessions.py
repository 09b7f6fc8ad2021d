"""No cookie sessions: the API is stateless (a token per request, app/security.py).

Flask opens its signed-cookie session on every request, building an
itsdangerous serializer each time even when no cookie is sent: about a tenth
of what a response cache hit spent (docs/performance.md, "What a hit
costs"). Nothing here reads or writes ``flask.session``; with this interface
it is Flask's ``NullSession``, which refuses writes.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class NoSessions(SecureCookieSessionInterface):
    """Opens no session: Flask then gives the request its ``NullSession`` and saves nothing."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        return None


def init_app(app: Flask) -> None:
    app.session_interface = NoSessions()
