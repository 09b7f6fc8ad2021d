"""API contracts for tags."""

import marshmallow as ma

from app.web.fields import BaseSchema


class TagsResponseSchema(BaseSchema):
    tags = ma.fields.List(ma.fields.String(), required=True)
