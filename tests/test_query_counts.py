"""Reads run a fixed, small number of SQL statements whatever the page size."""

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import event

from app.extensions import db
from tests.databases import reads_a_user_by_id, statements_run
from tests.factories import add_comment, auth, create_article, favorite, follow, register
from tests.listening import wait_until_listening

MAX_LIST_STATEMENTS = 4  # viewer, count, page, tags


@pytest.fixture
def world(app, client):
    """25 articles with tags, favorites and comments, by an author the reader follows.

    The change feed listens first (PostgreSQL): every measured read is then a
    cache fill, which also reads what it watches (the author's, or the followed
    authors', ids), never a read while the cache is off.
    """
    wait_until_listening(app)
    author = register(client, username="author")
    reader = register(client, username="reader")
    follow(client, reader, "author")
    slugs = []
    for n in range(25):
        article = create_article(client, author, tagList=[f"tag{n}", "common"])
        favorite(client, reader, article["slug"])
        slugs.append(article["slug"])
    for n in range(20):
        add_comment(client, reader, slugs[0], f"comment {n}")
    return {"reader": reader, "slugs": slugs}


def statements_for(client, count_queries, url, headers):
    with count_queries() as counter:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_json()
    return counter.count


LISTS = [
    "/api/articles?limit={n}",
    "/api/articles?tag=common&limit={n}",
    "/api/articles?author=author&limit={n}",
    "/api/articles?favorited=reader&limit={n}",
]


@pytest.mark.parametrize(
    ("url", "authenticated"),
    [(url, True) for url in [*LISTS, "/api/articles/feed?limit={n}"]]
    + [(url, False) for url in LISTS],
)
def test_article_lists_run_the_same_statements_for_1_and_20(
    client, count_queries, world, url, authenticated
):
    headers = auth(world["reader"]) if authenticated else {}

    one = statements_for(client, count_queries, url.format(n=1), headers)
    twenty = statements_for(client, count_queries, url.format(n=20), headers)

    assert one == twenty
    assert twenty <= MAX_LIST_STATEMENTS


def test_comment_list_statements_do_not_grow_with_comments(client, count_queries, world):
    reader = auth(world["reader"])
    few = statements_for(
        client, count_queries, f"/api/articles/{world['slugs'][1]}/comments", reader
    )
    many = statements_for(
        client, count_queries, f"/api/articles/{world['slugs'][0]}/comments", reader
    )

    assert few == many
    assert many <= 2  # viewer; the article and its comments


def test_an_anonymous_comment_list_is_one_statement(client, count_queries, world):
    url = f"/api/articles/{world['slugs'][0]}/comments"

    assert statements_for(client, count_queries, url, {}) == 1


def test_tag_list_is_one_statement(client, count_queries, world):
    assert statements_for(client, count_queries, "/api/tags", {}) == 1


def test_single_article_read_is_bounded(client, count_queries, world):
    url = f"/api/articles/{world['slugs'][0]}"

    assert statements_for(client, count_queries, url, auth(world["reader"])) <= 3
    assert statements_for(client, count_queries, url, {}) <= 2


def statements_for_write(client, count_queries, method, url, headers, payload=None):
    with count_queries() as counter:
        response = client.open(url, method=method, headers=headers, json=payload)
    assert response.status_code in (200, 201), response.get_json()
    return counter.statements


# --- writes ----------------------------------------------------------------
# Round trips a write makes, the change feed's notification and the token's
# user left out: the first travels with the commit (app/data/change_feed.py),
# the second is read once and then remembered (app/data/known_users.py,
# tests/test_known_users.py). Each one is a wait on a loaded host while the
# transaction stays open.


def is_notification(statement):
    """The change feed's ``NOTIFY …; COMMIT``, one round trip with the commit (PostgreSQL)."""
    return statement.startswith("NOTIFY ")


def write_statements(client, count_queries, method, url, headers, payload=None):
    with count_queries() as counter:
        response = client.open(url, method=method, headers=headers, json=payload)
    assert response.status_code in (200, 201), response.get_json()
    return [
        statement
        for statement in counter.statements
        if not is_notification(statement) and not reads_a_user_by_id(statement)
    ]


