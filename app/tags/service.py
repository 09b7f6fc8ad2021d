"""Tags in use, most used first."""

from sqlalchemy import select

from app.data import change_feed
from app.extensions import db
from app.models import CodePointOrder, Tag


def popular_tags() -> list[str]:
    """Every tag on at least one article, the most used first, then by name (code points).

    ``Tag.article_count`` is a running total (app/data/counters.py), so this reads
    the tags table alone instead of aggregating every article's tags.
    """
    change_feed.depends_on("tags")
    return list(
        db.session.scalars(
            select(Tag.name)
            .where(Tag.article_count > 0)
            .order_by(Tag.article_count.desc(), CodePointOrder(Tag.name))
        )
    )
