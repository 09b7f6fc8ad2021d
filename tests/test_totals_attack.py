"""Attacks on the running totals and on every list answer built from them.

The promise (docs/api.md, app/data/counters.py): ``articlesCount`` of every
list and filter, each tag's article count behind ``GET /api/tags`` and the
``?tag=`` filter, and ``favoritesCount`` always equal the rows; every list
answer, cached or not, equals a fresh uncached read; ``flask counters
verify`` is clean. Here: retags with duplicates and spellings that canonicalise
to one tag, tags dropping to zero and coming back, pages at and past the end,
and storms through gunicorn (retags racing deletes and creates, favorites,
follows), on SQLite and PostgreSQL. No 500 ever; races answer 404/409/422.
"""

from __future__ import annotations

import collections
import itertools
import random
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from app.data import counters
from app.extensions import db
from tests.apps import writer_reader_uncached
from tests.factories import auth, create_article, favorite, follow, register
from tests.listening import wait_for
from tests.serving import HttpClient, ServedApp, post_article

_titles = itertools.count(1)
RACE_STATUSES = {200, 201, 204, 404, 409, 422}


# --- helpers ----------------------------------------------------------------------


def query(app: Flask, statement: str, **params: Any) -> list[Any]:
    with app.app_context():
        try:
            return list(db.session.execute(text(statement), params))
        finally:
            db.session.rollback()


def counted_tags(app: Flask) -> dict[str, int]:
    """Each tag's articles, counted from the link rows (tags on no article left out)."""
    return {
        name: count
        for name, count in query(
            app,
            "SELECT t.name, count(*) FROM tags t JOIN article_tags l ON l.tag_id = t.id "
            "GROUP BY t.name",
        )
    }


def popular_order(counts: dict[str, int]) -> list[str]:
    """What ``GET /api/tags`` promises: most used first, then by code point."""
    return sorted(counts, key=lambda name: (-counts[name], name))


def article_count(app: Flask) -> int:
    return query(app, "SELECT count(*) FROM articles")[0][0]


def assert_verify_clean(app: Flask) -> None:
    with app.app_context():
        assert counters.drift() == []
    result = app.test_cli_runner().invoke(args=["counters", "verify"])
    assert result.exit_code == 0, result.output


def every_page(get: Callable[[str], Any], url: str, limit: int) -> tuple[list[str], set[int]]:
    """Walk ``url`` page by page; the slugs in order and every ``articlesCount`` answered."""
    slugs: list[str] = []
    totals: set[int] = set()
    joiner = "&" if "?" in url else "?"
    for offset in itertools.count(0, limit):
        response = get(f"{url}{joiner}limit={limit}&offset={offset}")
        assert response.status_code == 200
        body = response.get_json() if hasattr(response, "get_json") else response.json()
        totals.add(body["articlesCount"])
        if not body["articles"]:
            break
        slugs += [article["slug"] for article in body["articles"]]
    return slugs, totals


def retag(client: FlaskClient, user: dict[str, Any], slug: str, tags: list[str]) -> Any:
    return client.put(
        f"/api/articles/{slug}", json={"article": {"tagList": tags}}, headers=auth(user)
    )


def assert_tags_answers_equal_rows(client: FlaskClient, app: Flask) -> None:
    """``/api/tags`` is the counted tags in order; each tag's filter counts its rows."""
    counts = counted_tags(app)
    assert client.get("/api/tags").get_json() == {"tags": popular_order(counts)}
    for name, count in counts.items():
        body = client.get("/api/articles", query_string={"tag": name, "limit": 100}).get_json()
        assert (body["articlesCount"], len(body["articles"])) == (count, count), name


# --- canonical tags ---------------------------------------------------------------


def test_every_tag_popular_tags_lists_finds_its_articles_through_the_tag_filter(client, app):
    author = register(client)
    create_article(client, author, tagList=["e\u200b\u0301"])  # e, ZWSP, combining acute

    (listed,) = client.get("/api/tags").get_json()["tags"]
    body = client.get("/api/articles", query_string={"tag": listed}).get_json()

    assert body["articlesCount"] == 1
    assert len(body["articles"]) == 1


