"""Cross-origin calls to the API (the Fetch standard's CORS protocol), by flask-cors.

Browsers on the origins ``CORS_ORIGINS`` names (``*``: any) may call
``/api/…``. Besides ``Authorization`` and ``Content-Type`` they may send the
conditional headers the API honours and the request id, and read the
validators it sends (``ETag``, ``Last-Modified``), ``Retry-After``, the
request id and ``X-Database-Position``, so a cross-origin client can
revalidate, refuse lost updates (RFC 9110 §13.1) and read its own writes
from a replica.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_cors.core import get_cors_headers, get_cors_options
from werkzeug.datastructures import Headers

from app.data import replicas
from app.extensions import cors

API_RESOURCES = r"/api/*"


def settings(app: Flask) -> dict[str, Any]:
    """flask-cors's keyword arguments for ``app`` (its ``CORS_ORIGINS`` setting)."""
    return {
        "resources": {API_RESOURCES: {"origins": app.config["CORS_ORIGINS"]}},
        "allow_headers": [
            "Authorization",
            "Content-Type",
            "X-Request-ID",
            "If-Match",
            "If-None-Match",
            "If-Modified-Since",
            "If-Unmodified-Since",
            replicas.HEADER,
        ],
        # X-Database-Position: the client's last write, sent back on its reads.
        "expose_headers": ["X-Request-ID", "ETag", "Last-Modified", "Retry-After", replicas.HEADER],
        "max_age": 600,
    }


def init_app(app: Flask) -> None:
    cors.init_app(app, **settings(app))


def api_read_headers_without_origin(app: Flask) -> list[tuple[str, str]]:
    """The headers flask-cors adds to an API ``GET`` that sends no ``Origin``, in its order.

    Computed by flask-cors itself, as its ``after_request`` function computes
    them for such a request: the resource's options merged as ``init_app``
    merges them, then ``get_cors_headers``. Cache hits answered before
    Flask's request context send these (app/web/early_hits.py).
    """
    arguments = settings(app)
    options = get_cors_options(app, {}, arguments, arguments["resources"][API_RESOURCES])
    computed = get_cors_headers(options, Headers(), "GET")
    return [(name, str(value)) for name, value in computed.items()]
