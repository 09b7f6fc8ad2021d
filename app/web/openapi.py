"""The OpenAPI document, rendered from the live schemas without a server or database."""

from __future__ import annotations

import json
from typing import Any

# Settings that let the app be built in memory: nothing here is ever connected to.
_OFFLINE_SETTINGS = {
    "APP_ENV": "testing",
    "DATABASE_URL": "sqlite://",
    "SECRET_KEY": "openapi-generation-only-never-used-to-sign-anything",
}


def openapi_document() -> dict[str, Any]:
    from app import create_app
    from app.web.api import api

    app = create_app(_OFFLINE_SETTINGS)
    with app.app_context():
        return api.spec.to_dict()


def render_openapi() -> str:
    """The document as stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
