"""Attacks on deletions racing other writes, and on the running totals they move.

``DELETE /api/articles/{slug}`` racing favorites, comments, retitles, comment
deletes and reads (cached answers); an article deleted and made again under the
same title while other clients still hold its slug. ``DELETE`` of a comment
racing itself and its article's delete, by someone else, and with ids that are
huge, negative, not numbers, or another article's. Favorite storms from many
users and from one. Afterwards: no 500 ever, every 4xx in the envelope, a
failed request wrote nothing, no row outlives its article, every running total
equals its rows, every ``favoritesCount`` equals the favorites rows, and every
cached answer (here, on another instance, on each gunicorn worker) equals a
fresh read.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from app import close_app
from app.data import counters
from app.extensions import db
from tests.apps import instances_with_late_notices, make_app, writer_reader_uncached
from tests.factories import add_comment, auth, create_article, favorite, follow, register
from tests.listening import wait_for
from tests.serving import HttpClient, ServedApp, post_article

TABLES = ("users", "follows", "articles", "article_tags", "tags", "favorites", "comments")


# --- helpers ----------------------------------------------------------------------


def rows(app: Any) -> dict[str, list[tuple[str, ...]]]:
    """Every row of the tables a request could write, to prove a failed one wrote nothing."""
    with app.app_context():
        found = {
            table: sorted(
                tuple(str(value) for value in row)
                for row in db.session.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
            )
            for table in TABLES
        }
        db.session.rollback()
    return found


def scalar(app: Any, statement: str, **params: Any) -> Any:
    with app.app_context():
        try:
            return db.session.execute(text(statement), params).scalar()
        finally:
            db.session.rollback()


def orphans(app: Any) -> dict[str, int]:
    """Rows that name an article (or its tag link) no longer there: none may outlive it."""
    return {
        table: scalar(
            app,
            f"SELECT count(*) FROM {table} t "  # noqa: S608
            "WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.id = t.article_id)",
        )
        for table in ("comments", "favorites", "article_tags")
    }


def assert_sound(app: Any) -> None:
    """No orphan rows, and every running total equals a fresh count."""
    assert orphans(app) == {"comments": 0, "favorites": 0, "article_tags": 0}
    with app.app_context():
        assert counters.drift() == []


def favorites_rows(app: Any) -> dict[str, int]:
    """Each article's favorites, counted from the rows (slug → count)."""
    with app.app_context():
        found = dict(
            db.session.execute(
                text(
                    "SELECT a.slug, count(f.user_id) FROM articles a "
                    "LEFT JOIN favorites f ON f.article_id = a.id GROUP BY a.slug"
                )
            ).all()
        )
        db.session.rollback()
    return found


def assert_envelope(status: int, body: Any) -> None:
    assert set(body) == {"errors"}, (status, body)
    errors = body["errors"]
    assert errors and all(
        isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)
        for messages in errors.values()
    ), (status, body)


def checked(responses: list[Any], allowed: set[int]) -> collections.Counter[int]:
    """The statuses of answers from served requests: only ``allowed``, 4xx in the envelope."""
    found = collections.Counter(r.status_code for r in responses)
    assert set(found) <= allowed, [(r.status_code, r.text[:300]) for r in responses]
    for r in responses:
        if r.status_code >= 400:
            assert_envelope(r.status_code, r.json())
    return found


def lined_up(calls: list[Callable[[], Any]]) -> list[Any]:
    """Every call on a thread of its own, released together by a barrier; their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(n: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[n] = call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


# --- deleting, then making again under the same title ---------------------------


def test_an_article_made_again_under_a_deleted_ones_title_starts_with_nothing_of_it(client, app):
    """The new article takes the freed slug (and on SQLite maybe the freed id): none of the
    old article's comments, favorites or tags come with it."""
    author, fan = register(client), register(client)
    slug = create_article(client, author, title="Phoenix", tagList=["ash"])["slug"]
    add_comment(client, fan, slug, "old comment")
    favorite(client, fan, slug)
    assert client.delete(f"/api/articles/{slug}", headers=auth(author)).status_code == 204

    again = create_article(client, author, title="Phoenix")

    assert again["slug"] == slug
    assert again["favoritesCount"] == 0
    assert again["tagList"] == []
    read = client.get(f"/api/articles/{slug}", headers=auth(fan)).get_json()["article"]
    assert (read["favorited"], read["favoritesCount"], read["tagList"]) == (False, 0, [])
    assert client.get(f"/api/articles/{slug}/comments").get_json() == {"comments": []}
    assert client.get(f"/api/articles?favorited={fan['username']}").get_json() == {
        "articles": [],
        "articlesCount": 0,
    }
    assert client.get("/api/tags").get_json() == {"tags": []}
    assert_sound(app)


