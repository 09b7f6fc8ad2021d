"""flask-smorest wiring shared by every resource.

``ConduitApi`` renders every error in the Conduit envelope, ``Blueprint``
parses JSON strictly, and ``BaseSchema`` puts camelCase on the wire with
Conduit's validation messages.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from apispec.ext.marshmallow.common import resolve_schema_instance
from flask import Flask, Request
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import prepare_response
from marshmallow import validate
from marshmallow.utils import missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, IntegerConverter

from app.errors import AUTHENTICATE_CHALLENGE, ErrorResponseSchema, abort, render_http_exception
from app.text import character_class
from app.web.fast_dump import FastDumpSchema
from app.web.http_edges import MAX_URL_LENGTH

CANT_BE_BLANK = "can't be blank"


def camelcase(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class String(ma.fields.String):
    """A string that the databases can store: no NUL character, valid UTF-8."""

    default_error_messages = {"invalid_text": "contains characters that are not allowed"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("invalid_text")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("invalid_text") from None
        return text


class Email(ma.fields.Email):
    default_error_messages = {"invalid": "is invalid"}


# Non-blank: at least one visible character, i.e. one that is neither whitespace
# (to Python or to JavaScript, which adds U+FEFF) nor a character that shows
# nothing (``app.text.is_invisible``: U+200B, U+3164, U+034F…), so the pattern published in
# the spec means the same to every client's regex engine as it does here.
_VISIBLE = r"[^\s\x1c-\x1f\x85" + character_class("invisible") + "]"
_NOT_BLANK = re.compile(_VISIBLE)
# What a ``String`` accepts, published: no NUL anywhere (``String`` refuses it)…
NO_NUL_PATTERN = r"^[^\x00]*$"
# …and, for a field that must not be blank, at least one visible character.
NOT_BLANK_PATTERN = r"^[^\x00]*" + _VISIBLE.replace("[^", r"[^\x00", 1) + r"[^\x00]*$"


def not_blank(value: str) -> None:
    if _NOT_BLANK.search(value) is None:
        raise ma.ValidationError(CANT_BE_BLANK)


class Timestamp(ma.fields.DateTime):
    """ISO-8601 UTC with milliseconds, always: ``2024-01-01T00:00:00.000Z``."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any):
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite hands back naive UTC datetimes
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class PathSegmentConverter(BaseConverter):
    """The default ``<name>`` path converter, minus NUL (which no database stores).

    A path carrying one simply matches no route: 404, not a database error.
    """

    regex = r"[^/\x00]+"


class AsciiIntegerConverter(IntegerConverter):
    """``<int:name>``: ASCII digits only.

    Werkzeug's own converter matches ``\\d``, which includes every script's
    digits (Python's ``int("٥٢٣")`` is 523, so ``DELETE …/comments/٥٢٣`` would
    delete comment 523). A path with other digits matches no route: 404.
    """

    regex = r"[0-9]+"


class AsciiInteger(ma.fields.Integer):
    """An integer from a query string: ASCII digits with an optional ``-``, nothing else.

    ``int()`` also takes other scripts' digits, ``_`` separators and
    surrounding whitespace; the published ``type: integer`` means none of those.
    """

    def _validated(self, value: Any) -> Any:
        if isinstance(value, str) and _ASCII_INTEGER.fullmatch(value) is None:
            raise self.make_error("invalid")
        return super()._validated(value)


_ASCII_INTEGER = re.compile(r"-?[0-9]+")


class BaseSchema(FastDumpSchema):
    """camelCase on the wire, unknown fields ignored, Conduit's messages."""

    class Meta:
        unknown = ma.EXCLUDE

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        field_obj.data_key = camelcase(field_obj.data_key or field_name)
        field_obj.error_messages.update({"required": CANT_BE_BLANK, "null": CANT_BE_BLANK})


def max_length(maximum: int) -> validate.Length:
    return validate.Length(max=maximum, error="is too long (maximum is {max})")


class PartialUpdateSchema(BaseSchema):
    """Every field optional, but at least one must be sent.

    ``envelope`` names the field the complaint is reported under.
    """

    envelope: ClassVar[str] = "body"

    @ma.validates_schema
    def at_least_one_field(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError("at least one field is required", self.envelope)


class DuplicateMember(ValueError):
    """A JSON object names one member twice (RFC 8259 §4 leaves the meaning open)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


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
            return json.loads(
                req.get_data(cache=True).decode(),
                object_pairs_hook=_members,
                parse_constant=_not_json,
            )
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
            # The standard library's parser recurses once per level: 100,000
            # ``[`` exhaust the stack long before the 1 MiB body limit.
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
