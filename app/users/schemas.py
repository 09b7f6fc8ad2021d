"""API contracts for users and authentication."""

import re

import marshmallow as ma
from marshmallow import validate

from app.models import EMAIL_MAX_LENGTH, URL_MAX_LENGTH, USERNAME_MAX_LENGTH
from app.text import character_class, ecma_anchored, identity_key, normalize_email
from app.web.fields import (
    CANT_BE_BLANK,
    BaseSchema,
    Email,
    PartialUpdateSchema,
    String,
    max_length,
    not_blank,
)

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256
BIO_MAX_LENGTH = 10_000


# Letters and combining marks of any script (so both the NFC and the NFD
# spelling of "José" are letters), decimal digits, "_", "." and "-", spelled
# out as code point ranges: ECMA-262 (with or without the ``u`` flag) and
# Python read the published pattern identically, and no engine's idea of ``\w``
# matters. A username is a URL path segment (/api/profiles/<username>), so "."
# and "..", which URL parsers remove as dot segments, are refused.
USERNAME_CHARACTERS = "-_." + character_class("word")
# Not "." or "..", and not starting with a combining mark (it has nothing to sit on).
USERNAME_PATTERN, _USERNAME = ecma_anchored(
    r"(?!\.\.?$)(?![" + character_class("mark") + "])[" + USERNAME_CHARACTERS + "]+"
)
_DOT_SEGMENT = re.compile(r"\.\.?\Z")


class UsernameRule(validate.Regexp):
    """``USERNAME_PATTERN``, as published (``regex``) and as read by ECMA-262 (``__call__``)."""

    def __init__(self) -> None:
        super().__init__(
            USERNAME_PATTERN, error="can only contain letters, digits, '_', '.' and '-'"
        )

    def __call__(self, value: str) -> str:  # type: ignore[override]
        if _DOT_SEGMENT.match(value):
            raise ma.ValidationError("cannot be '.' or '..'")
        if _USERNAME.match(value) is None:
            raise ma.ValidationError(self.error)
        return value


def username_field(**kwargs) -> String:
    return String(
        validate=[not_blank, max_length(USERNAME_MAX_LENGTH), UsernameRule()],
        metadata={
            "description": "Letters (of any script, in the Basic Multilingual Plane), digits, "
            "'_', '.' and '-'; not '.' or '..'. Shown as typed; unique and looked up "
            "ignoring case and Unicode width and normalisation (NFKC, case-folded)."
        },
        **kwargs,
    )


def _email_forms_fit(value: str) -> None:
    """The stored (lower-cased) and compared (NFKC) forms may be longer than what was typed.

    ``"İ".lower()`` is two characters; a column that cannot hold the stored
    form would make PostgreSQL refuse what SQLite stores.
    """
    if max(len(normalize_email(value)), len(identity_key(value))) > EMAIL_MAX_LENGTH:
        raise ma.ValidationError(f"is too long (maximum is {EMAIL_MAX_LENGTH})")


def email_field(**kwargs) -> Email:
    return Email(
        validate=[max_length(EMAIL_MAX_LENGTH), _email_forms_fit],
        metadata={
            "description": "Unique ignoring case and Unicode width and normalisation "
            "(NFKC, case-folded), at most 254 characters in that form."
        },
        **kwargs,
    )


def _password_length(value: str) -> None:
    if not PASSWORD_MIN_LENGTH <= len(value) <= PASSWORD_MAX_LENGTH:
        raise ma.ValidationError(
            f"must be between {PASSWORD_MIN_LENGTH} and {PASSWORD_MAX_LENGTH} characters"
        )


def password_field(**kwargs) -> String:
    """A new password: 8 to 256 characters, not all of them blank.

    Spaces are allowed (NIST SP 800-63B), but a password of spaces or of
    characters that show nothing only is refused when it is set: a blank one
    cannot be typed back reliably.
    """
    return String(
        validate=[
            validate.Length(
                min=PASSWORD_MIN_LENGTH,
                max=PASSWORD_MAX_LENGTH,
                error="must be between {min} and {max} characters",
            ),
            not_blank,
        ],
        load_only=True,
        metadata={"format": "password"},
        **kwargs,
    )


def _empty_or_password_length(value: str) -> None:
    if value != "":
        _password_length(value)
        not_blank(value)


def new_password_field() -> String:
    """The settings form's password: ``""`` (a field left blank) keeps the current one."""
    return String(
        validate=_empty_or_password_length,
        load_only=True,
        metadata={
            "format": "password",
            "description": (
                "A new password; an empty string keeps the current one, and a blank one "
                "(spaces or characters that show nothing only) is refused."
            ),
            "anyOf": [
                {"type": "string", "maxLength": 0},
                {
                    "type": "string",
                    "minLength": PASSWORD_MIN_LENGTH,
                    "maxLength": PASSWORD_MAX_LENGTH,
                },
            ],
        },
    )


class LoginUserSchema(BaseSchema):
    email = String(required=True, validate=not_blank)
    # Any non-empty password is checked against the account's: one set before blank
    # passwords were refused (all spaces) must still sign in.
    password = String(
        required=True,
        validate=validate.Length(min=1, error=CANT_BE_BLANK),
        load_only=True,
        metadata={"format": "password"},
    )


class LoginUserRequestSchema(BaseSchema):
    user = ma.fields.Nested(LoginUserSchema, required=True)


class NewUserSchema(BaseSchema):
    username = username_field(required=True)
    email = email_field(required=True)
    password = password_field(required=True)


class NewUserRequestSchema(BaseSchema):
    user = ma.fields.Nested(NewUserSchema, required=True)


class UpdateUserSchema(PartialUpdateSchema):
    """Only the fields sent are changed; at least one is required.

    Public Conduit frontends send every settings field, the blank ones too:
    ``"password": ""`` keeps the password, ``"image": ""`` and ``"bio": ""``
    clear them.
    """

    envelope = "user"

    email = email_field()
    username = username_field()
    password = new_password_field()
    bio = String(
        allow_none=True,
        validate=max_length(BIO_MAX_LENGTH),
        metadata={"description": "An empty or blank string clears it (null)."},
    )
    image = String(
        allow_none=True,
        validate=max_length(URL_MAX_LENGTH),
        metadata={"description": "An empty or blank string clears it (null)."},
    )


class UpdateUserRequestSchema(BaseSchema):
    user = ma.fields.Nested(UpdateUserSchema, required=True)


class UserSchema(BaseSchema):
    email = ma.fields.String(required=True)
    token = ma.fields.String(required=True)
    username = ma.fields.String(required=True)
    bio = ma.fields.String(required=True, allow_none=True)
    image = ma.fields.String(required=True, allow_none=True)


class UserResponseSchema(BaseSchema):
    user = ma.fields.Nested(UserSchema, required=True)