def test_a_client_holding_a_deleted_slug_gets_404_for_every_write_and_writes_nothing(client, app):
    author, fan = register(client), register(client)
    slug = create_article(client, author, title="Gone Soon")["slug"]
    comment = add_comment(client, fan, slug)
    assert client.delete(f"/api/articles/{slug}", headers=auth(author)).status_code == 204
    before = rows(app)

    answers = [
        client.post(f"/api/articles/{slug}/favorite", headers=auth(fan)),
        client.delete(f"/api/articles/{slug}/favorite", headers=auth(fan)),
        client.post(
            f"/api/articles/{slug}/comments", json={"comment": {"body": "x"}}, headers=auth(fan)
        ),
        client.delete(f"/api/articles/{slug}/comments/{comment['id']}", headers=auth(fan)),
        client.put(f"/api/articles/{slug}", json={"article": {"body": "x"}}, headers=auth(author)),
        client.delete(f"/api/articles/{slug}", headers=auth(author)),
        client.get(f"/api/articles/{slug}"),
        client.get(f"/api/articles/{slug}/comments"),
    ]

    for answer in answers:
        assert answer.status_code == 404, (answer.request.method, answer.get_json())
        assert_envelope(404, answer.get_json())
    assert rows(app) == before


def test_an_old_comment_id_does_not_delete_a_comment_of_the_article_made_again(client, app):
    """The old article's comment ids are gone with it; a new comment gets its own id."""
    author, fan = register(client), register(client)
    slug = create_article(client, author, title="Reborn")["slug"]
    old = add_comment(client, fan, slug)
    assert client.delete(f"/api/articles/{slug}", headers=auth(author)).status_code == 204
    create_article(client, author, title="Reborn")
    new = add_comment(client, author, slug)

    answer = client.delete(f"/api/articles/{slug}/comments/{old['id']}", headers=auth(fan))

    if old["id"] != new["id"]:
        assert answer.status_code == 404, answer.get_json()
    else:  # the id was reused: it is the author's comment now, not the fan's
        assert answer.status_code == 403, answer.get_json()
    listed = client.get(f"/api/articles/{slug}/comments").get_json()["comments"]
    assert [c["id"] for c in listed] == [new["id"]]


# --- DELETE a comment: who, and which id -----------------------------------------

BAD_COMMENT_IDS = {
    "zero": "0",
    "negative": "-1",
    "past 32 bits": str(2**31),
    "past 64 bits": str(2**64),
    "forty digits": "9" * 40,
    "not a number": "abc",
    "a float": "1.0",
    "leading plus": "+1",
    "arabic-indic digits": "\u0661",
    "fullwidth digit": "\uff11",
    "empty-looking": "%20",
    "an injection": "1%20OR%201=1",
}


@pytest.mark.parametrize("comment_id", list(BAD_COMMENT_IDS.values()), ids=list(BAD_COMMENT_IDS))
def test_deleting_a_comment_by_an_id_that_names_none_is_404_and_writes_nothing(
    client, app, comment_id
):
    author = register(client)
    slug = create_article(client, author)["slug"]
    add_comment(client, author, slug)
    before = rows(app)

    answer = client.delete(f"/api/articles/{slug}/comments/{comment_id}", headers=auth(author))

    assert answer.status_code == 404, answer.get_data()
    assert_envelope(404, answer.get_json())
    assert rows(app) == before


def test_deleting_another_articles_comment_through_this_slug_is_404_and_writes_nothing(client, app):
    author = register(client)
    mine = create_article(client, author)["slug"]
    other = create_article(client, author)["slug"]
    comment = add_comment(client, author, other)
    before = rows(app)

    answer = client.delete(f"/api/articles/{mine}/comments/{comment['id']}", headers=auth(author))

    assert answer.status_code == 404, answer.get_json()
    assert_envelope(404, answer.get_json())
    assert rows(app) == before


def test_deleting_someone_elses_comment_is_403_even_the_article_authors(client, app):
    author, fan = register(client), register(client)
    slug = create_article(client, author)["slug"]
    comment = add_comment(client, fan, slug)
    before = rows(app)

    by_author = client.delete(
        f"/api/articles/{slug}/comments/{comment['id']}", headers=auth(author)
    )
    anonymous = client.delete(f"/api/articles/{slug}/comments/{comment['id']}")

    assert by_author.status_code == 403, by_author.get_json()
    assert_envelope(403, by_author.get_json())
    assert anonymous.status_code == 401, anonymous.get_json()
    assert_envelope(401, anonymous.get_json())
    assert rows(app) == before


def test_a_comment_deleted_twice_is_204_then_404(client, app):
    author = register(client)
    slug = create_article(client, author)["slug"]
    comment = add_comment(client, author, slug)
    url = f"/api/articles/{slug}/comments/{comment['id']}"

    first = client.delete(url, headers=auth(author))
    second = client.delete(url, headers=auth(author))

    assert (first.status_code, second.status_code) == (204, 404)
    assert_envelope(404, second.get_json())
    assert scalar(app, "SELECT count(*) FROM comments") == 0


# --- cached answers around deletes -------------------------------------------------