def test_tags_that_read_the_same_once_invisible_characters_go_are_one_tag(client, app):
    author = register(client)
    create_article(client, author, tagList=["\u00e9"])
    create_article(client, author, tagList=["e\u200b\u0301"])

    assert client.get("/api/tags").get_json() == {"tags": ["\u00e9"]}
    assert client.get("/api/articles?tag=%C3%A9").get_json()["articlesCount"] == 2


def test_hangul_jamo_split_by_an_invisible_character_tag_like_the_syllable(client, app):
    author = register(client)
    create_article(client, author, tagList=["\uac00"])
    created = create_article(client, author, tagList=["\u1100\u200b\u1161"])

    assert created["tagList"] == ["\uac00"]
    assert client.get("/api/tags").get_json() == {"tags": ["\uac00"]}


def test_one_list_of_spellings_of_one_tag_links_it_once_and_counts_it_once(client, app):
    author = register(client)
    spellings = [
        "tag",
        "\uff54\uff41\uff47",
        " tag ",
        "tag\u200b",
        "\ufefftag",
        "t\u00adag",
        "Tag",
        "TAG",
    ]

    article = create_article(client, author, tagList=spellings)

    assert article["tagList"] == ["TAG", "Tag", "tag"]
    assert counted_tags(app) == {"TAG": 1, "Tag": 1, "tag": 1}
    assert_tags_answers_equal_rows(client, app)
    assert (
        client.get("/api/articles?tag=%EF%BD%94%EF%BD%81%EF%BD%87").get_json()["articlesCount"] == 1
    )
    assert_verify_clean(app)


def test_retags_with_duplicates_reorders_and_spellings_keep_every_total_equal_to_rows(client, app):
    author = register(client)
    slugs = [create_article(client, author, tagList=["a", "b"])["slug"] for _ in range(3)]
    lists = [
        ["b", "a", "b", "a"],
        ["\uff41", "a\u200b", "c", "c ", "C"],
        ["c", "d", "d\ufeff", "\uff44"],
        [],
        ["a", "b", "c", "d", "e", "e"],
        ["e"],
        ["  x   y  ", "x y", "\uff58\u3000\uff59"],
    ]
    for n, tags in enumerate(lists):
        response = retag(client, author, slugs[n % 3], tags)
        assert response.status_code == 200, response.get_json()
        answered = response.get_json()["article"]["tagList"]
        assert answered == sorted(set(answered)), tags
        assert_tags_answers_equal_rows(client, app)
    assert_verify_clean(app)


# --- tags dropping to zero --------------------------------------------------------


def test_a_tag_on_no_article_leaves_popular_tags_and_its_filter_and_comes_back_when_reused(
    client, app
):
    author = register(client)
    slug = create_article(client, author, tagList=["fleeting", "stays"])["slug"]
    other = create_article(client, author, tagList=["stays"])["slug"]

    assert retag(client, author, slug, ["stays"]).status_code == 200
    assert client.get("/api/tags").get_json() == {"tags": ["stays"]}
    assert client.get("/api/articles?tag=fleeting").get_json() == {
        "articles": [],
        "articlesCount": 0,
    }

    assert retag(client, author, other, ["fleeting"]).status_code == 200
    assert client.get("/api/tags").get_json() == {"tags": ["fleeting", "stays"]}
    body = client.get("/api/articles?tag=fleeting").get_json()
    assert (body["articlesCount"], [a["slug"] for a in body["articles"]]) == (1, [other])

    assert client.delete(f"/api/articles/{other}", headers=auth(author)).status_code == 204
    assert client.get("/api/tags").get_json() == {"tags": ["stays"]}
    create_article(client, author, tagList=["\uff46\uff4c\uff45\uff45\uff54\uff49\uff4e\uff47"])
    assert_tags_answers_equal_rows(client, app)
    assert_verify_clean(app)


