"""Articles, the feed and favorites.

Reads run one statement whatever the page size: the page with its author,
favorites count, ``favorited``, ``following`` and tags as correlated
subqueries, and the total as an uncorrelated one (evaluated once). Only a
page past the end needs a second statement, for the total.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    ScalarSelect,
    Select,
    String,
    bindparam,
    delete,
    exists,
    false,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, array_agg
from sqlalchemy.exc import IntegrityError

from app.articles.schemas import SingleArticleResponseSchema
from app.articles.slugs import first_choice, unique_slug
from app.data import change_feed, counters
from app.data.slugs import base_slug
from app.data.unit_of_work import translate
from app.data.upserts import (
    insert_ignoring_conflicts,
    insert_ignoring_conflicts_on,
    insert_selected_ignoring_conflicts_statement,
)
from app.errors import abort
from app.extensions import db
from app.models import (
    Article,
    ArticleTag,
    CodePointOrder,
    Favorite,
    Follow,
    Tag,
    User,
    utcnow,
)
from app.profiles.service import (
    VIEWER,
    is_following,
    profile_payload,
    stored_profile,
    viewer_parameters,
)
from app.text import canonical_tag, identity_key
from app.web import conditional_writes

SLUG_ATTEMPTS = 5
_ARTICLE_RESPONSE = SingleArticleResponseSchema()
# A page past the end is read again if articles appeared since (see _page).
EMPTY_PAGE_READS = 3
# A cached feed watches the list key of each author its reader follows, up to this many.
FEED_AUTHOR_KEYS = 100


# Statements are built once per shape (who asks, which filters) with bound
# parameters, and reused: building and hashing a select this size costs more
# CPU than running it.
_TAG = bindparam("tag", type_=String)
_AUTHOR = bindparam("author", type_=String)
_FAVORITED = bindparam("favorited", type_=String)
_SLUG = bindparam("slug", type_=String)
_LIMIT = bindparam("limit", type_=Integer)
_OFFSET = bindparam("offset", type_=Integer)
_USER = bindparam("user_id", type_=Integer)
_NOW = bindparam("now", type_=Favorite.created_at.type)


def _favorited(signed_in: bool) -> ColumnElement[bool]:
    if not signed_in:
        return false()
    return exists().where(Favorite.article_id == Article.id, Favorite.user_id == VIEWER)


def _favorites_count() -> ScalarSelect[int]:
    """SQL: how many users favorited the article (a subquery on ``Article.id``)."""
    return select(func.count()).where(Favorite.article_id == Article.id).scalar_subquery()


@cache
def _article_columns(dialect: str, signed_in: bool, with_body: bool) -> Select[Any]:
    return select(
        *_answer_columns(dialect, signed_in, with_body, _favorites_count(), _favorited(signed_in))
    ).join(User, User.id == Article.author_id)


def _answer_columns(
    dialect: str,
    signed_in: bool,
    with_body: bool,
    favorites_count: ColumnElement[int],
    favorited: ColumnElement[bool],
) -> list[Any]:
    """The columns an article's answer is made of (:func:`_payloads`), from ``articles`` and
    its author's ``users`` row; ``viewer_id`` bound when ``signed_in``."""
    columns: list[Any] = [
        Article.id,
        Article.slug,
        Article.title,
        Article.description,
        Article.created_at,
        Article.updated_at,
        Article.author_id,
        User.username,
        User.bio,
        User.image,
        favorites_count.label("favorites_count"),
        favorited.label("favorited"),
        is_following(VIEWER if signed_in else None, Article.author_id).label("following"),
        _tag_names(dialect).label("tag_names"),
    ]
    if with_body:
        columns.append(Article.body)
    return columns


def _tag_names(dialect: str) -> ScalarSelect[Any]:
    """SQL: the article's tag names in code point order (an array; JSON on SQLite, sorted later)."""
    if dialect == "postgresql":
        names: Any = array_agg(aggregate_order_by(Tag.name, CodePointOrder(Tag.name)))
    else:
        names = func.json_group_array(Tag.name)
    return (
        select(names)
        .select_from(ArticleTag)
        .join(Tag, Tag.id == ArticleTag.tag_id)
        .where(ArticleTag.article_id == Article.id)
        .scalar_subquery()
    )