def test_cached_answers_after_deletes_and_a_remake_equal_fresh_ones_here_and_elsewhere(
    database_url,
):
    """Every read warmed on a writer and a cached reader; after each delete (a comment, a
    favorite, the article) and the article made again under its title, both equal a
    fresh read, the writer at once and the reader soon."""
    with writer_reader_uncached(database_url) as (writer, reader, uncached):
        author, fan = register(writer, username="Writer"), register(writer, username="Fan")
        follow(writer, fan, "writer")
        slug = create_article(writer, author, title="Cached", tagList=["hot"])["slug"]
        neighbour = create_article(writer, author, title="Neighbour", tagList=["hot"])["slug"]
        favorite(writer, fan, slug)
        favorite(writer, fan, neighbour)
        comment = add_comment(writer, fan, slug)
        add_comment(writer, author, slug)

        urls = [
            ("/api/articles", {}),
            ("/api/articles", auth(fan)),
            ("/api/articles/feed", auth(fan)),
            ("/api/tags", {}),
            ("/api/articles?tag=hot", {}),
            ("/api/articles?author=Writer", auth(fan)),
            ("/api/articles?favorited=Fan", {}),
            ("/api/articles?favorited=Fan", auth(fan)),
            (f"/api/articles/{slug}", {}),
            (f"/api/articles/{slug}", auth(fan)),
            (f"/api/articles/{slug}/comments", {}),
            (f"/api/articles/{slug}/comments", auth(fan)),
            (f"/api/articles/{neighbour}", auth(fan)),
        ]

        def answers(client: FlaskClient) -> list[tuple[int, Any]]:
            return [
                (r.status_code, r.get_json()) for r in (client.get(u, headers=h) for u, h in urls)
            ]

        steps: list[Callable[[], Any]] = [
            lambda: writer.delete(
                f"/api/articles/{slug}/comments/{comment['id']}", headers=auth(fan)
            ),
            lambda: writer.delete(f"/api/articles/{slug}/favorite", headers=auth(fan)),
            lambda: writer.post(f"/api/articles/{slug}/favorite", headers=auth(fan)),
            lambda: writer.delete(f"/api/articles/{slug}", headers=auth(author)),
            lambda: writer.post(
                "/api/articles",
                json={"article": {"title": "Cached", "description": "d", "body": "b"}},
                headers=auth(author),
            ),
            lambda: writer.delete(f"/api/articles/{neighbour}", headers=auth(author)),
        ]
        for n, step in enumerate(steps):
            answers(writer)
            answers(reader)
            answers(writer)
            answers(reader)
            assert step().status_code in (200, 201, 204), n
            assert answers(writer) == answers(uncached), n
            wait_for(lambda: answers(reader) == answers(uncached))


def test_a_delete_and_remake_heard_late_elsewhere_leaves_no_stale_answer_once_heard(
    database_url,
):
    """``there`` deletes the article and makes another under its title while ``here`` hears
    nothing; once ``here`` hears, its cached answers for the slug are the new article's."""
    with instances_with_late_notices(database_url) as apps:
        author, fan = register(apps.there), register(apps.there)
        slug = create_article(apps.there, author, title="Late", tagList=["old"])["slug"]
        favorite(apps.there, fan, slug)
        add_comment(apps.there, fan, slug)
        urls = [
            f"/api/articles/{slug}",
            f"/api/articles/{slug}/comments",
            "/api/articles",
            "/api/tags",
            "/api/articles?tag=old",
            f"/api/articles?favorited={fan['username']}",
        ]

        def answers(client: FlaskClient) -> list[tuple[int, Any]]:
            return [(r.status_code, r.get_json()) for r in (client.get(u) for u in urls)]

        answers(apps.here)
        answers(apps.here)
        apps.notices.hold()
        assert apps.there.delete(f"/api/articles/{slug}", headers=auth(author)).status_code == 204
        create_article(apps.there, author, title="Late", body="new body", tagList=["new"])
        apps.notices.release()

        fresh = answers(apps.uncached)
        assert fresh[0][1]["article"]["body"] == "new body"
        wait_for(lambda: answers(apps.here) == fresh, seconds=5)


# --- races, served by gunicorn ----------------------------------------------------


def test_concurrent_deletes_of_one_comment_delete_it_once(served_app: ServedApp) -> None:
    author = served_app.register("commenter")
    clients = [served_app.client(author) for _ in range(6)]
    slug = post_article(clients[0])["slug"]
    tally: collections.Counter[int] = collections.Counter()
    for _ in range(3):
        made = clients[0].post(f"/api/articles/{slug}/comments", json={"comment": {"body": "x"}})
        url = f"/api/articles/{slug}/comments/{made.json()['comment']['id']}"
        tally += checked(lined_up([partial(c.delete, url) for c in clients]), {204, 404})

    assert tally == {204: 3, 404: 15}
    assert scalar(served_app.app, "SELECT count(*) FROM comments") == 0
    assert clients[0].get(f"/api/articles/{slug}/comments").json() == {"comments": []}
    for c in clients:
        c.close()


