"""API contracts for comments."""

import marshmallow as ma

from app.profiles.schemas import ProfileSchema
from app.web.fields import BaseSchema, String, Timestamp, max_length, not_blank

COMMENT_MAX_LENGTH = 10_000


class NewCommentSchema(BaseSchema):
    body = String(
        required=True,
        validate=[
            not_blank,
            max_length(COMMENT_MAX_LENGTH),
        ],
    )


class NewCommentRequestSchema(BaseSchema):
    comment = ma.fields.Nested(NewCommentSchema, required=True)


class CommentSchema(BaseSchema):
    id = ma.fields.Integer(required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    body = ma.fields.String(required=True)
    author = ma.fields.Nested(ProfileSchema, required=True)


class SingleCommentResponseSchema(BaseSchema):
    comment = ma.fields.Nested(CommentSchema, required=True)


class MultipleCommentsResponseSchema(BaseSchema):
    comments = ma.fields.List(ma.fields.Nested(CommentSchema), required=True)