def test_cached_tag_answers_equal_fresh_reads_after_every_retag_delete_and_create(database_url):
    with writer_reader_uncached(database_url) as (writer, reader, uncached):
        author = register(writer)
        fan = register(writer)
        follow(writer, fan, author["username"])
        urls = [
            "/api/tags",
            "/api/articles",
            "/api/articles?tag=zero",
            "/api/articles?tag=one",
            "/api/articles?tag=one&limit=1&offset=1",
            f"/api/articles?tag=one&author={author['username']}",
            f"/api/articles?tag=one&favorited={fan['username']}",
            f"/api/articles?favorited={fan['username']}&limit=1&offset=0",
            "/api/articles?offset=2",
        ]

        def same_everywhere() -> None:
            """The writer's answers (read twice: the second may be cached) equal fresh reads at
            once; the other instance's as soon as it hears of the write (its listener)."""
            pairs = [(url, {}) for url in urls] + [("/api/articles/feed?limit=2", auth(fan))]

            def answers(client: FlaskClient) -> list[Any]:
                return [client.get(url, headers=headers).get_json() for url, headers in pairs]

            fresh = answers(uncached)
            assert answers(writer) == fresh
            assert answers(writer) == fresh
            wait_for(lambda: answers(reader) == fresh)
            assert answers(reader) == fresh

        same_everywhere()
        first = create_article(writer, author, tagList=["zero", "one"])["slug"]
        same_everywhere()
        second = create_article(writer, author, tagList=["one"])["slug"]
        favorite(writer, fan, first)
        same_everywhere()
        assert retag(writer, author, first, ["one", "one"]).status_code == 200
        same_everywhere()
        assert retag(writer, author, second, []).status_code == 200
        same_everywhere()
        assert retag(writer, author, second, ["zero"]).status_code == 200
        same_everywhere()
        assert writer.delete(f"/api/articles/{first}", headers=auth(author)).status_code == 204
        same_everywhere()
        create_article(writer, author, tagList=["one"])
        same_everywhere()


# --- pages ------------------------------------------------------------------------


def test_pages_at_and_past_the_end_agree_with_articlesCount_for_every_filter(client, app):
    author, other, fan = register(client), register(client), register(client)
    follow(client, fan, author["username"])
    made = []
    for n in range(7):
        who = author if n % 2 == 0 else other
        made.append(create_article(client, who, tagList=["p", f"q{n % 3}"])["slug"])
    for slug in made[::2]:
        favorite(client, fan, slug)
    filters = [
        "/api/articles",
        "/api/articles?tag=p",
        "/api/articles?tag=q1",
        f"/api/articles?author={author['username']}",
        f"/api/articles?favorited={fan['username']}",
        f"/api/articles?tag=q0&author={author['username']}&favorited={fan['username']}",
    ]
    for url in filters:
        joiner = "&" if "?" in url else "?"
        whole = client.get(f"{url}{joiner}limit=100").get_json()
        for limit in (1, 2, 3, 7):
            slugs, totals = every_page(client.get, url, limit)
            assert totals == {whole["articlesCount"]}, (url, limit)
            assert slugs == [a["slug"] for a in whole["articles"]], (url, limit)
        for offset in (whole["articlesCount"], whole["articlesCount"] + 1, 10_000):
            past = client.get(f"{url}{joiner}offset={offset}").get_json()
            assert past == {"articles": [], "articlesCount": whole["articlesCount"]}, (url, offset)
    feed = client.get("/api/articles/feed?offset=4&limit=100", headers=auth(fan)).get_json()
    assert feed["articlesCount"] == 4
    assert feed["articles"] == []


# --- storms through gunicorn -------------------------------------------------------


def assert_answers_are_race_answers(responses: list[Any]) -> None:
    for response in responses:
        assert response.status_code in RACE_STATUSES, (response.status_code, response.text[:300])
        if response.status_code >= 400:
            assert set(response.json()) == {"errors"}, response.text[:300]


def run_all(calls: list[Callable[[], Any]], threads: int = 8) -> list[Any]:
    """Every call on one of ``threads`` threads, each with its own session (one per thread)."""
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []
    queue = list(enumerate(calls))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                n, call = queue.pop()
            try:
                results[n] = call()
            except BaseException as error:  # re-raised below
                errors.append(error)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return results