def _tag_list(names: list[str] | str | None) -> list[str]:
    if names is None:  # PostgreSQL: no tags
        return []
    if isinstance(names, str):  # SQLite: binary collation is code point order, as sorted()
        return sorted(json.loads(names))
    return list(names)


def _payloads(rows: Sequence[Row[Any]], with_body: bool) -> list[dict[str, Any]]:
    payloads = []
    for row in rows:
        payload = {
            "slug": row.slug,
            "title": row.title,
            "description": row.description,
            "tag_list": _tag_list(row.tag_names),
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "favorited": bool(row.favorited),
            "favorites_count": row.favorites_count,
            "author": profile_payload(row, row.following),
        }
        if with_body:
            payload["body"] = row.body
        payloads.append(payload)
    return payloads


def _dialect() -> str:
    return db.session.get_bind().dialect.name


@cache
def _list_statements(
    dialect: str, signed_in: bool, tag: bool, author: bool, favorited: bool, feed: bool
) -> tuple[Select[Any], Select[Any]]:
    """The page statement (with the total as a column) and the count alone."""
    filters: list[ColumnElement[bool]] = []
    if tag:
        filters.append(
            Article.id.in_(
                select(ArticleTag.article_id)
                .join(Tag, Tag.id == ArticleTag.tag_id)
                .where(Tag.name == _TAG)
            )
        )
    if author:
        filters.append(Article.author_id == _user_id(_AUTHOR))
    if favorited:
        filters.append(
            Article.id.in_(
                select(Favorite.article_id)
                .join(User, User.id == Favorite.user_id)
                .where(User.username_key == _FAVORITED)
            )
        )
    if feed:
        followed = select(Follow.followed_id).where(Follow.follower_id == VIEWER)
        filters.append(Article.author_id.in_(followed))

    if not (tag or author or favorited or feed):
        count = counters.article_total()  # a running total: the same cost at any size
    elif tag and not (author or favorited or feed):
        count = select(func.coalesce(func.max(counters.tag_total()), 0)).where(Tag.name == _TAG)
    elif favorited and not (tag or author or feed):
        count = (
            select(func.count())
            .select_from(Favorite)
            .where(Favorite.user_id == _user_id(_FAVORITED))
        )
    else:
        # Every article has an author (non-null foreign key): no join needed to count.
        count = select(func.count()).select_from(Article).where(*filters)
    page = (
        _article_columns(dialect, signed_in, False)
        .add_columns(count.correlate(None).scalar_subquery().label("total_matching"))
        .where(*filters)
        .order_by(Article.created_at.desc(), Article.id.desc())
        .limit(_LIMIT)
        .offset(_OFFSET)
    )
    return page, count


def _depends_on_rows(rows: Sequence[Row[Any]], viewer: User | None) -> None:
    """The answer shows these articles, their authors and the viewer's flags on them.

    The viewer's ``favorited`` on an article moves with ``article:<id>``: every
    favorite or unfavorite that changes a row purges that key (its count moves too).
    """
    if not rows:
        change_feed.depends_on("no-rows")
    change_feed.depends_on(*(f"article:{row.id}" for row in rows))
    change_feed.depends_on(*(f"user:{row.author_id}" for row in rows))
    if viewer is not None:
        change_feed.depends_on(f"follows:{viewer.id}")


def _page(
    viewer: User | None, params: dict[str, Any], limit: int, offset: int, **shape: bool
) -> tuple[list[dict[str, Any]], int]:
    page, count = _list_statements(_dialect(), viewer is not None, **shape)
    params = {**params, **viewer_parameters(viewer)}
    for _ in range(EMPTY_PAGE_READS):
        rows = db.session.execute(page, {**params, "limit": limit, "offset": offset}).all()
        _depends_on_rows(rows, viewer)
        if rows:
            return _payloads(rows, with_body=False), rows[0].total_matching
        if not offset:
            return [], 0
        # A page past the end: the total takes a statement of its own. Articles
        # created in between would make it claim rows this page lacks (each
        # statement sees its own snapshot on PostgreSQL): read the page again.
        total = db.session.scalar(count, params) or 0
        if total <= offset:
            return [], total
    return [], offset


