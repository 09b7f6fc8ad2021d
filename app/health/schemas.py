"""API contracts for the probes."""

import marshmallow as ma

from app.web.fields import BaseSchema


class HealthResponseSchema(BaseSchema):
    status = ma.fields.String(required=True, metadata={"example": "ok"})


class ReadinessResponseSchema(BaseSchema):
    status = ma.fields.String(required=True, metadata={"example": "ready"})
    revision = ma.fields.String(
        required=True,
        metadata={"description": "The migration revision the database schema is at."},
    )
