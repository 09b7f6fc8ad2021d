"""Persistence: the typed SQLAlchemy 2.x models.

Models hold data only. Whatever depends on who is asking (``favorited``,
``following``) and every count is computed by the service queries.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints make every constraint visible to autogenerate and
# droppable on SQLite (batch mode needs the names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

USERNAME_MAX_LENGTH = 64
EMAIL_MAX_LENGTH = 254
URL_MAX_LENGTH = 2048
TITLE_MAX_LENGTH = 255
SLUG_MAX_LENGTH = 255
TAG_MAX_LENGTH = 100


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )


class Follow(Base):
    """``follower`` follows ``followed``."""

    __tablename__ = "follows"
    # The primary key serves "whom does X follow" (the feed); this serves the reverse.
    __table_args__ = (Index("ix_follows_followed_id", "followed_id"),)

    follower_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    followed_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )


class Favorite(Base):
    """``user`` marked ``article`` as a favorite."""

    __tablename__ = "favorites"
    # The primary key serves "favorited by X"; this serves favorites counts.
    __table_args__ = (Index("ix_favorites_article_id", "article_id"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH), unique=True)
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    bio: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(String(URL_MAX_LENGTH))

    articles: Mapped[list[Article]] = relationship(back_populates="author", passive_deletes=True)


class ArticleTag(Base):
    """A tag on an article."""

    __tablename__ = "article_tags"
    # The tag filter goes from a tag to its articles.
    __table_args__ = (Index("ix_article_tags_tag_id_article_id", "tag_id", "article_id"),)

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)

    tag: Mapped[Tag] = relationship()


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(TAG_MAX_LENGTH), unique=True)
    # How many articles carry the tag, kept in step by app/counters.py: the tag
    # filter's total and the popular tags are read here, not counted each time.
    article_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class Counter(Base):
    """A running total kept in step with the rows it counts (app/counters.py)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Article(TimestampMixin, Base):
    __tablename__ = "articles"
    # Lists are newest first (id breaks ties); the author filter and the feed
    # walk one author's articles in the same order.
    __table_args__ = (
        Index("ix_articles_created_at_id", "created_at", "id"),
        Index("ix_articles_author_id_created_at", "author_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(SLUG_MAX_LENGTH), unique=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    description: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))

    author: Mapped[User] = relationship(back_populates="articles")
    article_tags: Mapped[list[ArticleTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class Comment(TimestampMixin, Base):
    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_article_id_created_at", "article_id", "created_at"),
        Index("ix_comments_author_id", "author_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