def test_the_change_feeds_notification_travels_with_the_commit(app, client, world, database_url):
    """PostgreSQL: one ``NOTIFY …; COMMIT`` ends a write, leaving the driver nothing to commit.

    SQLite has no notification: other processes see ``PRAGMA data_version``.
    """
    url = f"/api/articles/{world['slugs'][3]}/favorite"
    open_at_commit: list[bool] = []

    def note_commit(connection):
        driver = connection.connection.driver_connection
        if connection.dialect.name == "postgresql":
            open_at_commit.append(driver.info.transaction_status != TransactionStatus.IDLE)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "commit", note_commit)
    try:
        with statements_run(app) as statements:
            response = client.post(url, headers=auth(world["reader"]))
    finally:
        event.remove(engine, "commit", note_commit)

    assert response.status_code == 200
    notifications = [s for s in statements if is_notification(s)]
    if database_url.startswith("postgresql"):
        assert notifications == statements[-1:], statements
        assert notifications[0].endswith("; COMMIT")
        assert open_at_commit == [False]
    else:
        assert notifications == []


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_favorite_that_changes_a_row_answers_from_its_own_statement(
    client, count_queries, world, method, database_url
):
    """PostgreSQL: one statement finds the article, writes and returns the answer.

    SQLite: the write, then the answer's read.
    """
    url = f"/api/articles/{world['slugs'][3]}/favorite"
    if method == "POST":  # the reader favorited every article: take one back first
        client.delete(url, headers=auth(world["reader"]))

    statements = write_statements(client, count_queries, method, url, auth(world["reader"]))

    assert len(statements) == (1 if database_url.startswith("postgresql") else 2), statements


def test_a_favorite_that_changes_nothing_is_the_write_and_the_answers_read(
    client, count_queries, world
):
    url = f"/api/articles/{world['slugs'][3]}/favorite"  # favorited already

    statements = write_statements(client, count_queries, "POST", url, auth(world["reader"]))

    assert len(statements) == 2, statements


def test_a_comment_is_one_statement(client, count_queries, world):
    """One statement that finds the article, inserts and returns the comment."""
    url = f"/api/articles/{world['slugs'][3]}/comments"

    statements = write_statements(
        client, count_queries, "POST", url, auth(world["reader"]), {"comment": {"body": "hello"}}
    )

    assert len(statements) == 1, statements
    assert statements[0].startswith("INSERT INTO comments"), statements


def test_a_create_with_known_tags_writes_the_article_links_and_deltas_then_folds(
    client, count_queries, world, database_url
):
    """The article's insert, its tag links, the totals' deltas; the answer is not read back.

    PostgreSQL: all three in one statement (``WITH new_article AS (INSERT …),
    new_links AS (INSERT …), new_deltas AS (INSERT …) SELECT …``). SQLite:
    three statements. The title's slug is free: ``ON CONFLICT (slug) DO
    NOTHING``, no lookup, lock or savepoint. The deltas lock no shared row;
    the fold follows the commit in a transaction of its own (PostgreSQL: its
    try-lock first), its first statement the ``DELETE … RETURNING`` of the
    deltas.
    """
    article = {"title": "New", "description": "d", "body": "b", "tagList": ["common", "tag1"]}

    statements = [
        " ".join(s.split())
        for s in write_statements(
            client,
            count_queries,
            "POST",
            "/api/articles",
            auth(world["reader"]),
            {"article": article},
        )
    ]

    on_postgresql = database_url.startswith("postgresql")
    recorded = 1 if on_postgresql else 3
    writes, fold = statements[:recorded], statements[recorded:]
    if on_postgresql:
        assert writes[0].startswith("WITH new_article AS (INSERT INTO articles"), writes
        assert "new_links AS (INSERT INTO article_tags" in writes[0], writes
        assert "new_deltas AS (INSERT INTO counter_deltas" in writes[0], writes
    else:
        assert [s.split(" (")[0] for s in writes] == [
            "INSERT INTO articles",
            "INSERT INTO article_tags",
            "INSERT INTO counter_deltas",
        ], writes
    assert not any("INSERT INTO tags" in s or "UPDATE tags" in s for s in writes), writes
    assert fold[1 if on_postgresql else 0].startswith("DELETE FROM counter_deltas"), fold
    # try-lock (SQLite: none), take, lock the tags, move each tag (one round trip), the total
    assert len(fold) == (5 if on_postgresql else 4), fold


