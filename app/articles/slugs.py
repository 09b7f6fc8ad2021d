"""Choosing an article's slug: its title's base (app.data.slugs), suffixed until unique."""

from __future__ import annotations

import zlib

from sqlalchemy import func, or_, select

from app.data.slugs import base_slug
from app.extensions import db
from app.models import Article
from app.web.converters import RESERVED_SLUGS

# First key of the two-key advisory locks on slug bases (app.db.lock uses the one-key space).
SLUG_LOCK_NAMESPACE = 0x736C7567  # "slug"


def _take_turns(base: str) -> None:
    """PostgreSQL: requests choosing a slug from ``base`` take turns until they commit.

    Without it, N requests giving articles one title at once all choose the
    same free slug, one wins and the rest retry, one winner per round. Holding
    a transaction-scoped advisory lock on the base, each one sees the slugs
    its predecessors committed and picks the next suffix at once. (SQLite
    runs one writer at a time anyway.)
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    key = zlib.crc32(base.encode()) - 2**31  # a signed 32-bit key
    db.session.execute(select(func.pg_advisory_xact_lock(SLUG_LOCK_NAMESPACE, key)))


def first_choice(title: str) -> str | None:
    """The slug to try first, with no lookup: the title's base; ``None`` if it is reserved.

    Most titles give a base no article has: inserted with ``ON CONFLICT (slug)
    DO NOTHING``, it needs neither the lock nor the lookup of :func:`unique_slug`,
    which only a title whose base is taken (or reserved) goes on to.
    """
    base = base_slug(title)
    return None if base in RESERVED_SLUGS else base


def unique_slug(title: str, exclude_article_id: int | None = None) -> str:
    """The title's slug, suffixed ``-2``, ``-3``… when another article has it.

    Reads without autoflushing: the article being saved may already carry a
    slug that is taken, and must not be flushed with it outside the caller's
    savepoint.
    """
    base = base_slug(title)
    stmt = select(Article.slug).where(
        or_(Article.slug == base, Article.slug.startswith(f"{base}-"))
    )
    if exclude_article_id is not None:
        stmt = stmt.where(Article.id != exclude_article_id)
    with db.session.no_autoflush:
        _take_turns(base)
        taken = set(db.session.scalars(stmt)) | RESERVED_SLUGS
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"
