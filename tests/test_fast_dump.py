"""``FastDumpSchema`` gives exactly marshmallow's output, faster."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import marshmallow as ma
import pytest

from app.articles.schemas import MultipleArticlesResponseSchema, SingleArticleResponseSchema
from app.comments.schemas import MultipleCommentsResponseSchema
from app.profiles.schemas import ProfileResponseSchema
from app.tags.schemas import TagsResponseSchema
from app.web.fields import BaseSchema, Timestamp


def _slow(schema: ma.Schema, obj, many=None):
    """marshmallow's own dump, bypassing the plan."""
    return ma.Schema.dump(schema, obj, many=many)


AUTHOR = {"username": "jake", "bio": None, "image": "https://x/y.png", "following": True}
ARTICLE = {
    "slug": "how-to",
    "title": "How to",
    "description": "Ever wonder?",
    "body": "It takes a Jacobian",
    "tag_list": ["dragons", "training"],
    "created_at": datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    "updated_at": datetime(2024, 1, 2, 3, 4, 5),  # naive, as SQLite returns them
    "favorited": False,
    "favorites_count": 3,
    "author": AUTHOR,
}
COMMENT = {
    "id": 1,
    "body": "Nice",
    "created_at": ARTICLE["created_at"],
    "updated_at": ARTICLE["created_at"],
    "author": AUTHOR,
}

CASES = [
    (MultipleArticlesResponseSchema(), {"articles": [ARTICLE] * 3, "articles_count": 3}),
    (MultipleArticlesResponseSchema(), {"articles": [], "articles_count": 0}),
    (SingleArticleResponseSchema(), {"article": ARTICLE}),
    (SingleArticleResponseSchema(), {"article": {**ARTICLE, "tag_list": []}}),
    (MultipleCommentsResponseSchema(), {"comments": [COMMENT, COMMENT]}),
    (ProfileResponseSchema(), {"profile": AUTHOR}),
    (TagsResponseSchema(), {"tags": ["a", "b"]}),
    # Values of another type than the field's go through the field itself.
    (
        SingleArticleResponseSchema(),
        {"article": {**ARTICLE, "favorites_count": Decimal("7"), "title": 12, "favorited": 1}},
    ),
    (TagsResponseSchema(), {"tags": ["a", 5, None]}),
    # Missing keys are left out, as marshmallow does.
    (SingleArticleResponseSchema(), {"article": {"slug": "only"}}),
    (ProfileResponseSchema(), {}),
]


@pytest.mark.parametrize(("schema", "obj"), CASES)
def test_fast_dump_equals_marshmallow(schema: ma.Schema, obj) -> None:
    assert schema.dump(obj) == _slow(schema, obj)


def test_many_and_none_match_marshmallow() -> None:
    from app.profiles.schemas import ProfileSchema

    schema = ProfileSchema()
    assert schema.dump([AUTHOR, AUTHOR], many=True) == _slow(schema, [AUTHOR, AUTHOR], many=True)
    assert schema.dump(None, many=True) == _slow(schema, None, many=True)
    assert schema.dump(None) == _slow(schema, None)


def test_objects_that_are_not_dicts_take_marshmallows_path() -> None:
    class Profile:
        username, bio, image, following = "jake", None, None, False

    from app.profiles.schemas import ProfileSchema

    assert ProfileSchema().dump(Profile()) == _slow(ProfileSchema(), Profile())


def test_schemas_with_hooks_or_defaults_are_not_planned() -> None:
    class WithHook(BaseSchema):
        name = ma.fields.String()

        @ma.post_dump
        def shout(self, data, **kwargs):
            return {key: value.upper() for key, value in data.items()}

    class WithDefault(BaseSchema):
        when = Timestamp(dump_default=datetime(2024, 1, 1, tzinfo=UTC))
        items = ma.fields.String()  # a dict method's name: marshmallow would getattr

    assert WithHook().dump({"name": "x"}) == {"name": "X"}
    empty: dict = {}
    assert WithDefault().dump(empty) == _slow(WithDefault(), empty)
    assert WithDefault()._plan() is None