def served_tag_answers_equal_rows(served: ServedApp, client: HttpClient) -> None:
    counts = counted_tags(served.app)
    assert client.get("/api/tags").json() == {"tags": popular_order(counts)}
    for name in [*counts, "gone-1", "gone-2"]:
        body = client.get("/api/articles", params={"tag": name, "limit": 100}).json()
        expected = counts.get(name, 0)
        assert (body["articlesCount"], len(body["articles"])) == (expected, expected), name


def test_a_retag_storm_racing_deletes_and_creates_leaves_every_total_equal_to_rows(
    served_app: ServedApp,
) -> None:
    author = served_app.register("storm")
    setup = served_app.client(author)
    pool = [
        "alpha",
        "beta",
        "gamma",
        "\uff47\uff41\uff4d\uff4d\uff41",
        "delta\u200b",
        "Beta",
        "gone-1",
        "gone-2",
    ]
    slugs = [post_article(setup, f"S{n}", tagList=["gone-1", "alpha"])["slug"] for n in range(8)]
    chooser = random.Random(1234)  # noqa: S311
    local = threading.local()

    def client() -> HttpClient:
        if not hasattr(local, "client"):
            local.client = served_app.client(author)
        return local.client

    def retag_call(slug: str, tags: list[str]) -> Callable[[], Any]:
        return lambda: client().put(f"/api/articles/{slug}", json={"article": {"tagList": tags}})

    def create_call(tags: list[str]) -> Callable[[], Any]:
        article = {"title": f"T{next(_titles)}", "description": "d", "body": "b", "tagList": tags}
        return lambda: client().post("/api/articles", json={"article": article})

    def delete_call(slug: str) -> Callable[[], Any]:
        return lambda: client().delete(f"/api/articles/{slug}")

    calls: list[Callable[[], Any]] = []
    for n in range(60):
        tags = [chooser.choice(pool[:6]) for _ in range(chooser.randint(0, 5))]
        if n % 10 == 9:
            calls.append(delete_call(slugs[n % 8]))
        elif n % 5 == 0:
            calls.append(create_call(tags))
        else:
            calls.append(retag_call(slugs[n % 8], tags))
    calls += [lambda: client().get("/api/tags") for _ in range(6)]
    responses = run_all(calls)

    assert_answers_are_race_answers(responses)
    assert collections.Counter(r.status_code for r in responses)[201] == 12
    reader = served_app.client()
    served_tag_answers_equal_rows(served_app, reader)
    assert reader.get("/api/articles?limit=1").json()["articlesCount"] == article_count(
        served_app.app
    )
    assert_verify_clean(served_app.app)


def test_favorites_storm_leaves_counts_and_favorited_lists_equal_to_rows(
    served_app: ServedApp,
) -> None:
    author = served_app.register("favauthor")
    fans = [served_app.register(f"fan{n}") for n in range(6)]
    setup = served_app.client(author)
    slugs = [post_article(setup, f"F{n}", tagList=["fav"])["slug"] for n in range(4)]
    clients = {fan["username"]: served_app.client(fan) for fan in fans}
    chooser = random.Random(99)  # noqa: S311
    calls: list[Callable[[], Any]] = []
    locks = {name: threading.Lock() for name in clients}

    def toggle(name: str, slug: str, adding: bool) -> Callable[[], Any]:
        def call() -> Any:
            with locks[name]:  # a requests.Session is one thread's
                method = clients[name].post if adding else clients[name].delete
                return method(f"/api/articles/{slug}/favorite")

        return call

    for _ in range(80):
        calls.append(
            toggle(chooser.choice(list(clients)), chooser.choice(slugs), chooser.random() < 0.6)
        )
    calls.append(lambda: setup.delete(f"/api/articles/{slugs[3]}"))
    responses = run_all(calls)

    assert_answers_are_race_answers(responses)
    reader = served_app.client()
    favorites = dict(
        query(
            served_app.app,
            "SELECT a.slug, count(f.user_id) FROM articles a LEFT JOIN favorites f "
            "ON f.article_id = a.id GROUP BY a.slug",
        )
    )
    for slug, count in favorites.items():
        assert reader.get(f"/api/articles/{slug}").json()["article"]["favoritesCount"] == count
    listed = {
        a["slug"]: a["favoritesCount"]
        for a in reader.get("/api/articles?tag=fav").json()["articles"]
    }
    assert listed == favorites
    for fan in fans:
        mine = {
            row[0]
            for row in query(
                served_app.app,
                "SELECT a.slug FROM favorites f JOIN articles a ON a.id = f.article_id "
                "WHERE f.user_id = (SELECT id FROM users WHERE username = :name)",
                name=fan["username"],
            )
        }
        for limit in (1, 3):
            pages, totals = every_page(
                reader.get, f"/api/articles?favorited={fan['username']}", limit
            )
            assert (set(pages), totals) == (mine, {len(mine)})
            assert len(pages) == len(mine)
    assert_verify_clean(served_app.app)


