"""The field vocabulary of every schema: field types, validators, the patterns they publish.

``BaseSchema`` puts camelCase on the wire with Conduit's validation messages;
``PartialUpdateSchema`` wants at least one field. ``String`` refuses what no
database stores, ``not_blank`` wants one visible character, and the patterns
say the same to clients in the OpenAPI document (``app.web.api`` publishes them).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import validate

from app.text import character_class
from app.web.fast_dump import FastDumpSchema

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


class Email(String, ma.fields.Email):
    """An email address, refused as ``String`` refuses text before its address check runs.

    marshmallow's check hands a domain that fails its pattern to an IDNA check,
    which let a lone surrogate through to the database driver (a 500).
    """

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