def list_articles(
    viewer: User | None,
    *,
    limit: int,
    offset: int,
    tag: str | None = None,
    author: str | None = None,
    favorited: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Most recent first; ``tag``, ``author`` and ``favorited`` combine.

    Usernames match as people read them (identity keys), tags in their
    canonical form: the filters find what the same text found when it was written.
    """
    params = {
        name: value
        for name, value in (
            ("tag", None if tag is None else canonical_tag(tag)),
            ("author", None if author is None else identity_key(author)),
            ("favorited", None if favorited is None else identity_key(favorited)),
        )
        if value is not None
    }
    _depends_on_filters(params)
    return _page(
        viewer,
        params,
        limit,
        offset,
        tag=tag is not None,
        author=author is not None,
        favorited=favorited is not None,
        feed=False,
    )


def _depends_on_filters(params: dict[str, Any]) -> None:
    """Which articles a list holds: all of them, a tag's, an author's, a user's favorites."""
    if "tag" in params:
        change_feed.depends_on(f"list:tag:{params['tag']}")
    elif "author" in params:
        _depends_on_authors_list(params["author"])
    else:
        change_feed.depends_on("list:all")
    if "author" in params or "favorited" in params:
        change_feed.depends_on("usernames")
    if "favorited" in params:
        _depends_on_favorites_list(params["favorited"])


def _depends_on_authors_list(username_key: str) -> None:
    """An author's articles: new ones purge ``list:author:<id>`` (read only for a cache fill).

    No such user: nothing enters until one takes the name, a write to the
    users table, which the list read (its statement resolves the name).
    """
    if change_feed.collecting():
        change_feed.depends_on(f"list:author:{_filled_user_id(username_key)}")


def _depends_on_favorites_list(username_key: str) -> None:
    """A user's favorites: a favorite or unfavorite purges ``favorites:<id>`` (read for a fill).

    By id, not by name: the writer's user may be a remembered row that still
    carries a name changed on another replica whose notice has not arrived
    (app/data/known_users.py); an id never changes. A rename moves
    ``usernames``, which the list watches too.
    """
    if change_feed.collecting():
        change_feed.depends_on(f"favorites:{_filled_user_id(username_key)}")


def _filled_user_id(username_key: str) -> int | str:
    """The id of the user a cache fill's username filter names now; ``"none"`` for no such user."""
    user_id = db.session.scalar(select(User.id).where(User.username_key == username_key))
    return "none" if user_id is None else user_id


def _user_id(username_key: Any) -> Any:
    """SQL: the id of the user whose ``username_key`` this is (keys are unique)."""
    return (
        select(User.id).where(User.username_key == username_key).correlate(None).scalar_subquery()
    )


def feed(viewer: User, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Articles by the users ``viewer`` follows, most recent first."""
    _depends_on_followed_authors(viewer)
    return _page(viewer, {}, limit, offset, tag=False, author=False, favorited=False, feed=True)


# Whom the viewer follows, up to one past FEED_AUTHOR_KEYS (``viewer_id`` bound).
_FOLLOWED_AUTHORS = (
    select(Follow.followed_id).where(Follow.follower_id == VIEWER).limit(FEED_AUTHOR_KEYS + 1)
)


def _depends_on_followed_authors(viewer: User) -> None:
    """The feed holds the articles of whom ``viewer`` follows: their ``list:author:<id>``.

    Read only while a cache fill is pending; past :data:`FEED_AUTHOR_KEYS`
    followed authors, ``list:all`` (any new article) instead.
    """
    change_feed.depends_on(f"follows:{viewer.id}")
    if not change_feed.collecting():
        return
    followed = db.session.scalars(_FOLLOWED_AUTHORS, {"viewer_id": viewer.id}).all()
    if len(followed) > FEED_AUTHOR_KEYS:
        change_feed.depends_on("list:all")
    elif not followed:
        # Following no one, nothing enters until a follow (``follows:<id>``): no write
        # purges this key, which declares that the articles read are accounted for.
        change_feed.depends_on("list:author:none")
    else:
        change_feed.depends_on(*(f"list:author:{author_id}" for author_id in followed))


@cache
def _article_statement(dialect: str, signed_in: bool) -> Select[Any]:
    return _article_columns(dialect, signed_in, True).where(Article.slug == _SLUG)


def get_article(slug: str, viewer: User | None) -> dict[str, Any]:
    statement = _article_statement(_dialect(), viewer is not None)
    row = db.session.execute(statement, {"slug": slug, **viewer_parameters(viewer)}).first()
    return _article_payload(row, viewer)


def _article_in_transaction(slug: str, viewer: User) -> dict[str, Any]:
    """:func:`get_article` for a write, read on its transaction's connection through Core.

    The write's statements have begun the transaction, so no read-only
    handling applies (app/data/read_requests.py), and nothing is pending to
    flush: the session's ORM layer would only add CPU (about a third of a
    statement's).
    """
    connection = db.session.connection()
    statement = _article_statement(connection.dialect.name, True)
    row = connection.execute(statement, {"slug": slug, "viewer_id": viewer.id}).first()
    return _article_payload(row, viewer)


def _article_payload(row: Row[Any] | None, viewer: User | None) -> dict[str, Any]:
    """The article's answer from its row; 404 if there is none."""
    if row is None:
        abort(404, "article", "not found")
    _depends_on_rows([row], viewer)
    return _payloads([row], with_body=True)[0]


def _own_article(slug: str, user: User, *, deleting: bool = False) -> Article:
    """The user's article, locked until commit, as the request's ``If-Match`` requires.

    404 if there is none (412 with ``If-Match``), 403 if not theirs, 412 if
    ``If-Match`` names no current representation of it: the tag the author's
    own ``GET`` answers now, compared under the lock (app/web/conditional_writes.py).

    PostgreSQL: ``FOR UPDATE`` to delete, ``FOR NO KEY UPDATE`` to change it
    (favorites and comments, which only reference it, go on). Writes to one
    article queue on the lock, and one that waited finds the article as the
    other left it: deleted or retitled, that is a 404 (412 with ``If-Match``);
    changed, its tag is no longer the one the client read. SQLite runs one
    writer at a time.
    """
    article = db.session.scalar(
        select(Article).where(Article.slug == slug).with_for_update(key_share=not deleting)
    )
    if article is None:
        conditional_writes.missing("article")
    if article.author_id != user.id:
        abort(403, "article", "is not yours")
    conditional_writes.require(lambda: article_etag(slug, user))
    return article


def article_etag(slug: str, viewer: User | None) -> str:
    """The strong tag ``GET /api/articles/{slug}`` answers ``viewer`` now (unquoted)."""
    return conditional_writes.representation_etag(
        _ARTICLE_RESPONSE, {"article": get_article(slug, viewer)}
    )


def _remove_tags(article_id: int) -> list[int]:
    """Untag the article; the ids of the tags whose rows this statement deleted."""
    return list(
        db.session.scalars(
            delete(ArticleTag)
            .where(ArticleTag.article_id == article_id)
            .returning(ArticleTag.tag_id)
        )
    )


def _add_tags(article_id: int, names: list[str], linked: list[int] | None = None) -> list[int]:
    """Tag the article; the ids of the tags whose rows this statement inserted.

    ``names`` are canonical already (``TagName``); duplicates, and names that
    canonicalised to nothing, are dropped (tags read back in code point order).
    New tags are inserted in name order, so concurrent requests creating the
    same new tags wait for each other instead of deadlocking. ``linked``:
    the tags already linked to the new article by the statement that
    inserted it (those first in the ids returned).
    """
    names = _distinct_tags(names)
    if not names:
        return []
    linked = _link_tags(article_id, names) if linked is None else list(linked)
    # The article had no tags (new, or untagged under its row lock), so each
    # existing tag linked one row: fewer means some tags are new. Only then
    # is ``tags`` written, which waits for writers that moved a count.
    if len(linked) < len(names):
        insert_ignoring_conflicts(Tag, [{"name": name} for name in names])
        linked += _link_tags(article_id, names)
    return linked


def _distinct_tags(names: list[str]) -> list[str]:
    """Canonical tag names without duplicates or empty names, in code point order (as read)."""
    return sorted(dict.fromkeys(name for name in names if name))


def _link_tags(article_id: int, names: list[str]) -> list[int]:
    """Link the article to the tags called ``names`` that exist; the ids linked now."""
    statement = _tag_links(_dialect())
    return list(
        change_feed.execute_write(statement, {"article_id": article_id, "names": names}).scalars()
    )


@cache
def _tag_links(dialect: str) -> Any:
    """SQL: link article ``article_id`` to the tags among ``names`` (expanding), in id order.

    ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING tag_id``: the ids linked.
    """
    return insert_selected_ignoring_conflicts_statement(
        ArticleTag,
        ["article_id", "tag_id"],
        select(bindparam("article_id", type_=Integer), Tag.id)
        .where(Tag.name.in_(bindparam("names", expanding=True)))
        .order_by(Tag.id),
        dialect,
    ).returning(ArticleTag.tag_id)


def _tag_deltas(removed: list[int], added: list[int]) -> collections.Counter[int]:
    deltas: collections.Counter[int] = collections.Counter(added)
    deltas.subtract(removed)
    return deltas


def _is_slug_taken(error: IntegrityError) -> bool:
    answer = translate(error)
    return answer is not None and answer.code == 422 and "slug" in answer.errors


def _save_with_unique_slug(article: Article, values: dict[str, Any], title: str | None) -> None:
    """Set ``values`` on the article and flush; with ``title``, under a new slug from it.

    For an article that exists (a retitle); a new one is :func:`_insert_with_unique_slug`.

    A concurrent request may take the chosen slug before this one flushes
    (an article whose own title gives that slug): the flush runs in a
    savepoint, and on that conflict runs again with the next free suffix.
    The values are set again on every attempt: a rolled-back savepoint
    expires what was changed inside it.
    """
    article_id = article.id
    for _ in range(SLUG_ATTEMPTS):
        if title is not None:
            values["slug"] = unique_slug(title, exclude_article_id=article_id)
        try:
            with db.session.begin_nested():
                for field, value in values.items():
                    setattr(article, field, value)
                db.session.add(article)
                db.session.flush()
            return
        except IntegrityError as error:
            if title is None or not _is_slug_taken(error):
                raise
    abort(422, "slug", "has already been taken, please retry")


def _answer_then_commit(
    slug: str,
    viewer: User,
    tag_deltas: collections.Counter[int] | None = None,
    article_delta: int = 0,
) -> dict[str, Any]:
    """The article as this request leaves it, read inside its transaction, then commit.

    Read after the commit, a concurrent delete could turn a write that
    succeeded into a 404, and a client retrying it would write twice. The
    running totals' deltas are recorded last, just before the commit, and
    folded into the stored totals after it (app/data/counters.py).
    """
    payload = _article_in_transaction(slug, viewer)
    counters.commit_moving(tag_deltas or {}, article_delta)
    return payload


def _insert_article(values: dict[str, Any], slug: str) -> Row[Any] | None:
    """``INSERT … ON CONFLICT (slug) DO NOTHING RETURNING`` (:func:`_article_insert`).

    The new row's id, slug and times and its author's profile as stored,
    ``None`` if the slug is taken. ``created_at`` and ``updated_at`` come
    from the columns' defaults. Any other violation (the author deleted
    meanwhile: a foreign key) raises. PostgreSQL: a slug inserted by a
    transaction not yet committed makes the statement wait for it, and find
    it taken if that one commits.
    """
    statement = _article_insert(_dialect())
    return change_feed.execute_write(statement, {**values, "slug": slug}).first()


@cache
def _article_insert(dialect: str) -> Any:
    """SQL: ``INSERT … ON CONFLICT (slug) DO NOTHING RETURNING`` the new row's id, slug and
    times, and its author's profile columns as stored (``stored_profile``)."""
    author_id = bindparam("author_id", type_=Integer)
    return (
        insert_ignoring_conflicts_on(Article, ["slug"], dialect)
        .values(author_id=author_id)
        .returning(
            Article.id,
            Article.slug,
            Article.created_at,
            Article.updated_at,
            *stored_profile(author_id),
        )
    )


def _insert_with_unique_slug(
    values: dict[str, Any], title: str, *, first_choice_taken: bool = False
) -> Row[Any]:
    """Insert a new article under the first free slug from ``title``; its id, slug and times.

    The title's base first, one statement and no lookup (most titles). Taken
    or reserved, the slug :func:`unique_slug` chooses (PostgreSQL: requests
    with one base take turns), inserted the same way: a concurrent request
    may take it first (an article whose own title gives that slug), and the
    next attempt chooses again, up to ``SLUG_ATTEMPTS``, then 422. A slug
    conflict is no error here, so no savepoint is needed to go on.
    ``first_choice_taken``: the caller found the title's base taken already.
    """
    slug = None if first_choice_taken else first_choice(title)
    if slug is not None:
        inserted = _insert_article(values, slug)
        if inserted is not None:
            return inserted
    for _ in range(SLUG_ATTEMPTS):
        inserted = _insert_article(values, unique_slug(title))
        if inserted is not None:
            return inserted
    abort(422, "slug", "has already been taken, please retry")


def create_article(author: User, data: dict[str, Any]) -> dict[str, Any]:
    """Create the article, tag it, and answer it as a ``GET`` would, without reading it back.

    PostgreSQL, the title's own slug free and every tag known (most
    creations): one statement (:func:`_tagged_article_insert`). Otherwise
    the article's insert (:func:`_insert_with_unique_slug`), then its tags
    (:func:`_add_tags`), then the totals' deltas.

    Every part of the answer is known once the writes succeed: the columns the
    insert returned (its author's profile among them, as stored), the tags it
    was linked to (names are exact, tags are never deleted), no favorites yet,
    and ``following`` false (no one follows themselves:
    app/profiles/service.py). Reading it back cost a statement with a
    subquery per column, a fifth of a creation's CPU.
    """
    values = {"author_id": author.id, **{f: data[f] for f in ("title", "description", "body")}}
    tags = _distinct_tags(data.get("tag_list", []))
    slug, tagged = first_choice(data["title"]), None
    one_statement = slug is not None and _dialect() == "postgresql"
    if one_statement and slug is not None:
        tagged = _insert_tagged_article(values, slug, tags)
    if tagged is not None:
        inserted, recorded = tagged, list(tagged.linked or [])
        added = _add_tags(inserted.id, tags, linked=recorded)[len(recorded) :]
    else:  # SQLite, a title with no slug of its own, or that slug taken (tried just above)
        inserted = _insert_with_unique_slug(values, data["title"], first_choice_taken=one_statement)
        added = _add_tags(inserted.id, tags)
    _purge_new_article(inserted.id, author.id, tags)
    payload = {
        **{field: values[field] for field in ("title", "description", "body")},
        "slug": inserted.slug,
        "tag_list": tags,
        "created_at": inserted.created_at,
        "updated_at": inserted.updated_at,
        "favorited": False,
        "favorites_count": 0,
        "author": profile_payload(inserted, following=False),  # as stored (stored_profile)
    }
    counters.commit_moving(
        _tag_deltas(removed=[], added=added),
        article_delta=0 if tagged is not None else +1,
        recorded=tagged is not None,
    )
    return payload


def _insert_tagged_article(values: dict[str, Any], slug: str, tags: list[str]) -> Row[Any] | None:
    """PostgreSQL: :func:`_tagged_article_insert` under ``slug``; ``None`` if it is taken."""
    return change_feed.execute_write(
        _tagged_article_insert(),
        {**values, "slug": slug, "now": utcnow(), "names": tags},
    ).first()


@cache
def _tagged_article_insert() -> Any:
    """SQL (PostgreSQL): a new article, its links to the named tags that exist, and the totals'
    deltas, in one statement: one round trip where a creation took three.

    ``WITH new_article AS (INSERT INTO articles … ON CONFLICT (slug) DO NOTHING
    RETURNING …), new_links AS (INSERT INTO article_tags SELECT … FROM
    new_article JOIN tags ON tags.name IN (…) ORDER BY tags.id ON CONFLICT DO
    NOTHING RETURNING tag_id), … INSERT INTO counter_deltas (+1 per tag
    linked, +1 for the articles total) SELECT id, slug, created_at,
    updated_at, (the author's profile as stored), (the tag ids linked) FROM
    new_article``. A taken slug inserts
    nothing at all and returns no row. The statement's parts see the
    database as it began, not each other's rows: hence each reads the rows
    the part before returned.
    """
    article = (
        insert_ignoring_conflicts_on(Article, ["slug"], "postgresql")
        .values(
            slug=_SLUG,
            title=bindparam("title", type_=String),
            description=bindparam("description", type_=String),
            body=bindparam("body", type_=String),
            author_id=bindparam("author_id", type_=Integer),
            created_at=_NOW,
            updated_at=_NOW,
        )
        .returning(
            Article.id, Article.slug, Article.created_at, Article.updated_at, Article.author_id
        )
        .cte("new_article")
    )
    links = (
        insert_selected_ignoring_conflicts_statement(
            ArticleTag,
            ["article_id", "tag_id"],
            select(article.c.id, Tag.id)
            .select_from(article)
            .join(Tag, Tag.name.in_(bindparam("names", expanding=True)))
            .order_by(Tag.id),
            "postgresql",
        )
        .returning(ArticleTag.tag_id)
        .cte("new_links")
    )
    one = literal(1, Integer)
    deltas = counters.recording(
        union_all(
            select(links.c.tag_id, one),
            select(null(), one).select_from(article),
        )
    ).cte("new_deltas")
    linked = select(array_agg(links.c.tag_id)).scalar_subquery()
    return select(
        article.c.id,
        article.c.slug,
        article.c.created_at,
        article.c.updated_at,
        *stored_profile(article.c.author_id),
        linked.label("linked"),
    ).add_cte(deltas)


def _purge_new_article(article_id: int, author_id: int, tags: list[str]) -> None:
    """A new article enters the lists of all articles, of its author and of its tags."""
    change_feed.purge(f"article:{article_id}", "list:all", f"list:author:{author_id}")
    change_feed.purge("tags", *(f"list:tag:{name}" for name in tags if name))


def update_article(slug: str, user: User, changes: dict[str, Any]) -> dict[str, Any]:
    article = _own_article(slug, user)
    article_id = article.id
    tag_list = changes.pop("tag_list", None)
    new_title = changes.get("title")
    retitled = new_title is not None and base_slug(new_title) != base_slug(article.title)
    changes["updated_at"] = utcnow()  # also when only the tags changed
    _save_with_unique_slug(article, changes, title=new_title if retitled else None)
    deltas = None
    if tag_list is not None:
        removed = _remove_tags(article_id)
        deltas = _tag_deltas(removed, _add_tags(article_id, tag_list))
    else:  # new tags move whole tables: the lists of the tags it had are not known here
        change_feed.purge(f"article:{article_id}", f"comments:{article_id}")
    return _answer_then_commit(article.slug, user, deltas)


def delete_article(slug: str, user: User) -> None:
    """Delete the article, its tags, comments and favorites.

    The totals move by what the statements removed: a request that lost a
    race to delete the same article removed nothing and answers 404 (the
    row lock in ``_own_article`` makes it find no article at all).
    """
    article_id = _own_article(slug, user, deleting=True).id
    removed = _remove_tags(article_id)
    deleted = db.session.execute(
        delete(Article).where(Article.id == article_id).returning(Article.id)
    ).all()
    if not deleted:
        abort(404, "article", "not found")  # the rollback undoes the tag changes too
    counters.commit_moving(_tag_deltas(removed, added=[]), -len(deleted))


@cache
def _favorite_insert(dialect: str) -> Any:
    """SQL: the user favorites the article the slug names (none: nothing inserted).

    ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING article_id``, with
    ``user_id``, ``now`` and ``slug`` bound.
    """
    return insert_selected_ignoring_conflicts_statement(
        Favorite,
        ["user_id", "article_id", "created_at"],
        select(_USER, Article.id, _NOW).where(Article.slug == _SLUG),
        dialect,
    ).returning(Favorite.article_id)


# The user's favorite of the article the slug names, removed (``user_id`` and ``slug`` bound).
_FAVORITE_DELETE = (
    delete(Favorite)
    .where(
        Favorite.user_id == _USER,
        Favorite.article_id == select(Article.id).where(Article.slug == _SLUG).scalar_subquery(),
    )
    .returning(Favorite.article_id)
)


def favorite(slug: str, user: User) -> dict[str, Any]:
    """Favorite an article; favoriting twice is not an error (:func:`_change_favorite`)."""
    return _change_favorite(slug, user, adding=True)


def unfavorite(slug: str, user: User) -> dict[str, Any]:
    """Remove a favorite; removing it twice is not an error (:func:`_change_favorite`)."""
    return _change_favorite(slug, user, adding=False)


def _change_favorite(slug: str, user: User, *, adding: bool) -> dict[str, Any]:
    """Add or remove the user's favorite of the article the slug names, and answer the article.

    One statement finds the article and writes (:func:`_favorite_change`). On
    PostgreSQL it also returns the answer when it changed a row; otherwise
    (SQLite, or nothing changed: already so, or no article, whose re-read is
    the 404) the answer is read after it, in the same transaction.
    """
    dialect = _dialect()
    parameters = {"user_id": user.id, "viewer_id": user.id, "slug": slug}
    if adding:
        parameters["now"] = utcnow()
    changed = change_feed.execute_write(_favorite_change(dialect, adding), parameters).first()
    if changed is not None:
        _purge_favorite(changed.article_id, user)
    if changed is None or dialect != "postgresql":
        return _answer_then_commit(slug, user)
    payload = _article_payload(changed, user)
    counters.commit_moving({}, 0)
    return payload


@cache
def _favorite_change(dialect: str, adding: bool) -> Any:
    """SQL: the favorite added (:func:`_favorite_insert`) or removed (:data:`_FAVORITE_DELETE`).

    Its rows are the rows it changed, each with ``article_id``. On PostgreSQL
    the write is a ``WITH`` part and each row is also the article's answer as
    the write leaves it (:func:`_answer_columns`, ``viewer_id`` bound): the
    parts of one statement see the database as it began, not each other's
    rows, so the count read is the one before the write, moved by the row
    this request added or removed, and ``favorited`` is what it asked for. A
    statement that changed no row returns none (``execute_write``: nothing
    to notify) and the caller reads the answer.
    """
    write = _favorite_insert(dialect) if adding else _FAVORITE_DELETE
    if dialect != "postgresql":
        return write
    changed = write.cte("changed_favorite")
    count = _favorites_count() + (1 if adding else -1)
    return (
        select(
            changed.c.article_id,
            *_answer_columns(dialect, True, True, count, literal(adding)),
        )
        .select_from(changed)
        .join(Article, Article.id == changed.c.article_id)
        .join(User, User.id == Article.author_id)
    )


def _purge_favorite(article_id: int, user: User) -> None:
    """The article's count and the user's flag on it, and the user's ``?favorited=`` list.

    Only when the statement changed a row: one that changed none (already
    favorited, or not, or no article) leaves the favorites table as it was.
    The list watches ``favorites:<user id>``; ``favorited:<identity key>`` is
    no longer watched here, but the previous release's answers watch it (a
    rolling release): it is still purged.
    """
    change_feed.purge(
        f"article:{article_id}", f"favorites:{user.id}", f"favorited:{user.username_key}"
    )
