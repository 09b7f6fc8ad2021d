"""API contracts for articles, the feed and favorites."""

from typing import Any

import marshmallow as ma
from marshmallow import validate

from app.models import TAG_MAX_LENGTH, TITLE_MAX_LENGTH
from app.profiles.schemas import ProfileSchema
from app.text import canonical_tag
from app.web.fields import (
    NOT_BLANK_PATTERN,
    AsciiInteger,
    BaseSchema,
    PartialUpdateSchema,
    String,
    Timestamp,
    max_length,
    not_blank,
)

MAX_PAGE_SIZE = 100
MAX_OFFSET = 2**31 - 1
MAX_TAGS = 50
DESCRIPTION_MAX_LENGTH = 10_000


def title_field(**kwargs) -> String:
    return String(validate=[not_blank, max_length(TITLE_MAX_LENGTH)], **kwargs)


def description_field(**kwargs) -> String:
    return String(validate=[not_blank, max_length(DESCRIPTION_MAX_LENGTH)], **kwargs)


def body_field(**kwargs) -> String:
    return String(validate=not_blank, **kwargs)


class TagName(String):
    """A tag, loaded in its canonical form (``app.text.canonical_tag``).

    Blank means what the published pattern says, judged on the text as sent;
    the length limit applies to the canonical form, which is what is stored
    (NFKC may lengthen text). A tag that canonicalises to nothing (only format
    characters outside the Basic Multilingual Plane) is dropped like a duplicate.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        not_blank(text)
        return canonical_tag(text)


def tag_list_field(**kwargs) -> ma.fields.List:
    return ma.fields.List(
        TagName(
            # Said of the list, where the message lands: "is too long" read as too many tags.
            validate=validate.Length(
                max=TAG_MAX_LENGTH, error="has a tag that is too long (maximum is {max} characters)"
            ),
            metadata={"pattern": NOT_BLANK_PATTERN},
        ),
        validate=validate.Length(max=MAX_TAGS, error="has too many tags (maximum is {max})"),
        metadata={
            "description": "Each tag is stored as readers see it: NFKC-normalised, invisible "
            "format characters (U+200B, U+FEFF…) removed, whitespace trimmed and runs of it "
            "collapsed to one space; the maximum length applies to that form. Duplicates "
            "(in that form) are dropped; tags read back in code point order."
        },
        **kwargs,
    )


class PaginationQuerySchema(BaseSchema):
    limit = AsciiInteger(
        load_default=20,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE, error="must be between {min} and {max}"),
        metadata={"description": "The number of articles to return."},
    )
    offset = AsciiInteger(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_OFFSET, error="must be between {min} and {max}"),
        metadata={"description": "The number of articles to skip."},
    )


class ArticleListQuerySchema(PaginationQuerySchema):
    tag = String(
        metadata={"description": "Only articles with this tag (compared in its canonical form)."}
    )
    author = String(
        metadata={"description": "Only articles by this username (matched as usernames are)."}
    )
    favorited = String(
        metadata={
            "description": "Only articles favorited by this username (matched as usernames are)."
        }
    )


class NewArticleSchema(BaseSchema):
    title = title_field(required=True)
    description = description_field(required=True)
    body = body_field(required=True)
    tag_list = tag_list_field()


class NewArticleRequestSchema(BaseSchema):
    article = ma.fields.Nested(NewArticleSchema, required=True)


class UpdateArticleSchema(PartialUpdateSchema):
    """Only the fields sent are changed; a new title gives a new slug."""

    envelope = "article"

    title = title_field()
    description = description_field()
    body = body_field()
    tag_list = tag_list_field()


class UpdateArticleRequestSchema(BaseSchema):
    article = ma.fields.Nested(UpdateArticleSchema, required=True)


class ArticleListItemSchema(BaseSchema):
    """An article as lists show it: everything but the body."""

    slug = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    tag_list = ma.fields.List(ma.fields.String(), required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    favorited = ma.fields.Boolean(required=True)
    favorites_count = ma.fields.Integer(required=True)
    author = ma.fields.Nested(ProfileSchema, required=True)


class ArticleSchema(ArticleListItemSchema):
    body = ma.fields.String(required=True)


class SingleArticleResponseSchema(BaseSchema):
    article = ma.fields.Nested(ArticleSchema, required=True)


class MultipleArticlesResponseSchema(BaseSchema):
    articles = ma.fields.List(ma.fields.Nested(ArticleListItemSchema), required=True)
    articles_count = ma.fields.Integer(
        required=True, metadata={"description": "How many articles match, across all pages."}
    )
