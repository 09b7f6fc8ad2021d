"""Tags in use, most used first."""

from functools import cache
from typing import Any

from sqlalchemy import func, select

from app.data import change_feed, counters
from app.extensions import db
from app.models import CodePointOrder, Tag


@cache
def _popular_tags_statement() -> Any:
    """SQL: every tag's name whose running total is above zero, most used first, then by name.

    Built once: the statement has no parameters, and building it anew cost
    about a third of an uncached ``GET /api/tags`` (SQLAlchemy's construction
    and cache key), more than running it.
    """
    pending = counters.pending_per_tag()
    total = Tag.article_count + func.coalesce(pending.c.delta, 0)
    return (
        select(Tag.name)
        .outerjoin(pending, pending.c.tag_id == Tag.id)
        .where(total > 0)
        .order_by(total.desc(), CodePointOrder(Tag.name))
    )


def popular_tags() -> list[str]:
    """Every tag on at least one article, the most used first, then by name (code points).

    ``Tag.article_count`` plus the tag's pending deltas is a running total
    (app/data/counters.py), so this reads the tags table and the few pending
    deltas instead of aggregating every article's tags.
    """
    change_feed.depends_on("tags")
    return list(db.session.scalars(_popular_tags_statement()))
