"""The one error envelope: ``{"errors": {"<field or body>": ["message"]}}``.

Every error the API answers with, whatever raised it, is rendered here, so
clients can rely on a single shape while status codes stay distinct:
401 no or bad token, 403 not yours, 404 missing, 409 conflict, 422 invalid,
429 throttled (with ``Retry-After``; app/web/throttling.py), 503 the database
is unavailable (with ``Retry-After``; app/data/unit_of_work.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import marshmallow as ma
from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

# Request locations that webargs nests its messages under; clients care about
# the field, not where the parser looked for it.
_LOCATIONS = {"json", "query", "querystring", "view_args", "path", "headers", "form", "files"}

GENERIC_MESSAGES = {
    400: "is malformed",
    401: "is missing or invalid",
    403: "is forbidden",
    404: "not found",
    405: "method is not allowed",
    409: "conflicts with the current state",
    413: "is too large",
    414: "is too long",
    415: "must be JSON (Content-Type: application/json)",
    422: "is invalid",
    429: "too many requests",
    500: "internal server error",
    503: "service unavailable",
}


# The challenge every 401 carries (``Authorization: Token <jwt>``).
AUTHENTICATE_CHALLENGE = "Token"


class ErrorResponseSchema(ma.Schema):
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        required=True,
        metadata={"description": "Messages keyed by field name, or `body`."},
    )


class ApiError(HTTPException):
    """An HTTP error that carries Conduit-shaped messages."""

    def __init__(
        self,
        code: int,
        errors: Mapping[str, Iterable[str]],
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__()
        self.code = code
        self.errors = {field: list(messages) for field, messages in errors.items()}
        self.headers = dict(headers or {})

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        """werkzeug's headers plus this error's own (``Retry-After`` on a 429 or 503)."""
        return [*super().get_headers(*args, **kwargs), *self.headers.items()]


def abort(code: int, field: str, message: str) -> NoReturn:
    """Stop the request with ``code`` and one message about ``field``."""
    raise ApiError(code, {field: [message]})


def flatten_messages(messages: Any, field: str | None = None) -> dict[str, list[str]]:
    """Turn webargs/marshmallow nested messages into ``{field: [messages]}``.

    ``{"json": {"user": {"email": ["is invalid"]}}}`` becomes
    ``{"email": ["is invalid"]}``; list indexes and ``_schema`` keep the name
    of the field that holds them; anything without a field is ``body``.
    """
    flat: dict[str, list[str]] = {}

    def walk(node: Any, name: str | None) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if name is None and key in _LOCATIONS:
                    walk(value, None)
                elif isinstance(key, int) or key == "_schema":
                    walk(value, name)
                else:
                    walk(value, str(key))
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item, name)
        else:
            flat.setdefault(name or "body", []).append(str(node))

    walk(messages, field)
    return flat


def error_response(code: int, errors: Mapping[str, list[str]]) -> Response:
    response = jsonify({"errors": dict(errors)})
    response.status_code = code
    return response


def render_http_exception(error: HTTPException) -> Response:
    """Render any ``HTTPException`` (ours, webargs', werkzeug's) in the envelope."""
    code = error.code or 500
    if isinstance(error, ApiError):
        errors = error.errors
    else:
        data = getattr(error, "data", None) or {}
        messages = data.get("errors") or data.get("messages")
        errors = flatten_messages(messages) if messages else {}
        if not errors:
            errors = {"body": [GENERIC_MESSAGES.get(code, error.description or "error")]}
    response = error_response(code, errors)
    # Keep the headers werkzeug computed (``Allow`` on 405, ``WWW-Authenticate``…).
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    data = getattr(error, "data", None) or {}
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    if code == 401 and "WWW-Authenticate" not in response.headers:
        # RFC 9110 §15.5.2: a 401 names the scheme that would be accepted.
        response.headers["WWW-Authenticate"] = AUTHENTICATE_CHALLENGE
    return response
