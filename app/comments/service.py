"""Comments: listed newest first with their authors in one statement."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Integer, Select, String, bindparam, delete, insert, select

from app.data import change_feed
from app.data.unit_of_work import commit
from app.errors import abort
from app.extensions import db
from app.models import MAX_ID, Article, Comment, User, utcnow
from app.profiles.service import (
    VIEWER,
    is_following,
    profile_payload,
    stored_profile,
    viewer_parameters,
)
from app.web import conditional_writes


@cache
def _comments_statement(signed_in: bool) -> Select[*tuple[Any, ...]]:
    """SQL: the article ``slug`` names and its comments with their authors, newest first.

    One row per comment, each with ``article_id``; one row whose comment
    columns are NULL when the article has none; no row when no article has
    the slug. One statement, one round trip, built once per kind of viewer.
    """
    return (
        select(
            Article.id.label("article_id"),
            Comment.id,
            Comment.body,
            Comment.created_at,
            Comment.updated_at,
            User.username,
            User.bio,
            User.image,
            Comment.author_id,
            is_following(VIEWER if signed_in else None, Comment.author_id).label("following"),
        )
        .select_from(Article)
        # Flat outer joins: every comment has its author (a foreign key), and SQLite
        # would materialise a parenthesised (comments JOIN users) whole, scanning both.
        .outerjoin(Comment, Comment.article_id == Article.id)
        .outerjoin(User, User.id == Comment.author_id)
        .where(Article.slug == bindparam("slug", type_=String))
        .order_by(Comment.created_at.desc(), Comment.id.desc())
    )


def _payload(row: Any) -> dict[str, Any]:
    """A comment's answer from its row, with its author's ``username``, ``bio``, ``image``."""
    return {
        "id": row.id,
        "body": row.body,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "author": profile_payload(row, row.following),
    }


def list_comments(slug: str, viewer: User | None) -> list[dict[str, Any]]:
    """The article's comments, newest first; 404 if no article has the slug."""
    found = db.session.execute(
        _comments_statement(viewer is not None), {"slug": slug, **viewer_parameters(viewer)}
    ).all()
    if not found:
        abort(404, "article", "not found")
    rows = [row for row in found if row.id is not None]
    change_feed.depends_on(
        f"comments:{found[0].article_id}", *(f"user:{row.author_id}" for row in rows)
    )
    if not rows:
        change_feed.depends_on("no-rows")
    if viewer is not None:
        change_feed.depends_on(f"follows:{viewer.id}")
    return [_payload(row) for row in rows]


def _new_comment_insert() -> Any:
    """SQL: the comment, on the article the slug names (none: nothing inserted).

    ``INSERT … SELECT … RETURNING`` the comment's columns, its author's
    profile as stored (``stored_profile``) and whether its author follows
    themselves (as every comment's ``following`` is read), with
    ``author_id``, ``body``, ``now`` and ``slug`` bound.
    """
    author_id = bindparam("author_id", type_=Integer)
    now = bindparam("now", type_=Comment.created_at.type)
    return (
        insert(Comment)
        .from_select(
            ["article_id", "author_id", "body", "created_at", "updated_at"],
            select(
                Article.id, author_id, bindparam("body", type_=Comment.body.type), now, now
            ).where(Article.slug == bindparam("slug", type_=Article.slug.type)),
        )
        .returning(
            Comment.id,
            Comment.article_id,
            Comment.body,
            Comment.created_at,
            Comment.updated_at,
            # the comment's author is ``author_id``: the subqueries name no column of
            # ``comments`` (RETURNING does not correlate: it would join a second one)
            *stored_profile(author_id),
            is_following(author_id, author_id).label("following"),
        )
    )


_NEW_COMMENT = _new_comment_insert()


def add_comment(slug: str, author: User, body: str) -> dict[str, Any]:
    """Comment on the article; 404 if it is gone, even if it went while this ran.

    One statement finds the article, inserts and returns the comment and its
    author's profile as stored (nothing when there is no article); the
    author is the one this request authenticated. Answered from what it
    returned, before the commit, as a re-read would have answered.
    """
    inserted = change_feed.execute_write(
        _NEW_COMMENT, {"author_id": author.id, "body": body, "now": utcnow(), "slug": slug}
    ).first()
    if inserted is None:
        abort(404, "article", "not found")
    change_feed.purge(f"comments:{inserted.article_id}")
    payload = _payload(inserted)
    commit()
    return payload


def delete_comment(slug: str, comment_id: int, user: User) -> None:
    """Only the comment's author may delete it.

    A comment has no ``GET`` and so no entity tag: ``If-Match: *`` holds while
    it exists, a listed tag never does (412), and with ``If-Match`` a missing
    comment or article is a 412 rather than a 404 (app/web/conditional_writes.py).
    """
    article_id = db.session.scalar(select(Article.id).where(Article.slug == slug))
    if article_id is None:
        conditional_writes.missing("article")
    comment = (
        db.session.scalar(
            select(Comment).where(Comment.id == comment_id, Comment.article_id == article_id)
        )
        if 0 < comment_id <= MAX_ID
        else None
    )
    if comment is None:
        conditional_writes.missing("comment")
    if comment.author_id != user.id:
        abort(403, "comment", "is not yours")
    conditional_writes.require(lambda: None)
    deleted = db.session.execute(
        delete(Comment).where(Comment.id == comment.id).returning(Comment.id)
    ).all()
    if not deleted:  # a concurrent request deleted it, or its article, first
        conditional_writes.missing("comment")
    change_feed.purge(f"comments:{article_id}")
    commit()