def test_comment_deletes_and_posts_racing_their_articles_delete_leave_no_comment_behind(
    served_app: ServedApp,
) -> None:
    author, fan = served_app.register("host"), served_app.register("guest")
    host, guests = served_app.client(author), [served_app.client(fan) for _ in range(5)]
    tally: collections.Counter[int] = collections.Counter()
    for _ in range(3):
        slug = post_article(host)["slug"]
        base = f"/api/articles/{slug}/comments"
        ids = [
            guests[0].post(base, json={"comment": {"body": "x"}}).json()["comment"]["id"]
            for _ in range(2)
        ]
        calls = [partial(host.delete, f"/api/articles/{slug}")]
        calls += [partial(g.delete, f"{base}/{ids[n % 2]}") for n, g in enumerate(guests[:3])]
        calls += [partial(g.post, base, json={"comment": {"body": "y"}}) for g in guests[3:]]
        tally += checked(lined_up(calls), {200, 204, 404})

    assert tally[204] >= 3  # the three articles' deletes, at least
    assert scalar(served_app.app, "SELECT count(*) FROM articles") == 0
    assert_sound(served_app.app)
    for c in [host, *guests]:
        c.close()


def test_favorite_storms_leave_every_favorites_count_equal_to_the_rows(
    served_app: ServedApp,
) -> None:
    """Eight fans favorite and unfavorite two articles at once, one of them from four
    connections at a time; afterwards every answer's ``favoritesCount`` (the article, the
    list, ``?favorited=``, the feed, on many connections, so both workers) is the rows'."""
    author = served_app.register("star")
    fans = [served_app.register(f"fan{n}") for n in range(8)]
    fan_clients = [served_app.client(f) for f in fans]
    star = served_app.client(author)
    slugs = [post_article(star)["slug"] for _ in range(2)]
    for c in fan_clients:
        assert c.post("/api/profiles/star/follow").status_code == 200
    one = [served_app.client(fans[0]) for _ in range(4)]
    calls: list[Callable[[], Any]] = []
    for n, c in enumerate(fan_clients):
        for slug in slugs:
            url = f"/api/articles/{slug}/favorite"
            calls += [partial(c.post, url), partial(c.delete, url), partial(c.post, url)][
                : 1 + n % 3
            ]
    for c in one:
        calls += [partial(c.post, f"/api/articles/{slugs[0]}/favorite")]
        calls += [partial(c.delete, f"/api/articles/{slugs[0]}/favorite")]

    for _ in range(2):
        checked(lined_up(calls), {200, 409})

    expected = favorites_rows(served_app.app)
    readers = [served_app.client(f) for f in fans[:2]] * 3 + [served_app.client() for _ in range(4)]
    for reader in readers:
        for slug in slugs:
            assert (
                reader.get(f"/api/articles/{slug}").json()["article"]["favoritesCount"]
                == (expected[slug])
            )
        for path in ("/api/articles", "/api/articles?favorited=fan1", "/api/articles?author=star"):
            for article in reader.get(path).json()["articles"]:
                assert article["favoritesCount"] == expected[article["slug"]], path
    for article in fan_clients[1].get("/api/articles/feed").json()["articles"]:
        assert article["favoritesCount"] == expected[article["slug"]]
    # The same user's storm ends with at most one row, and the flag says which.
    own = scalar(
        served_app.app,
        "SELECT count(*) FROM favorites f JOIN articles a ON a.id = f.article_id "
        "JOIN users u ON u.id = f.user_id WHERE u.username = 'fan0' AND a.slug = :s",
        s=slugs[0],
    )
    read = fan_clients[0].get(f"/api/articles/{slugs[0]}").json()["article"]
    assert read["favorited"] is bool(own)
    assert_sound(served_app.app)
    for c in [star, *fan_clients, *one, *readers]:
        c.close()


