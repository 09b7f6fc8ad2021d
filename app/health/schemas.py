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
    replicas = ma.fields.List(
        ma.fields.Nested(lambda: ReplicaStatusSchema()),
        metadata={
            "description": "Each read replica (DATABASE_REPLICA_URLS) and whether it serves; "
            "absent without replicas. A replica out of rotation does not make the app unready: "
            "the primary serves its reads."
        },
    )


class ReplicaStatusSchema(BaseSchema):
    name = ma.fields.String(required=True, metadata={"example": "10.0.0.12:5432"})
    serving = ma.fields.Boolean(
        required=True, metadata={"description": "Whether it serves reads now."}
    )
    problem = ma.fields.String(
        metadata={"description": "Why it does not serve (down, promoted, lagging)."}
    )