def test_a_feed_after_follow_unfollow_races_and_deletes_counts_its_pages(
    served_app: ServedApp,
) -> None:
    reader_user = served_app.register("feedreader")
    authors = [served_app.register(f"feedauthor{n}") for n in range(4)]
    made: dict[str, list[str]] = {}
    for writer in authors:
        client = served_app.client(writer)
        made[writer["username"]] = [
            post_article(client, f"{writer['username']} {n}", tagList=["feed"])["slug"]
            for n in range(3)
        ]
    lock = threading.Lock()
    me = served_app.client(reader_user)
    chooser = random.Random(7)  # noqa: S311

    def toggle(name: str, following: bool) -> Callable[[], Any]:
        def call() -> Any:
            with lock:
                pass
            client = served_app.client(reader_user)
            method = client.post if following else client.delete
            try:
                return method(f"/api/profiles/{name}/follow")
            finally:
                client.close()

        return call

    def remove(writer: dict[str, Any], slug: str) -> Callable[[], Any]:
        def call() -> Any:
            client = served_app.client(writer)
            try:
                return client.delete(f"/api/articles/{slug}")
            finally:
                client.close()

        return call

    calls = [toggle(chooser.choice(authors)["username"], chooser.random() < 0.6) for _ in range(30)]
    calls += [remove(authors[n], made[authors[n]["username"]][0]) for n in range(4)]
    assert_answers_are_race_answers(run_all(calls))

    expected = {
        row[0]
        for row in query(
            served_app.app,
            "SELECT a.slug FROM articles a JOIN follows f ON f.followed_id = a.author_id "
            "WHERE f.follower_id = (SELECT id FROM users WHERE username = :name)",
            name=reader_user["username"],
        )
    }
    for limit in (1, 2, 5):
        pages, totals = every_page(me.get, "/api/articles/feed", limit)
        assert (set(pages), totals) == (expected, {len(expected)})
        assert len(pages) == len(expected)
    assert_verify_clean(served_app.app)


def page_agrees_with_its_count(url: str, limit: int, offset: int, body: dict[str, Any]) -> None:
    """One answer, one snapshot: its page is what its ``articlesCount`` says it must be."""
    count, shown = body["articlesCount"], len(body["articles"])
    expected = max(0, min(limit, count - offset))
    assert shown == expected, (url, limit, offset, count, shown)


