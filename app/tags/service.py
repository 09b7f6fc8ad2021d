"""Tags in use, most used first."""

from sqlalchemy import func, select

from app.extensions import db
from app.models import ArticleTag, Tag


def popular_tags() -> list[str]:
    """Every tag on at least one article, the most used first, then by name."""
    usage = func.count(ArticleTag.article_id)
    return list(
        db.session.scalars(
            select(Tag.name)
            .join(ArticleTag, ArticleTag.tag_id == Tag.id)
            .group_by(Tag.id, Tag.name)
            .order_by(usage.desc(), Tag.name)
        )
    )
