"""flask-smorest wiring shared by every resource.

``ConduitApi`` renders every error in the Conduit envelope and publishes what
the validators of ``app.web.fields`` mean, ``Blueprint`` parses JSON strictly,
and ``api`` is the one instance ``create_app`` binds.
"""

from __future__ import annotations

import json
import re
from typing import Any

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from apispec.ext.marshmallow.common import resolve_schema_instance
from flask import Flask, Request
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import prepare_response
from marshmallow.utils import missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from app.errors import AUTHENTICATE_CHALLENGE, ErrorResponseSchema, abort, render_http_exception
from app.web import conditional_writes
from app.web.fields import (
    NO_NUL_PATTERN,
    NOT_BLANK_PATTERN,
    PartialUpdateSchema,
    String,
    not_blank,
)
from app.web.http_edges import MAX_URL_LENGTH


class DuplicateMember(ValueError):
    """A JSON object names one member twice (RFC 8259 §4 leaves the meaning open)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# No request body nests deeper than a few levels; past this the body is refused before
# the standard library's decoder recurses into it. A decoder recursing near Python's
# limit leaves no room for the garbage collector's finalizers, should a collection
# run meanwhile: they fail (an unraisable RecursionError) instead of releasing what
# they hold.
MAX_JSON_NESTING = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def nested_deeper_than(text: str, limit: int) -> bool:
    """Do ``text``'s arrays and objects nest more than ``limit`` deep (strings ignored)?

    A body with no more than ``limit`` opening brackets in all (nearly every one)
    is answered without walking them.
    """
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    if brackets.count("[") + brackets.count("{") <= limit:
        return False
    depth = 0
    for bracket in brackets:
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # Python's decoder takes NaN and Infinity


def _members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise DuplicateMember(name)
        members[name] = value
    return members


class JSONParser(FlaskParser):
    """Answers 415 to a body that is not JSON instead of reporting it missing,
    and 400 to JSON that is malformed, nested too deeply, holds a number the
    decoder refuses (an integer past CPython's 4,300-digit limit) or names an
    object member twice."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return missing
        try:
            text = req.get_data(cache=True).decode()
            if nested_deeper_than(text, MAX_JSON_NESTING):
                abort(400, "body", "is nested too deeply")
            return json.loads(text, object_pairs_hook=_members, parse_constant=_not_json)
        except DuplicateMember as duplicate:
            abort(400, "body", f"names the member {duplicate.name!r} more than once")
        except ValueError:  # JSONDecodeError, UnicodeDecodeError, the integer digit limit
            abort(400, "body", "is not valid JSON")

    def load_json(self, req: Request, schema: ma.Schema) -> Any:
        if req.get_data(cache=True) and not req.is_json:
            abort(415, "body", "must be JSON (Content-Type: application/json)")
        try:
            return super().load_json(req, schema)
        except RecursionError:
            # The standard library's parser recurses once per level (100,000 ``[``
            # exhaust the stack long before the 1 MiB body limit); MAX_JSON_NESTING
            # refuses such a body first, and this stays as the backstop.
            abort(400, "body", "is nested too deeply")

    def _handle_invalid_json_error(self, error: Exception, req: Request, *args: Any, **kwargs: Any):
        abort(400, "body", "is not valid JSON")


class Blueprint(SmorestBlueprint):
    """flask-smorest's ``Blueprint``: strict JSON bodies, and 503 documented everywhere.

    Every operation of a ``database_backed`` blueprint (the default) may answer
    503 (the database unreachable or busy, a lock past ``DATABASE_LOCK_TIMEOUT``:
    app/data/unit_of_work.py), so each documents it; ``database_backed=False``
    leaves it to the views (the liveness probe touches no database).
    """

    ARGUMENTS_PARSER = JSONParser()

    def __init__(self, *args: Any, database_backed: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.database_backed = database_backed

    def _prepare_response_doc(
        self, doc: dict[str, Any], doc_info: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any]:
        if self.database_backed:
            responses = doc_info.setdefault("response", {}).setdefault("responses", {})
            responses.setdefault(503, ["SERVICE_UNAVAILABLE"])
        prepared: dict[str, Any] = super()._prepare_response_doc(doc, doc_info, **kwargs)
        return prepared


def _not_blank_pattern(
    converter: OpenAPIConverter, field: ma.fields.Field, ret: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """``String``'s rules as a ``pattern`` (no NUL; not blank), unless one is already there."""
    if "pattern" in ret or not isinstance(field, String):
        return {}
    return {"pattern": NOT_BLANK_PATTERN if not_blank in field.validators else NO_NUL_PATTERN}


class ConduitConverter(OpenAPIConverter):
    """Publishes the rules apispec cannot see in the validators: not blank, not empty."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_attribute_function(_not_blank_pattern)

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        jsonschema = super().schema2jsonschema(schema)
        if isinstance(resolve_schema_instance(schema), PartialUpdateSchema):
            jsonschema["minProperties"] = 1
        return jsonschema


class ConduitMarshmallowPlugin(MarshmallowPlugin):
    Converter = ConduitConverter


# What holds for every operation, where clients read the document.
API_DESCRIPTION = (
    "The Conduit (RealWorld) API. Every error answers "
    '`{"errors": {"<field or body>": ["message"]}}`; a 401 carries '
    "`WWW-Authenticate: Token`; a 429 (failed logins or registrations throttled) "
    "carries `Retry-After`, as a 503 may.\n\n"
    "A token lasts until it expires, its account changes its password or signs out "
    "everywhere (`DELETE /api/user/sessions`), or its signing key is retired: then it "
    "is answered 401 and the client signs in again.\n\n"
    "A trailing slash on any path is the same path without it (`/api/articles/` is "
    f"`/api/articles`). URLs longer than {MAX_URL_LENGTH} bytes are refused with 414, bodies over "
    "1 MiB with 413, a body shorter than its `Content-Length` or with a malformed "
    "chunked encoding with 400.\n\n"
    "Usernames and emails are compared as people read them: NFKC-normalised and "
    "case-folded, for uniqueness and every look-up; they are shown as typed. String "
    "patterns are ECMA-262 regular expressions and mean the same with or without the "
    "`u` flag."
)


class ConduitApi(Api):
    """flask-smorest's ``Api`` speaking the Conduit error envelope."""

    ERROR_SCHEMA = ErrorResponseSchema

    def init_app(self, app: Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        spec_kwargs = {
            "marshmallow_plugin": ConduitMarshmallowPlugin(),
            "info": {"description": API_DESCRIPTION},
            **(spec_kwargs or {}),
        }
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.spec.components.parameter(
            conditional_writes.PARAMETER_NAME, "header", conditional_writes.PARAMETER
        )
        self.spec.components.security_scheme(
            "Token",
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Token <jwt>` (or `Bearer <jwt>`), as returned by "
                "registration and login.",
            },
        )

    def _register_responses(self) -> None:
        """flask-smorest's error responses; the 401, 429 and 503 also document their headers."""
        super()._register_responses()
        self._register_error_response(
            "SERVICE_UNAVAILABLE",
            "Service Unavailable: the database cannot be reached or is busy, "
            "and nothing was written; try again later (`Retry-After`, when given).",
            "Retry-After",
            "Seconds to wait before retrying (RFC 9110 §10.2.3).",
            {"type": "integer", "minimum": 0},
        )
        self._register_error_response(
            "TOO_MANY_REQUESTS",
            "Too Many Requests: throttled (failed logins per address or per account, "
            "registrations per address); nothing was done. Try again after `Retry-After`.",
            "Retry-After",
            "Seconds to wait before retrying (RFC 9110 §10.2.3; RFC 6585 §4).",
            {"type": "integer", "minimum": 1},
        )
        self._register_error_response(
            "UNAUTHORIZED",
            "Unauthorized",
            "WWW-Authenticate",
            "The scheme to authenticate with (RFC 9110 §11.6.1).",
            {"type": "string", "const": AUTHENTICATE_CHALLENGE},
        )
        response = {
            "description": conditional_writes.RESPONSE_DESCRIPTION,
            "schema": self.ERROR_SCHEMA,
        }
        prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
        self.spec.components.response(conditional_writes.RESPONSE, response, lazy=True)

    def _register_error_response(
        self,
        name: str,
        description: str,
        header: str,
        header_description: str,
        header_schema: dict[str, Any],
    ) -> None:
        """Register (replace) the error response ``name``, documenting one header it carries."""
        response: dict[str, Any] = {
            "description": description,
            "schema": self.ERROR_SCHEMA,
            "headers": {header: {"description": header_description, "schema": header_schema}},
        }
        prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
        self.spec.components.response(name, response, lazy=True)

    def handle_http_exception(self, error: HTTPException):
        return render_http_exception(error)


api = ConduitApi()  # unbound; ``create_app`` initialises it and registers the blueprints
