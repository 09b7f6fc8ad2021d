"""Running totals, kept in step with the rows they count in the same transaction.

``articlesCount`` is an exact count of every match. Counting the whole articles
table (or every article with a popular tag) on each list request grows with
the data; these totals make the unfiltered list, the tag filter and the
popular tags cost the same at any size. Every write that adds or removes an
article or an article's tag adjusts them; ``recount`` rebuilds them from the
rows (after bulk loads such as ``flask seed``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, func, select, update

from app.extensions import db
from app.models import Article, ArticleTag, Counter, Tag
from app.unit_of_work import upsert_adding

ARTICLES = "articles"


def adjust_article_total(delta: int) -> None:
    upsert_adding(Counter, key={"name": ARTICLES}, column="value", delta=delta)


def adjust_tag_counts(tag_ids: Collection[int], delta: int) -> None:
    if tag_ids:
        db.session.execute(
            update(Tag).where(Tag.id.in_(tag_ids)).values(article_count=Tag.article_count + delta)
        )


def article_total() -> Any:
    """SQL: how many articles there are."""
    return select(func.coalesce(func.max(Counter.value), 0)).where(Counter.name == ARTICLES)


def recount() -> None:
    """Rebuild every total from the rows."""
    per_tag = (
        select(func.count()).where(ArticleTag.tag_id == Tag.id).correlate(Tag).scalar_subquery()
    )
    db.session.execute(update(Tag).values(article_count=per_tag))
    total = db.session.scalar(select(func.count()).select_from(Article)) or 0
    db.session.execute(delete(Counter).where(Counter.name == ARTICLES))
    db.session.add(Counter(name=ARTICLES, value=total))