def test_deletes_racing_favorites_comments_retitles_and_reads_answer_what_happened(
    served_app: ServedApp,
) -> None:
    """Each article is deleted while fans favorite, unfavorite and comment on it, its author
    retitles it and deletes a comment, and readers read it, its comments, the lists and
    the feed. No 500; afterwards no row outlives its article, totals equal rows, and on
    every connection each cached read equals a fresh one."""
    author = served_app.register("doomed")
    fans = [served_app.register(f"reader{n}") for n in range(3)]
    writers = [served_app.client(author) for _ in range(3)]
    fan_clients = [served_app.client(f) for f in fans]
    for c in fan_clients:
        assert c.post("/api/profiles/doomed/follow").status_code == 200
    calls: list[Callable[[], Any]] = []
    for n in range(4):
        slug = post_article(writers[0], tagList=["storm", f"own{n}"])["slug"]
        url = f"/api/articles/{slug}"
        own = writers[0].post(url + "/comments", json={"comment": {"body": "mine"}})
        favorite_url = url + "/favorite"
        calls += [
            partial(writers[0].delete, url),
            partial(writers[1].put, url, json={"article": {"title": f"Retitled {n}"}}),
            partial(writers[2].delete, f"{url}/comments/{own.json()['comment']['id']}"),
            partial(fan_clients[0].post, favorite_url),
            partial(fan_clients[1].post, favorite_url),
            partial(fan_clients[1].delete, favorite_url),
            partial(fan_clients[2].post, url + "/comments", json={"comment": {"body": "hi"}}),
            partial(fan_clients[0].get, url),
            partial(fan_clients[2].get, url + "/comments"),
            partial(fan_clients[1].get, "/api/articles/feed"),
            partial(fan_clients[0].get, "/api/articles?tag=storm"),
        ]
        if n % 2:  # half the articles survive their storm: the delete loses to the retitle
            calls.pop(0)
    # warm every worker's cache before the storm
    for c in [*writers, *fan_clients]:
        c.get("/api/articles")
        c.get("/api/articles/feed")

    checked(lined_up(calls), {200, 201, 204, 404, 409})

    assert_sound(served_app.app)
    uncached_app = make_app(served_app.database_url, RESPONSE_CACHE=False)
    try:
        uncached = uncached_app.test_client()
        slugs = [row[0] for row in served_app.sql("SELECT slug FROM articles ORDER BY slug")]
        urls = ["/api/articles", "/api/articles/feed", "/api/tags", "/api/articles?tag=storm"]
        urls += ["/api/articles?favorited=reader1", "/api/articles?favorited=reader0"]
        for slug in slugs:
            urls += [f"/api/articles/{slug}", f"/api/articles/{slug}/comments"]
        for fan, c in zip(fans, fan_clients, strict=True):
            for u in urls:
                fresh = uncached.get(u, headers=auth(fan))
                served = c.get(u)
                assert (served.status_code, served.json()) == (
                    fresh.status_code,
                    fresh.get_json(),
                ), u
        listed = uncached.get("/api/articles").get_json()
        assert listed["articlesCount"] == len(slugs)
    finally:
        close_app(uncached_app)
    for c in [*writers, *fan_clients]:
        c.close()


def test_an_article_deleted_and_made_again_while_others_favorite_its_slug(
    served_app: ServedApp,
) -> None:
    """Fans favorite and comment on a slug while its author deletes it and makes another
    article under the same title: whatever each answered, the rows agree with it."""
    author = served_app.register("remaker")
    fans = [served_app.register(f"holder{n}") for n in range(4)]
    writer, fan_clients = served_app.client(author), [served_app.client(f) for f in fans]
    slug = post_article(writer, title="Reused Title")["slug"]
    article = {"title": "Reused Title", "description": "d", "body": "b"}

    def delete_then_remake() -> Any:
        gone = writer.delete(f"/api/articles/{slug}")
        assert gone.status_code == 204, gone.text
        return writer.post("/api/articles", json={"article": article})

    calls: list[Callable[[], Any]] = [delete_then_remake]
    calls += [partial(c.post, f"/api/articles/{slug}/favorite") for c in fan_clients]
    results = lined_up(calls)

    checked(results, {200, 201, 404, 409})
    assert results[0].status_code == 201
    assert results[0].json()["article"]["slug"] == slug
    rows_now = favorites_rows(served_app.app)
    assert rows_now == {slug: rows_now[slug]}
    read = fan_clients[0].get(f"/api/articles/{slug}").json()["article"]
    assert read["favoritesCount"] == rows_now[slug]
    for fan, c, answer in zip(fans, fan_clients, results[1:], strict=True):
        mine = c.get(f"/api/articles/{slug}").json()["article"]["favorited"]
        stored = scalar(
            served_app.app,
            "SELECT count(*) FROM favorites f JOIN users u ON u.id = f.user_id "
            "WHERE u.username = :u",
            u=fan["username"],
        )
        assert mine is bool(stored), fan["username"]
        if answer.status_code == 404:
            assert not stored
    assert_sound(served_app.app)
    for c in [writer, *fan_clients]:
        c.close()


def on_postgresql(served: ServedApp) -> bool:
    return served.database_url.startswith("postgresql")


def test_concurrent_favorites_and_unfavorites_answer_counts_their_writes_could_see(
    served_app: ServedApp,
) -> None:
    """Six fans favorite one article at once, then unfavorite it at once (three rounds).

    Each answer has the count its write saw, moved by its own change (docs/api.md,
    "Concurrency and database trouble"): between 1 and 6 for the favorites, between 0
    and 5 for the unfavorites, with ``favorited`` as asked. On PostgreSQL writes in
    flight together do not count each other (1, 1, 2, 4, 5, 5 is possible); SQLite
    writes one at a time, so its answers are some order of the six. The stored
    favorites and every later read count all six.
    """
    author = served_app.register("idol")
    fans = [served_app.register(f"admirer{n}") for n in range(6)]
    star, fan_clients = served_app.client(author), [served_app.client(f) for f in fans]
    expected = {"post": (range(1, 7), True), "delete": (range(0, 6), False)}
    for _ in range(3):
        slug = post_article(star)["slug"]
        url = f"/api/articles/{slug}/favorite"
        for method in ("post", "delete"):
            answers = lined_up([partial(c.request, method.upper(), url) for c in fan_clients])
            checked(answers, {200})
            counts = sorted(a.json()["article"]["favoritesCount"] for a in answers)
            possible, favorited = expected[method]
            assert all(count in possible for count in counts), (method, counts)
            assert {a.json()["article"]["favorited"] for a in answers} == {favorited}
            if not on_postgresql(served_app):
                assert counts == list(possible), (method, counts)
            read = star.get(f"/api/articles/{slug}").json()["article"]["favoritesCount"]
            assert read == (6 if method == "post" else 0)

    assert set(favorites_rows(served_app.app).values()) == {0}
    for c in [star, *fan_clients]:
        c.close()


