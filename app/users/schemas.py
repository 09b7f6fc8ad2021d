"""API contracts for users and authentication."""

import marshmallow as ma
from marshmallow import validate

from app.api import BaseSchema, Email, PartialUpdateSchema, String, max_length, not_blank
from app.models import EMAIL_MAX_LENGTH, URL_MAX_LENGTH, USERNAME_MAX_LENGTH

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256
BIO_MAX_LENGTH = 10_000


def username_field(**kwargs) -> String:
    return String(
        validate=[
            not_blank,
            max_length(USERNAME_MAX_LENGTH),
            validate.Regexp(
                r"^[\w.-]+$",
                error="can only contain letters, digits, '_', '.' and '-'",
            ),
        ],
        **kwargs,
    )


def email_field(**kwargs) -> Email:
    return Email(
        validate=max_length(EMAIL_MAX_LENGTH),
        **kwargs,
    )


def password_field(**kwargs) -> String:
    return String(
        validate=validate.Length(
            min=PASSWORD_MIN_LENGTH,
            max=PASSWORD_MAX_LENGTH,
            error="must be between {min} and {max} characters",
        ),
        load_only=True,
        metadata={"format": "password"},
        **kwargs,
    )


class LoginUserSchema(BaseSchema):
    email = String(required=True, validate=not_blank)
    password = String(
        required=True, validate=not_blank, load_only=True, metadata={"format": "password"}
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
    """Only the fields sent are changed; at least one is required."""

    envelope = "user"

    email = email_field()
    username = username_field()
    password = password_field()
    bio = String(allow_none=True, validate=max_length(BIO_MAX_LENGTH))
    image = String(
        allow_none=True,
        validate=max_length(URL_MAX_LENGTH),
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
