"""Interactive API docs at ``/docs``, every asset served by the app itself.

flask-smorest renders the Swagger UI page (``OPENAPI_SWAGGER_UI_PATH``) and
points it at the live spec (``/openapi.json``) and at ``OPENAPI_SWAGGER_UI_URL``
for its scripts and styles. This blueprint serves those files from the Swagger
UI build that the ``flask-swagger-ui`` package ships (its Flask blueprint is not
used), so the page works on a machine with no internet and without node.

The page itself is app/templates/swagger_ui.html, which Flask finds before
flask-smorest's own: the same page without its inline script, whose work
``swagger-initializer.js`` (app/web/docs_assets/, served here too) does, so the
page's Content-Security-Policy allows no inline script (app/web/security_headers.py).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, send_from_directory

ASSETS_URL = "/docs/assets/"
SWAGGER_UI_DIST = Path(str(files("flask_swagger_ui") / "dist"))
OWN_ASSETS = Path(__file__).resolve().parent / "docs_assets"

blp = Blueprint("docs_assets", __name__, url_prefix=ASSETS_URL.rstrip("/"))


@blp.get("/<path:filename>")
def asset(filename: str) -> Response:
    """A Swagger UI file (``swagger-ui-bundle.js``, ``swagger-ui.css``…) or the page's starter."""
    directory = OWN_ASSETS if (OWN_ASSETS / filename).is_file() else SWAGGER_UI_DIST
    return send_from_directory(directory, filename, max_age=24 * 60 * 60)
