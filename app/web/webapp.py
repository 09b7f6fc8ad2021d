"""The Conduit web app (``frontend/dist``), served beside the API.

``make run`` builds the app when node is there; this blueprint serves the build:
files by their path (``/assets/*`` are content-hashed, so cached for a year), and
``index.html`` for every other path, so the app's client-side routes
(``/article/<slug>``, ``/profile/<name>``…) load on a reload or a shared link.
Paths under ``/api`` and ``/docs`` never reach it: an unknown API route stays a
404 in the JSON envelope. Without a build, ``/`` says how to get one.

``FRONTEND_DIST`` (setting or environment variable) points at another build.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from flask import Blueprint, Flask, Response, current_app, send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.routing import PathConverter

from app.config import PROJECT_ROOT

DEFAULT_DIST = PROJECT_ROOT / "frontend" / "dist"
ASSET_MAX_AGE = 365 * 24 * 60 * 60

NOT_BUILT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Conduit</title></head>
<body>
<h1>Conduit</h1>
<p>The web app is not built here. Install Node.js 20.19 or newer, then run
<code>make run</code> again (it builds the app when node is present), or build it
once with <code>make frontend-build</code>.</p>
<p>The API answers at <a href="/api/articles">/api</a> and its documentation is at
<a href="/docs">/docs</a>.</p>
</body>
</html>
"""


class ClientPathConverter(PathConverter):
    """Any path except the API's and the docs' own (``api/…``, ``docs/…``)."""

    regex = r"(?!(?:api|docs)(?:/|$))[^/].*?"


blp = Blueprint("webapp", __name__)


def init_app(app: Flask) -> None:
    app.config.setdefault("FRONTEND_DIST", os.environ.get("FRONTEND_DIST") or str(DEFAULT_DIST))
    app.url_map.converters["client_path"] = ClientPathConverter
    app.register_blueprint(blp)


def _dist() -> Path:
    return Path(current_app.config["FRONTEND_DIST"])


def _index(dist: Path) -> Response:
    response = send_from_directory(dist, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.get("/")
def index() -> Response:
    dist = _dist()
    if not (dist / "index.html").is_file():
        return Response(NOT_BUILT, mimetype="text/html")
    return _index(dist)


@blp.get("/<client_path:path>")
def client_route(path: str) -> Response:
    dist = _dist()
    if not (dist / "index.html").is_file():
        return Response(NOT_BUILT, status=404, mimetype="text/html")
    if (dist / path).is_file():
        immutable = PurePosixPath(path).parts[0] == "assets"
        response = send_from_directory(dist, path, max_age=ASSET_MAX_AGE if immutable else 0)
        if immutable:
            response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}, immutable"
        return response
    if PurePosixPath(path).suffix:
        raise NotFound()  # a missing file (a stale script, an image), not a page
    return _index(dist)