def test_every_page_read_during_a_storm_agrees_with_its_own_articlesCount(
    served_app: ServedApp,
) -> None:
    author = served_app.register("pager")
    setup = served_app.client(author)
    slugs = [post_article(setup, f"P{n}", tagList=["hot"])["slug"] for n in range(6)]
    local = threading.local()

    def client() -> HttpClient:
        if not hasattr(local, "client"):
            local.client = served_app.client(author)
        return local.client

    def read(url: str, limit: int, offset: int) -> Callable[[], Any]:
        def call() -> Any:
            response = client().get(
                f"{url}{'&' if '?' in url else '?'}limit={limit}&offset={offset}"
            )
            if response.status_code == 200:
                page_agrees_with_its_count(url, limit, offset, response.json())
            return response

        return call

    def write(n: int) -> Callable[[], Any]:
        def call() -> Any:
            if n % 3 == 0:
                return client().post(
                    "/api/articles",
                    json={
                        "article": {
                            "title": f"W{n}",
                            "description": "d",
                            "body": "b",
                            "tagList": ["hot", f"n{n % 4}"],
                        }
                    },
                )
            if n % 3 == 1:
                return client().put(
                    f"/api/articles/{slugs[n % 6]}",
                    json={"article": {"tagList": [] if n % 2 else ["hot"]}},
                )
            return client().delete(f"/api/articles/{slugs[n % 6]}")

        return call

    calls: list[Callable[[], Any]] = []
    urls = [
        "/api/articles",
        "/api/articles?tag=hot",
        "/api/articles?author=pager",
        "/api/articles?tag=n1",
    ]
    for n in range(40):
        calls.append(write(n))
        for url in urls:
            calls.append(read(url, 2 + n % 3, n % 9))
    assert_answers_are_race_answers(run_all(calls, threads=12))
    served_tag_answers_equal_rows(served_app, served_app.client())
    assert_verify_clean(served_app.app)


def test_concurrent_creates_and_retags_introducing_the_same_new_tags_in_any_order(
    served_app: ServedApp,
) -> None:
    author = served_app.register("newtags")
    setup = served_app.client(author)
    slugs = [
        setup.post(
            "/api/articles",
            json={"article": {"title": f"N{n}", "description": "d", "body": "b", "tagList": []}},
        ).json()["article"]["slug"]
        for n in range(4)
    ]
    local = threading.local()

    def client() -> HttpClient:
        if not hasattr(local, "client"):
            local.client = served_app.client(author)
        return local.client

    calls: list[Callable[[], Any]] = []
    for round_ in range(4):
        fresh = [f"r{round_}-{c}" for c in "abcde"]
        for n in range(8):
            tags = fresh[n % 5 :] + fresh[: n % 5]
            tags = tags[::-1] if n % 2 else tags
            tags = [*tags, tags[0].upper(), "\uff52" + tags[1][1:]]
            if n % 2:
                calls.append(
                    lambda tags=tags: client().post(
                        "/api/articles",
                        json={
                            "article": {
                                "title": "Same",
                                "description": "d",
                                "body": "b",
                                "tagList": tags,
                            }
                        },
                    )
                )
            else:
                calls.append(
                    lambda tags=tags, n=n: client().put(
                        f"/api/articles/{slugs[n % 4]}", json={"article": {"tagList": tags}}
                    )
                )
    responses = run_all(calls, threads=8)
    assert_answers_are_race_answers(responses)
    assert all(r.status_code in (200, 201) for r in responses), collections.Counter(
        r.status_code for r in responses
    )
    served_tag_answers_equal_rows(served_app, served_app.client())
    assert_verify_clean(served_app.app)


def test_cached_author_and_favorited_lists_follow_renames_and_unfollows(database_url):
    with writer_reader_uncached(database_url) as (writer, reader, uncached):
        author = register(writer, username="Renamed")
        fan = register(writer, username="Fanatic")
        follow(writer, fan, "Renamed")
        slug = create_article(writer, author, tagList=["r"])["slug"]
        favorite(writer, fan, slug)
        urls = [
            "/api/articles?author=Renamed",
            "/api/articles?author=Moved",
            "/api/articles?favorited=Fanatic",
            "/api/articles?favorited=Devotee",
            "/api/articles?tag=r&author=renamed&favorited=FANATIC",
            "/api/articles?tag=r&author=moved&favorited=devotee",
        ]

        def same_everywhere() -> None:
            """The writer at once, the cached reader once it hears of the write."""

            def answers(client: FlaskClient) -> list[Any]:
                return [
                    client.get(url, headers=auth(fan)).get_json()
                    for url in [*urls, "/api/articles/feed"]
                ]

            fresh = answers(uncached)
            assert answers(writer) == fresh
            assert answers(writer) == fresh
            wait_for(lambda: answers(reader) == fresh)
            assert answers(reader) == fresh

        same_everywhere()
        for who, name in ((author, "Moved"), (fan, "Devotee")):
            response = writer.put("/api/user", json={"user": {"username": name}}, headers=auth(who))
            assert response.status_code == 200, response.get_json()
            same_everywhere()
        assert writer.get("/api/articles?author=moved").get_json()["articlesCount"] == 1
        assert writer.get("/api/articles?author=renamed").get_json()["articlesCount"] == 0
        assert writer.delete("/api/profiles/Moved/follow", headers=auth(fan)).status_code == 200
        same_everywhere()
        assert writer.get("/api/articles/feed", headers=auth(fan)).get_json() == {
            "articles": [],
            "articlesCount": 0,
        }


