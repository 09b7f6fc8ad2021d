"""API contracts for tags."""

import marshmallow as ma

from app.api import BaseSchema


class TagsResponseSchema(BaseSchema):
    tags = ma.fields.List(ma.fields.String(), required=True)
