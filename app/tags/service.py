"""Tags in use, most used first."""

from sqlalchemy import func, select

from app.data import change_feed, counters
from app.extensions import db
from app.models import CodePointOrder, Tag


def popular_tags() -> list[str]:
    """Every tag on at least one article, the most used first, then by name (code points).

    ``Tag.article_count`` plus the tag's pending deltas is a running total
    (app/data/counters.py), so this reads the tags table and the few pending
    deltas instead of aggregating every article's tags.
    """
    change_feed.depends_on("tags")
    pending = counters.pending_per_tag()
    total = Tag.article_count + func.coalesce(pending.c.delta, 0)
    return list(
        db.session.scalars(
            select(Tag.name)
            .outerjoin(pending, pending.c.tag_id == Tag.id)
            .where(total > 0)
            .order_by(total.desc(), CodePointOrder(Tag.name))
        )
    )