def test_deletes_racing_creates_of_the_same_title_give_distinct_slugs_and_no_500(
    served_app: ServedApp,
) -> None:
    author = served_app.register("recycler")
    clients = [served_app.client(author) for _ in range(6)]
    article = {"title": "Recycled", "description": "d", "body": "b", "tagList": ["r"]}
    for _ in range(3):
        slug = post_article(clients[0], title="Recycled", tagList=["r"])["slug"]
        calls = [partial(clients[0].delete, f"/api/articles/{slug}")]
        calls += [partial(c.post, "/api/articles", json={"article": article}) for c in clients[1:]]
        checked(lined_up(calls), {201, 204})

    slugs = [row[0] for row in served_app.sql("SELECT slug FROM articles")]
    assert len(slugs) == len(set(slugs)) == 15
    tags = served_app.client().get("/api/articles?tag=r").json()
    assert tags["articlesCount"] == 15
    assert_sound(served_app.app)
    for c in clients:
        c.close()


def test_concurrent_conditional_deletes_delete_once_and_412_the_rest(
    served_app: ServedApp,
) -> None:
    """Four deletes of one comment with ``If-Match: *``, then four of its article with the
    tag the author's ``GET`` answered: of each four, one 204 and three 412."""
    author = served_app.register("conditional")
    clients = [served_app.client(author) for _ in range(4)]
    slug = post_article(clients[0], tagList=["e"])["slug"]
    made = clients[0].post(f"/api/articles/{slug}/comments", json={"comment": {"body": "x"}})
    url = f"/api/articles/{slug}/comments/{made.json()['comment']['id']}"

    comments = lined_up([partial(c.delete, url, headers={"If-Match": "*"}) for c in clients])
    etag = clients[0].get(f"/api/articles/{slug}").headers["ETag"]
    url = f"/api/articles/{slug}"
    articles = lined_up([partial(c.delete, url, headers={"If-Match": etag}) for c in clients])

    assert checked(comments, {204, 412}) == {204: 1, 412: 3}
    assert checked(articles, {204, 412}) == {204: 1, 412: 3}
    assert scalar(served_app.app, "SELECT count(*) FROM articles") == 0
    assert_sound(served_app.app)
    for c in clients:
        c.close()


def test_a_delete_with_an_etag_read_before_a_favorite_is_412_and_writes_nothing(client, app):
    author, fan = register(client), register(client)
    slug = create_article(client, author, tagList=["t"])["slug"]
    etag = client.get(f"/api/articles/{slug}", headers=auth(author)).headers["ETag"]
    favorite(client, fan, slug)
    before = rows(app)

    answer = client.delete(f"/api/articles/{slug}", headers={**auth(author), "If-Match": etag})

    assert answer.status_code == 412, answer.get_json()
    assert_envelope(412, answer.get_json())
    assert rows(app) == before


ODD_ARTICLE_PATHS = {
    "the feed's path": "/api/articles/feed",
    "a NUL": "/api/articles/%00",
    "dot-dot": "/api/articles/..",
    "a slash in the slug": "/api/articles/a%2Fb",
    "a slug of 7000 letters": "/api/articles/" + "a" * 7000,
    "a slug past the URL limit": "/api/articles/" + "a" * 9000,
    "a comment under the feed": "/api/articles/feed/comments/1",
    "a comment with no id": "/api/articles/x/comments/",
    "the favorite of nothing": "/api/articles//favorite",
}


@pytest.mark.parametrize("path", list(ODD_ARTICLE_PATHS.values()), ids=list(ODD_ARTICLE_PATHS))
def test_deleting_at_odd_paths_answers_4xx_in_the_envelope_and_writes_nothing(client, app, path):
    author = register(client)
    slug = create_article(client, author, title="A")["slug"]
    add_comment(client, author, slug)
    favorite(client, author, slug)
    before = rows(app)

    answer = client.delete(path, headers=auth(author))

    assert 400 <= answer.status_code < 500, (answer.status_code, answer.get_data()[:300])
    assert_envelope(answer.status_code, answer.get_json())
    assert rows(app) == before


SPELLINGS = {
    "upper case": str.upper,
    "fullwidth": lambda s: "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in s),
    "percent-encoded": lambda s: "".join(f"%{ord(c):02X}" for c in s),
    "a trailing slash": lambda s: s + "/",
}