def test_verify_run_while_a_storm_writes_never_reports_drift(served_app: ServedApp) -> None:
    """verify reads one snapshot: a write half-seen would be reported as drift."""
    author = served_app.register("verifier")
    setup = served_app.client(author)
    slugs = [
        setup.post(
            "/api/articles",
            json={
                "article": {
                    "title": f"V{n}",
                    "description": "d",
                    "body": "b",
                    "tagList": ["v", f"v{n}"],
                }
            },
        ).json()["article"]["slug"]
        for n in range(6)
    ]
    local = threading.local()
    stop = threading.Event()
    found: list[Any] = []

    def client() -> HttpClient:
        if not hasattr(local, "client"):
            local.client = served_app.client(author)
        return local.client

    def verify_repeatedly() -> None:
        with served_app.app.app_context():
            while not stop.is_set():
                drifted = counters.drift()
                if drifted:
                    found.append([str(item) for item in drifted])

    def write(n: int) -> Callable[[], Any]:
        def call() -> Any:
            if n % 4 == 0:
                return client().post(
                    "/api/articles",
                    json={
                        "article": {
                            "title": f"X{n}",
                            "description": "d",
                            "body": "b",
                            "tagList": ["v", f"v{n % 6}", f"new{n}"],
                        }
                    },
                )
            if n % 4 == 3:
                return client().delete(f"/api/articles/{slugs[n % 6]}")
            return client().put(
                f"/api/articles/{slugs[n % 6]}",
                json={"article": {"tagList": [f"v{(n + 1) % 6}", "v"] if n % 2 else [f"v{n % 6}"]}},
            )

        return call

    checker = threading.Thread(target=verify_repeatedly)
    checker.start()
    try:
        responses = run_all([write(n) for n in range(48)], threads=8)
    finally:
        stop.set()
        checker.join()
    assert_answers_are_race_answers(responses)
    assert found == []
    assert_verify_clean(served_app.app)


# --- failed writes move no total ----------------------------------------------------


def test_a_refused_retag_or_create_moves_no_total_and_no_list(client, app):
    author, stranger = register(client), register(client)
    slug = create_article(client, author, tagList=["kept"])["slug"]
    etag = client.get(f"/api/articles/{slug}", headers=auth(author)).headers["ETag"]
    assert retag(client, author, slug, ["kept", "moved"]).status_code == 200
    before = (
        counted_tags(app),
        client.get("/api/tags").get_json(),
        client.get("/api/articles?tag=moved").get_json(),
    )
    refused = [
        client.put(
            f"/api/articles/{slug}",
            json={"article": {"tagList": ["x"]}},
            headers={**auth(author), "If-Match": etag},
        ),
        client.put(
            f"/api/articles/{slug}",
            json={"article": {"tagList": ["x", "y" * 101]}},
            headers=auth(author),
        ),
        client.put(
            f"/api/articles/{slug}",
            json={"article": {"tagList": ["x"], "title": " "}},
            headers=auth(author),
        ),
        retag(client, stranger, slug, ["x"]),
        client.post(
            "/api/articles",
            json={"article": {"title": "t", "description": "d", "body": "", "tagList": ["x"]}},
            headers=auth(author),
        ),
        client.post(
            "/api/articles",
            json={"article": {"title": "t", "description": "d", "body": "b", "tagList": ["x", 7]}},
            headers=auth(author),
        ),
    ]
    assert [r.status_code for r in refused] == [412, 422, 422, 403, 422, 422]
    after = (
        counted_tags(app),
        client.get("/api/tags").get_json(),
        client.get("/api/articles?tag=moved").get_json(),
    )
    assert after == before
    assert query(app, "SELECT count(*) FROM tags WHERE name IN ('x', 'y')")[0][0] == 0
    assert_verify_clean(app)


