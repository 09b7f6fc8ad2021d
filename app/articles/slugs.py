"""Unique, readable slugs derived from titles."""

from __future__ import annotations

from slugify import slugify
from sqlalchemy import or_, select

from app.api import PathSegmentConverter
from app.extensions import db
from app.models import SLUG_MAX_LENGTH, Article

# Room for a "-<n>" suffix within the column.
BASE_MAX_LENGTH = SLUG_MAX_LENGTH - 12
# Paths under /api/articles/ that are routes of their own, never slugs.
RESERVED_SLUGS = frozenset({"feed"})


class ArticleSlugConverter(PathSegmentConverter):
    """``<slug:slug>``: any path segment but the reserved ones.

    Without it ``/api/articles/<slug>`` would also match ``/api/articles/feed``
    for PUT and DELETE (and advertise them in ``Allow``).
    """

    regex = r"(?!(?:" + "|".join(sorted(RESERVED_SLUGS)) + r")\Z)" + PathSegmentConverter.regex


def base_slug(title: str) -> str:
    return slugify(title, max_length=BASE_MAX_LENGTH, word_boundary=True) or "article"


def unique_slug(title: str, exclude_article_id: int | None = None) -> str:
    """The title's slug, suffixed ``-2``, ``-3``… when another article has it."""
    base = base_slug(title)
    stmt = select(Article.slug).where(
        or_(Article.slug == base, Article.slug.startswith(f"{base}-"))
    )
    if exclude_article_id is not None:
        stmt = stmt.where(Article.id != exclude_article_id)
    taken = set(db.session.scalars(stmt)) | RESERVED_SLUGS
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"
