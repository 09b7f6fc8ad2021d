"""API contracts for profiles."""

import marshmallow as ma

from app.web.fields import BaseSchema


class ProfileSchema(BaseSchema):
    username = ma.fields.String(required=True)
    bio = ma.fields.String(required=True, allow_none=True)
    image = ma.fields.String(required=True, allow_none=True)
    following = ma.fields.Boolean(required=True)


class ProfileResponseSchema(BaseSchema):
    profile = ma.fields.Nested(ProfileSchema, required=True)