@pytest.mark.parametrize("spell", list(SPELLINGS.values()), ids=list(SPELLINGS))
def test_a_delete_finds_an_article_exactly_when_its_get_does(client, app, spell):
    """Whatever spelling of a slug reads the article, deletes it; any other writes nothing."""
    author = register(client)
    slug = create_article(client, author, title="Spelled Out")["slug"]
    comment = add_comment(client, author, slug)
    path = f"/api/articles/{spell(slug)}"
    found = client.get(path).status_code
    assert found in (200, 404)
    before = rows(app)

    comment_gone = client.delete(
        f"{path.rstrip('/')}/comments/{comment['id']}", headers=auth(author)
    )
    gone = client.delete(path, headers=auth(author))

    assert (comment_gone.status_code, gone.status_code) == (
        (204, 204) if found == 200 else (404, 404)
    )
    if found == 404:
        assert rows(app) == before
    else:
        assert scalar(app, "SELECT count(*) FROM articles") == 0


def test_no_read_that_starts_after_a_delete_answers_sees_what_it_deleted(
    served_app: ServedApp,
) -> None:
    """Readers on eight connections (both workers) read an article, its comments and the
    lists in a loop while its author deletes a comment, then the article: every read that
    began after a delete answered reflects it (cache fills racing the delete included)."""
    author, fan = served_app.register("vanisher"), served_app.register("watcher")
    writer = served_app.client(author)
    slug = post_article(writer, tagList=["gone"])["slug"]
    base = f"/api/articles/{slug}"
    comment_id = writer.post(base + "/comments", json={"comment": {"body": "x"}}).json()["comment"][
        "id"
    ]
    assert served_app.client(fan).post(base + "/favorite").status_code == 200
    readers = [served_app.client(fan if n % 2 else None) for n in range(8)]
    paths = [base, base + "/comments", "/api/articles?tag=gone", "/api/articles?favorited=watcher"]
    done = threading.Event()
    moments: dict[str, float] = {}
    seen: list[tuple[float, str, int, Any]] = []

    def read(client: HttpClient) -> None:
        while not done.is_set():
            for path in paths:
                started = time.monotonic()
                answer = client.get(path)
                seen.append((started, path, answer.status_code, answer.json()))

    def write() -> None:
        time.sleep(0.3)
        gone = writer.delete(f"{base}/comments/{comment_id}")
        moments["comment"] = time.monotonic()
        assert gone.status_code == 204, gone.text
        time.sleep(0.3)
        gone = writer.delete(base)
        moments["article"] = time.monotonic()
        assert gone.status_code == 204, gone.text
        time.sleep(0.3)
        done.set()

    lined_up([write, *(partial(read, r) for r in readers)])

    empty_list = (200, {"articles": [], "articlesCount": 0})
    stale = []
    for started, path, status, body in seen:
        if started > moments["article"]:
            expected = empty_list if path.startswith("/api/articles?") else 404
        elif started > moments["comment"] and path.endswith("/comments"):
            expected = (200, {"comments": []})
            if status == 404:  # the article's delete may have committed already
                continue
        else:
            continue
        if (status if expected == 404 else (status, body)) != expected:
            stale.append((path, status, body))
    assert len(seen) > 50
    assert stale == []
    for c in [writer, *readers]:
        c.close()


def test_every_worker_answers_fresh_right_after_each_delete(served_app: ServedApp) -> None:
    """Warm six connections (both workers), write, and at once each equals a fresh read:
    a comment deleted, a favorite removed, the article deleted, made again, deleted again."""
    author, fan = served_app.register("Eraser"), served_app.register("Onlooker")
    writer, fan_client = served_app.client(author), served_app.client(fan)
    assert fan_client.post("/api/profiles/eraser/follow").status_code == 200
    article = {"title": "Fleeting", "description": "d", "body": "b", "tagList": ["f"]}
    slug = post_article(writer, **article)["slug"]
    other = post_article(writer, tagList=["f"])["slug"]
    comment_id = fan_client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "c"}}
    ).json()["comment"]["id"]
    assert fan_client.post(f"/api/articles/{slug}/favorite").status_code == 200
    readers = [served_app.client(fan if n % 2 else None) for n in range(6)]
    uncached_app = make_app(served_app.database_url, RESPONSE_CACHE=False)
    uncached = uncached_app.test_client()
    urls = [
        "/api/articles",
        "/api/articles/feed",
        "/api/tags",
        "/api/articles?tag=f",
        "/api/articles?author=eraser",
        "/api/articles?favorited=onlooker",
        "/api/articles?limit=1&offset=1",
        f"/api/articles/{slug}",
        f"/api/articles/{slug}/comments",
        f"/api/articles/{other}",
        "/api/profiles/eraser",
    ]

    def fresh(as_fan: bool) -> list[tuple[int, Any]]:
        headers = auth(fan) if as_fan else {}
        return [
            (r.status_code, r.get_json()) for r in (uncached.get(u, headers=headers) for u in urls)
        ]

    def served(client: HttpClient) -> list[tuple[int, Any]]:
        return [(r.status_code, r.json()) for r in (client.get(u) for u in urls)]

    steps = [
        (fan_client.delete, f"/api/articles/{slug}/comments/{comment_id}", None, 204),
        (fan_client.delete, f"/api/articles/{slug}/favorite", None, 200),
        (fan_client.post, f"/api/articles/{slug}/favorite", None, 200),
        (writer.delete, f"/api/articles/{slug}", None, 204),
        (writer.post, "/api/articles", {"article": article}, 201),
        (writer.delete, f"/api/articles/{slug}", None, 204),
        (writer.delete, f"/api/articles/{other}", None, 204),
    ]
    try:
        for method, path, body, status in steps:
            for reader in readers:
                served(reader)
            answer = method(path, **({"json": body} if body else {}))
            assert answer.status_code == status, (path, answer.text)
            expected = {False: fresh(False), True: fresh(True)}
            for n, reader in enumerate(readers):
                assert served(reader) == expected[bool(n % 2)], (method, path)
    finally:
        close_app(uncached_app)
        for c in [writer, fan_client, *readers]:
            c.close()