def test_of_two_retags_sent_with_one_etag_exactly_one_moves_the_totals(served_app: ServedApp):
    author = served_app.register("etagger")
    setup = served_app.client(author)
    slug = setup.post(
        "/api/articles",
        json={"article": {"title": "E", "description": "d", "body": "b", "tagList": ["start"]}},
    ).json()["article"]["slug"]
    for round_ in range(4):
        etag = setup.get(f"/api/articles/{slug}").headers["ETag"]
        clients = [served_app.client(author) for _ in range(4)]
        responses = run_all(
            [
                lambda c=c, n=n, etag=etag, round_=round_: c.put(
                    f"/api/articles/{slug}",
                    headers={"If-Match": etag},
                    json={"article": {"tagList": [f"t{round_}-{n}", "shared"]}},
                )
                for n, c in enumerate(clients)
            ],
            threads=4,
        )
        assert sorted(r.status_code for r in responses) == [200, 412, 412, 412]
    counts = counted_tags(served_app.app)
    assert sum(counts.values()) == 2 and counts["shared"] == 1
    served_tag_answers_equal_rows(served_app, served_app.client())
    assert_verify_clean(served_app.app)


def test_every_worker_forgets_its_cached_tag_answers_when_a_tag_drops_to_zero_and_returns(
    served_app: ServedApp,
) -> None:
    author = served_app.register("workers")
    writer = served_app.client(author)
    slug = writer.post(
        "/api/articles",
        json={
            "article": {"title": "W", "description": "d", "body": "b", "tagList": ["blink", "base"]}
        },
    ).json()["article"]["slug"]
    urls = [
        "/api/tags",
        "/api/articles?tag=blink",
        "/api/articles?tag=base&offset=1",
        "/api/articles?tag=blink&author=workers",
    ]

    def answers_everywhere() -> list[list[Any]]:
        """Each URL read on 8 fresh connections (both workers, cached after the first)."""
        seen = []
        for url in urls:
            found = []
            for _ in range(8):
                reader = served_app.client()
                try:
                    found.append(reader.get(url).json())
                finally:
                    reader.close()
            seen.append(found)
        return seen

    def expect(tags: list[str], blink: int) -> None:
        for url, found in zip(urls, answers_everywhere(), strict=True):
            if url == "/api/tags":
                assert all(answer == {"tags": tags} for answer in found), found
            elif "blink" in url:
                assert {(a["articlesCount"], len(a["articles"])) for a in found} == {
                    (blink, blink)
                }, (url, found)
            else:
                assert all(a == {"articles": [], "articlesCount": 1} for a in found), found

    expect(["base", "blink"], 1)
    assert (
        writer.put(f"/api/articles/{slug}", json={"article": {"tagList": ["base"]}}).status_code
        == 200
    )
    expect(["base"], 0)
    assert (
        writer.put(
            f"/api/articles/{slug}",
            json={"article": {"tagList": ["\uff42\uff4c\uff49\uff4e\uff4b", "base"]}},
        ).status_code
        == 200
    )
    expect(["base", "blink"], 1)
    assert_verify_clean(served_app.app)


def test_popular_tags_ties_read_in_code_point_order_whatever_the_collation(collating_client):
    client = collating_client
    author = register(client)
    names = ["b", "B", "a", "\u00e9", "Z", "a-c", "ab", "\u00c9", "z"]
    create_article(client, author, tagList=names)
    create_article(client, author, tagList=["z", "\u00e9"])

    tags = client.get("/api/tags").get_json()["tags"]

    assert tags == ["z", "\u00e9", *sorted(set(names) - {"z", "\u00e9"})]
    for name in names:
        expected = 2 if name in ("z", "\u00e9") else 1
        body = client.get("/api/articles", query_string={"tag": name}).get_json()
        assert body["articlesCount"] == expected, name