WRITES_ANSWERING_A_USER = {
    "create": (
        "POST",
        "/api/articles",
        {"article": {"title": "t", "description": "d", "body": "b"}},
    ),
    "follow": ("POST", "/api/profiles/other/follow", None),
    "unfollow": ("DELETE", "/api/profiles/author/follow", None),
}


@pytest.mark.parametrize("write", WRITES_ANSWERING_A_USER)
def test_a_write_answers_its_user_from_before_its_commit(client, count_queries, world, write):
    """A creation's author, a follow's profile: taken before the commit. After it, the
    session has expired the row, and reading its columns would read it again (a round
    trip, and a 404 for a write that succeeded if the user went meanwhile). A comment
    reads the token's user as every write does: once, or not at all when it is remembered.
    """
    register(client, username="other")
    headers = auth(world["reader"])

    def user_reads(method, url, payload):
        with count_queries() as counter:
            response = client.open(url, method=method, json=payload, headers=headers)
        assert response.status_code in (200, 201), response.get_json()
        return [s for s in counter.statements if reads_a_user_by_id(s)]

    comment = ("POST", f"/api/articles/{world['slugs'][0]}/comments", {"comment": {"body": "hi"}})
    user_reads(*comment)  # the token's user, remembered from here on where the feed vouches
    by_a_comment = user_reads(*comment)
    by_the_write = user_reads(*WRITES_ANSWERING_A_USER[write])

    assert len(by_the_write) == len(by_a_comment) <= 1, by_the_write


def creation_statements(client, count_queries, author, title):
    """What a creation titled ``title`` runs before its commit (the fold left out).

    The token's user is left out too: read, or remembered (app/data/known_users.py)
    once the change feed listens, which it may not yet do when the request starts.
    """
    article = {"title": title, "description": "d", "body": "b", "tagList": []}
    with count_queries() as counter:
        response = client.post("/api/articles", json={"article": article}, headers=auth(author))
    assert response.status_code == 201, response.get_json()
    statements = [
        " ".join(s.split())
        for s in counter.statements
        if not is_notification(s) and not reads_a_user_by_id(s)
    ]
    recorded = max(n for n, s in enumerate(statements) if "INSERT INTO counter_deltas" in s)
    return response.get_json()["article"]["slug"], statements[: recorded + 1]


def article_writes(statements):
    return [
        s
        for s in statements
        if s.startswith(("INSERT INTO articles", "WITH new_article AS (INSERT", "SAVEPOINT"))
    ]


def test_a_create_whose_slug_is_free_writes_the_article_in_one_statement(
    client, count_queries, database_url
):
    """``INSERT … ON CONFLICT (slug) DO NOTHING RETURNING id, …``, deltas (PostgreSQL: the
    deltas in the insert's statement)."""
    author = register(client, username="writer")

    slug, statements = creation_statements(client, count_queries, author, "Free title")

    assert slug == "free-title"
    assert len(statements) == (1 if database_url.startswith("postgresql") else 2), statements
    assert len(article_writes(statements)) == 1, statements
    assert "ON CONFLICT (slug) DO NOTHING" in article_writes(statements)[0]
    assert not any("pg_advisory" in s or "LIKE" in s for s in statements), statements


def test_a_create_whose_slug_is_taken_looks_up_the_next_suffix(client, count_queries, database_url):
    """The free-slug insert inserts nothing; then the lock (PostgreSQL), the lookup, one insert.

    PostgreSQL's first insert is the one-statement creation's: it records no delta either.
    """
    author = register(client, username="writer")
    create_article(client, author, title="Taken title")

    slug, statements = creation_statements(client, count_queries, author, "Taken title")

    assert slug == "taken-title-2"
    lock = 1 if database_url.startswith("postgresql") else 0
    assert len(statements) == 4 + lock, statements
    assert len(article_writes(statements)) == 2, statements  # no savepoint


def test_a_create_whose_base_slug_is_reserved_never_tries_it(client, count_queries):
    author = register(client, username="writer")

    slug, statements = creation_statements(client, count_queries, author, "Feed")

    assert slug == "feed-2"
    assert len(article_writes(statements)) == 1, statements