def test_a_retried_comment_delete_never_deletes_a_newer_comment(client):
    """A client deletes its comment, posts another, then its first delete is retried (a
    timeout, a double click): the retry is 404, the newer comment stays. Ids of deleted
    comments are never handed out again."""
    author = register(client)
    slug = create_article(client, author)["slug"]
    first = add_comment(client, author, slug, "first")
    url = f"/api/articles/{slug}/comments/{first['id']}"
    assert client.delete(url, headers=auth(author)).status_code == 204
    newer = add_comment(client, author, slug, "newer")

    retried = client.delete(url, headers=auth(author))

    assert retried.status_code == 404, (first["id"], newer["id"], retried.status_code)
    listed = client.get(f"/api/articles/{slug}/comments").get_json()["comments"]
    assert [c["body"] for c in listed] == ["newer"]


def test_a_stale_comment_id_under_a_remade_slug_never_deletes_the_new_articles_comment(client):
    """The article is deleted and made again under its title; a client still holding the old
    slug and its comment's id sends the delete: 404, the new article's comment stays."""
    author = register(client)
    slug = create_article(client, author, title="Twice Born")["slug"]
    old = add_comment(client, author, slug, "old")
    assert client.delete(f"/api/articles/{slug}", headers=auth(author)).status_code == 204
    assert create_article(client, author, title="Twice Born")["slug"] == slug
    add_comment(client, author, slug, "new")

    stale = client.delete(f"/api/articles/{slug}/comments/{old['id']}", headers=auth(author))

    assert stale.status_code == 404, stale.status_code
    listed = client.get(f"/api/articles/{slug}/comments").get_json()["comments"]
    assert [c["body"] for c in listed] == ["new"]


def test_a_conditional_get_with_a_deleted_articles_etag_is_404_not_304(database_url):
    with writer_reader_uncached(database_url) as (writer, reader, _uncached):
        author = register(writer)
        slug = create_article(writer, author, title="Tagged")["slug"]
        comment = add_comment(writer, author, slug)
        tags = {}
        for path in (f"/api/articles/{slug}", f"/api/articles/{slug}/comments"):
            for c in (writer, reader):
                c.get(path)
                tags[path] = c.get(path).headers["ETag"]
        comments_tag = tags[f"/api/articles/{slug}/comments"]
        assert (
            writer.delete(
                f"/api/articles/{slug}/comments/{comment['id']}", headers=auth(author)
            ).status_code
            == 204
        )
        for c in (writer, reader):
            wait_for(
                lambda c=c: (
                    c.get(
                        f"/api/articles/{slug}/comments", headers={"If-None-Match": comments_tag}
                    ).status_code
                    == 200
                )
            )
        assert writer.delete(f"/api/articles/{slug}", headers=auth(author)).status_code == 204
        slug_path = f"/api/articles/{slug}"
        old_tag = {"If-None-Match": tags[slug_path]}

        assert writer.get(slug_path, headers=old_tag).status_code == 404
        wait_for(lambda: reader.get(slug_path, headers=old_tag).status_code == 404)


@pytest.mark.parametrize(
    "headers",
    [{}, {"If-Match": "*"}, {"If-Match": '"nope"'}, {"If-None-Match": "*"}],
    ids=["plain", "if-match star", "if-match stale", "if-none-match star"],
)
def test_deleting_someone_elses_article_is_403_before_any_precondition_and_writes_nothing(
    client, app, headers
):
    author, other = register(client), register(client)
    slug = create_article(client, author, tagList=["mine"])["slug"]
    add_comment(client, other, slug)
    favorite(client, other, slug)
    before = rows(app)

    answer = client.delete(f"/api/articles/{slug}", headers={**auth(other), **headers})

    assert answer.status_code == 403, answer.get_json()
    assert_envelope(403, answer.get_json())
    assert rows(app) == before
    assert_sound(app)
