"""flask-smorest wiring shared by every resource.

``ConduitApi`` renders every error in the Conduit envelope, ``Blueprint``
parses JSON strictly, and ``BaseSchema`` puts camelCase on the wire with
Conduit's validation messages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import marshmallow as ma
from flask import Flask, Request
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from marshmallow import validate
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from app.errors import ErrorResponseSchema, abort, render_http_exception
from app.fast_dump import FastDumpSchema

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


def not_blank(value: str) -> None:
    if not value.strip():
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


class JSONParser(FlaskParser):
    """Answers 415 to a body that is not JSON instead of reporting it missing."""

    def load_json(self, req: Request, schema: ma.Schema) -> Any:
        if req.get_data(cache=True) and not req.is_json:
            abort(415, "body", "must be JSON (Content-Type: application/json)")
        return super().load_json(req, schema)

    def _handle_invalid_json_error(self, error: Exception, req: Request, *args: Any, **kwargs: Any):
        abort(400, "body", "is not valid JSON")


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = JSONParser()


class ConduitApi(Api):
    """flask-smorest's ``Api`` speaking the Conduit error envelope."""

    ERROR_SCHEMA = ErrorResponseSchema

    def init_app(self, app: Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
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

    def handle_http_exception(self, error: HTTPException):
        return render_http_exception(error)
