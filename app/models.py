"""Persistence: the typed SQLAlchemy 2.x models.

Models hold data only. Whatever depends on who is asking (``favorited``,
``following``) and every count is computed by the service queries.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    QueryableAttribute,
    mapped_column,
    relationship,
    validates,
)
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from app.text import identity_key

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
# Primary keys are 32-bit INTEGER columns on PostgreSQL: no row has a larger id,
# and a larger number cannot even be compared with one there.
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class CodePointOrder(ColumnElement[str]):
    """``column`` to ORDER BY in Unicode code point order, on every database.

    Without an explicit collation PostgreSQL orders text by the database's
    collation, which the server's locale decides: ICU ``en-US`` reads
    ``a, A, a-c, ab, b, B`` where ``C`` reads ``A, B, a, a-c, ab, b``. So every
    text ORDER BY goes through this: PostgreSQL ``COLLATE "C"`` (byte order of
    UTF-8, which is code point order), SQLite's default ``BINARY`` (the same),
    and Python's ``sorted`` agrees with both.
    """

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[str] | QueryableAttribute[str]) -> None:
        self.column = column.expression if isinstance(column, QueryableAttribute) else column
        self.type = self.column.type


@compiles(CodePointOrder)
def _code_point_order(element: CodePointOrder, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(CodePointOrder, "postgresql")
def _code_point_order_postgresql(element: CodePointOrder, compiler: Any, **kw: Any) -> str:
    return f'{compiler.process(element.column, **kw)} COLLATE "C"'


SESSION_KEY_BYTES = 16  # 128 bits, stored as 32 lower-case hex digits


def new_session_key() -> str:
    """A fresh random session key: 32 hex digits from the OS's CSPRNG (``secrets``)."""
    return secrets.token_hex(SESSION_KEY_BYTES)


class RandomSessionKey(FunctionElement[str]):
    """The database's own fresh session key, for rows the application does not key itself.

    The server default of ``users.session_key``: a release that does not know
    the column still inserts users, and they get a key too. PostgreSQL: the MD5
    of two ``gen_random_uuid()`` (core since 13, ``pg_strong_random``: 244
    random bits folded into 128); SQLite: 16 bytes of ``randomblob()``. Each
    is written as the database reflects it back, so autogenerate sees no change.
    """

    type = Text()
    name = "random_session_key"
    inherit_cache = True


@compiles(RandomSessionKey)
def _random_session_key(element: RandomSessionKey, compiler: Any, **kw: Any) -> str:
    return f"lower(hex(randomblob({SESSION_KEY_BYTES})))"


@compiles(RandomSessionKey, "postgresql")
def _random_session_key_postgresql(element: RandomSessionKey, compiler: Any, **kw: Any) -> str:
    return "md5(((gen_random_uuid())::text || (gen_random_uuid())::text))"


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
    """An account. ``username`` and ``email`` are shown as typed; ``*_key`` are compared.

    The keys (``app.text.identity_key``: NFKC, case-folded) are what
    uniqueness and every look-up use, so ``Kay``, ``kay`` and fullwidth ``kay`` are
    one account. They are set whenever the username or email is, and are
    ``Text``: NFKC may lengthen a name (U+FDFA becomes 18 characters). A
    username key is at most 2,112 bytes (64 x U+FDFA), under PostgreSQL's
    2,704-byte limit for a B-tree entry; an email key at most 254 characters
    (app/users/schemas.py refuses longer).
    """

    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused (see Article)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH), unique=True)
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH), unique=True)
    username_key: Mapped[str] = mapped_column(Text, unique=True)
    email_key: Mapped[str] = mapped_column(Text, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    bio: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(String(URL_MAX_LENGTH))
    # Every token names it (app/tokens.py); a new one ends every token issued before
    # (a password change, "sign out everywhere"), and an account that replaces a
    # removed one under the same id has its own. NULL never authenticates.
    session_key: Mapped[str | None] = mapped_column(
        Text, default=new_session_key, server_default=RandomSessionKey()
    )

    articles: Mapped[list[Article]] = relationship(back_populates="author", passive_deletes=True)

    @validates("username", "email")
    def _keep_key_in_step(self, field: str, value: str) -> str:
        setattr(self, f"{field}_key", identity_key(value))
        return value


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
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused (see Article)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(TAG_MAX_LENGTH), unique=True)
    # How many articles carry the tag, kept in step by app/data/counters.py: the tag
    # filter's total and the popular tags are read here, not counted each time.
    article_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class Counter(Base):
    """A running total kept in step with the rows it counts (app/data/counters.py)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class CounterDelta(Base):
    """A change to a running total, not yet folded into it (app/data/counters.py).

    Writers append these instead of updating the shared totals, so no two
    writers wait for each other's total; a total reads as its stored value
    plus the sum of its pending deltas.
    """

    __tablename__ = "counter_deltas"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # The tag whose ``article_count`` it moves; NULL: the ``articles`` total.
    tag_id: Mapped[int | None] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), index=True
    )
    delta: Mapped[int] = mapped_column(Integer)


class Article(TimestampMixin, Base):
    __tablename__ = "articles"
    # Lists are newest first (id breaks ties); the author filter and the feed
    # walk one author's articles in the same order.
    __table_args__ = (
        Index("ix_articles_created_at_id", "created_at", "id"),
        Index("ix_articles_author_id_created_at", "author_id", "created_at"),
        # SQLite otherwise hands a deleted newest row's id out again, as PostgreSQL's
        # sequences never do: a retried delete would reach the row made after it
        # (revision e6f3c5dded28).
        {"sqlite_autoincrement": True},
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
        {"sqlite_autoincrement": True},  # ids never reused (see Article)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
