"""Races: concurrent requests answer 2xx, 404, 409 or 422, never 500, and corrupt nothing.

Each test fires requests at once from real threads at the app served by
gunicorn (two processes, four threads each; tests/serving.py) on SQLite and on
PostgreSQL, then checks the answers and the final state of the database:
the rows, and every running total against a fresh count (``counters.drift``).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from functools import partial
from typing import Any

from app.data import counters
from tests.serving import HttpClient, ServedApp, post_article, storm

ROUNDS = 4
ARTICLE = {"description": "d", "body": "b", "tagList": ["x"]}


def statuses(responses: list[Any]) -> collections.Counter[int]:
    return collections.Counter(response.status_code for response in responses)


def assert_totals_equal_rows(served: ServedApp) -> None:
    with served.app.app_context():
        assert counters.drift() == []


def assert_error_envelope(response: Any) -> None:
    """Every 4xx a race produces is JSON in the envelope, not a server page."""
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"errors"}, body


def fire(*calls: Callable[[], Any]) -> list[Any]:
    responses = storm(calls, threads=len(calls))
    for response in responses:
        assert_error_envelope(response)
    return responses


# --- running totals ---------------------------------------------------------


def test_concurrent_deletes_of_one_article_delete_it_once(served_app: ServedApp) -> None:
    author = served_app.register("author")
    clients = [served_app.client(author) for _ in range(4)]
    answers: collections.Counter[int] = collections.Counter()
    for _ in range(ROUNDS):
        slug = post_article(clients[0], tagList=["a", "b"])["slug"]
        answers += statuses(fire(*(partial(c.delete, f"/api/articles/{slug}") for c in clients)))

    assert answers == {204: ROUNDS, 404: 3 * ROUNDS}
    listed = clients[0].get("/api/articles").json()
    assert listed == {"articles": [], "articlesCount": 0}
    assert clients[0].get("/api/tags").json() == {"tags": []}
    assert_totals_equal_rows(served_app)


def writes_to(client: HttpClient, slug: str, n: int) -> list[Callable[[], Any]]:
    """A delete, a retag, a retitle of ``slug`` and a create, varied by ``n``."""
    colours = ["red", "green", "blue"]
    article = {"title": "One title for all", "description": "d", "body": "b"}
    return [
        partial(client.delete, f"/api/articles/{slug}"),
        partial(
            client.put,
            f"/api/articles/{slug}",
            json={"article": {"tagList": [colours[n % 3], "shared"]}},
        ),
        partial(client.put, f"/api/articles/{slug}", json={"article": {"title": article["title"]}}),
        partial(
            client.post,
            "/api/articles",
            json={"article": {**article, "tagList": [colours[(n + 1) % 3], "shared"]}},
        ),
    ]


def test_totals_equal_the_rows_after_a_storm_of_writes(served_app: ServedApp) -> None:
    """Creates, deletes, retitles and retags of the same articles, all at once."""
    authors = [served_app.register(f"writer{n}") for n in range(2)]
    answers: collections.Counter[int] = collections.Counter()
    for round_ in range(ROUNDS):
        calls = []
        for author in authors:
            clients = [served_app.client(author) for _ in range(4)]
            tags = ["red", "green", "blue"][: round_ % 3 + 1]
            slug = post_article(clients[0], tagList=tags)["slug"]
            for n, client in enumerate(clients):
                calls += writes_to(client, slug, round_ + n)[n : n + 1]
        answers += statuses(fire(*calls))

    assert set(answers) <= {200, 201, 204, 404}, answers
    assert_totals_equal_rows(served_app)
    listed = served_app.client().get("/api/articles?limit=100").json()
    assert listed["articlesCount"] == len(listed["articles"])
    (count,) = served_app.sql("SELECT count(*) FROM articles")[0]
    assert listed["articlesCount"] == count


def test_an_article_deleted_as_it_is_created_is_still_answered_201(
    served_app: ServedApp,
) -> None:
    """The create reads its answer inside its own transaction: a delete that lands
    right after the commit cannot turn it into a 404 (a retry would write twice)."""
    author = served_app.register("author")
    clients = [served_app.client(author) for _ in range(4)]
    created: collections.Counter[int] = collections.Counter()
    deleted: collections.Counter[int] = collections.Counter()
    for round_ in range(2 * ROUNDS):
        article = {
            "title": f"Short lived {round_}",
            "description": "d",
            "body": "b",
            "tagList": ["a"],
        }
        slug = f"short-lived-{round_}"
        calls = [partial(clients[0].post, "/api/articles", json={"article": article})]
        calls += [partial(c.delete, f"/api/articles/{slug}") for c in clients[1:]]
        responses = fire(*calls)
        created += statuses(responses[:1])
        deleted += statuses(responses[1:])

    assert created == {201: 2 * ROUNDS}
    assert set(deleted) <= {204, 404}, deleted
    assert_totals_equal_rows(served_app)


def test_articles_retagged_in_opposite_directions_at_once_all_succeed(
    served_app: ServedApp,
) -> None:
    """Tag totals are locked in one order: swapping tags cannot deadlock (a 409)."""
    author = served_app.register("author")
    clients = [served_app.client(author) for _ in range(6)]
    slugs = [post_article(clients[0], tagList=[("a", "b")[n % 2]])["slug"] for n in range(6)]
    answers: collections.Counter[int] = collections.Counter()
    for round_ in range(2 * ROUNDS):
        calls = [
            partial(
                client.put,
                f"/api/articles/{slug}",
                json={"article": {"tagList": [("a", "b")[(n + round_ + 1) % 2], "c"]}},
            )
            for n, (client, slug) in enumerate(zip(clients, slugs, strict=True))
        ]
        answers += statuses(fire(*calls))

    assert answers == {200: 2 * ROUNDS * len(clients)}
    assert_totals_equal_rows(served_app)


def test_creates_deletes_and_retags_of_shared_tags_at_once_all_succeed(
    served_app: ServedApp,
) -> None:
    """Every write that moves totals locks the tag rows in id order, then the articles
    total: creations, deletions and retags crossing the same tags cannot deadlock
    (a 409), and every total still equals its rows."""
    author = served_app.register("author")
    clients = [served_app.client(author) for _ in range(6)]
    answers: collections.Counter[int] = collections.Counter()
    for round_ in range(ROUNDS):
        pair = ["a", "b"] if round_ % 2 else ["b", "a"]
        doomed = [post_article(clients[0], tagList=["a", "b"])["slug"] for _ in range(2)]
        kept = [post_article(clients[0], tagList=pair[:1])["slug"] for _ in range(2)]
        calls = [
            partial(clients[n].delete, f"/api/articles/{slug}") for n, slug in enumerate(doomed)
        ]
        calls += [
            partial(
                clients[2 + n].put, f"/api/articles/{slug}", json={"article": {"tagList": pair[1:]}}
            )
            for n, slug in enumerate(kept)
        ]
        calls += [
            partial(
                clients[4 + n].post,
                "/api/articles",
                json={
                    "article": {
                        "title": f"Crossing {round_}",
                        "description": "d",
                        "body": "b",
                        "tagList": pair[n:] + pair[:n],
                    }
                },
            )
            for n in range(2)
        ]
        answers += statuses(fire(*calls))

    assert answers == {204: 2 * ROUNDS, 200: 2 * ROUNDS, 201: 2 * ROUNDS}
    assert_totals_equal_rows(served_app)
    (count,) = served_app.sql("SELECT count(*) FROM articles")[0]
    assert served_app.client().get("/api/articles").json()["articlesCount"] == count == 4 * ROUNDS


# --- the row vanished: 404 --------------------------------------------------


def test_comments_and_favorites_racing_a_delete_answer_404(served_app: ServedApp) -> None:
    author = served_app.register("author")
    reader = served_app.register("reader")
    deleter = served_app.client(author)
    readers = [served_app.client(reader) for _ in range(6)]
    answers: collections.Counter[int] = collections.Counter()
    for _ in range(ROUNDS):
        slug = post_article(deleter)["slug"]
        comment = {"comment": {"body": "first!"}}
        calls = [partial(deleter.delete, f"/api/articles/{slug}")]
        calls += [
            partial(c.post, f"/api/articles/{slug}/comments", json=comment) for c in readers[:3]
        ]
        calls += [partial(c.post, f"/api/articles/{slug}/favorite") for c in readers[3:]]
        responses = fire(*calls)
        assert responses[0].status_code == 204
        answers += statuses(responses[1:])

    assert set(answers) <= {200, 404}, answers
    assert served_app.sql("SELECT count(*) FROM comments")[0][0] == 0
    assert served_app.sql("SELECT count(*) FROM favorites")[0][0] == 0


def test_updates_racing_a_delete_answer_404(served_app: ServedApp) -> None:
    author = served_app.register("author")
    clients = [served_app.client(author) for _ in range(6)]
    answers: collections.Counter[int] = collections.Counter()
    for _ in range(ROUNDS):
        slug = post_article(clients[0], tagList=["a"])["slug"]
        calls = [partial(clients[0].delete, f"/api/articles/{slug}")]
        for n, client in enumerate(clients[1:]):
            change = {"title": f"Retitled {n}"} if n % 2 else {"body": "new", "tagList": ["b"]}
            calls.append(partial(client.put, f"/api/articles/{slug}", json={"article": change}))
        responses = fire(*calls)
        assert responses[0].status_code in (204, 404)
        answers += statuses(responses[1:])

    assert set(answers) <= {200, 404}, answers
    assert_totals_equal_rows(served_app)


def test_comment_deletes_racing_an_article_delete_answer_404(served_app: ServedApp) -> None:
    author = served_app.register("author")
    clients = [served_app.client(author) for _ in range(4)]
    answers: collections.Counter[int] = collections.Counter()
    for _ in range(ROUNDS):
        slug = post_article(clients[0])["slug"]
        ids = [
            clients[0]
            .post(f"/api/articles/{slug}/comments", json={"comment": {"body": "x"}})
            .json()["comment"]["id"]
            for _ in range(3)
        ]
        calls = [partial(clients[0].delete, f"/api/articles/{slug}")]
        calls += [
            partial(c.delete, f"/api/articles/{slug}/comments/{i}")
            for c, i in zip(clients[1:], ids, strict=True)
        ]
        answers += statuses(fire(*calls))

    assert set(answers) <= {204, 404}, answers


def test_concurrent_deletes_of_one_comment_delete_it_once(served_app: ServedApp) -> None:
    author = served_app.register("author")
    clients = [served_app.client(author) for _ in range(4)]
    slug = post_article(clients[0])["slug"]
    answers: collections.Counter[int] = collections.Counter()
    for _ in range(ROUNDS):
        created = clients[0].post(f"/api/articles/{slug}/comments", json={"comment": {"body": "x"}})
        path = f"/api/articles/{slug}/comments/{created.json()['comment']['id']}"
        answers += statuses(fire(*(partial(c.delete, path) for c in clients)))

    assert answers == {204: ROUNDS, 404: 3 * ROUNDS}
    assert served_app.sql("SELECT count(*) FROM comments")[0][0] == 0


# --- uniqueness races: a retry or 422 ---------------------------------------


def test_articles_retitled_to_one_title_at_once_get_distinct_slugs(
    served_app: ServedApp,
) -> None:
    author = served_app.register("author")
    clients = [served_app.client(author) for _ in range(6)]
    for round_ in range(ROUNDS):
        slugs = [post_article(clients[0])["slug"] for _ in clients]
        title = {"article": {"title": f"Same title {round_}"}}
        responses = fire(
            *(
                partial(c.put, f"/api/articles/{s}", json=title)
                for c, s in zip(clients, slugs, strict=True)
            )
        )

        assert statuses(responses) == {200: len(clients)}
        new_slugs = sorted(r.json()["article"]["slug"] for r in responses)
        base = f"same-title-{round_}"
        assert new_slugs == sorted([base] + [f"{base}-{n}" for n in range(2, len(clients) + 1)])


def test_articles_created_with_one_title_at_once_get_distinct_slugs(
    served_app: ServedApp,
) -> None:
    authors = [served_app.register(f"author{n}") for n in range(6)]
    clients = [served_app.client(author) for author in authors]
    article = {"article": {"title": "Hello", "description": "d", "body": "b", "tagList": ["x"]}}
    responses = fire(*(partial(c.post, "/api/articles", json=article) for c in clients))

    assert statuses(responses) == {201: len(clients)}
    slugs = {r.json()["article"]["slug"] for r in responses}
    assert slugs == {"hello", *(f"hello-{n}" for n in range(2, len(clients) + 1))}
    assert_totals_equal_rows(served_app)


def test_titles_whose_slugs_are_each_others_suffixes_created_at_once_get_distinct_slugs(
    served_app: ServedApp,
) -> None:
    """``Mixed 2``'s own slug is ``mixed-2``, the first suffix a taken ``Mixed`` looks up:
    whichever request inserts it first keeps it, and the other chooses again."""
    authors = [served_app.register(f"author{n}") for n in range(6)]
    clients = [served_app.client(author) for author in authors]
    post_article(clients[0], "Mixed")
    titles = ["Mixed", "Mixed", "Mixed", "Mixed 2", "Mixed 2", "Mixed 3"]
    responses = fire(
        *(
            partial(c.post, "/api/articles", json={"article": {**ARTICLE, "title": title}})
            for c, title in zip(clients, titles, strict=True)
        )
    )

    assert statuses(responses) == {201: len(clients)}
    slugs = {r.json()["article"]["slug"] for r in responses}
    assert len(slugs) == len(clients), slugs
    assert "mixed" not in slugs
    assert_totals_equal_rows(served_app)


def test_users_registering_one_username_at_once_leave_one_winner(served_app: ServedApp) -> None:
    clients = [served_app.client() for _ in range(6)]
    calls = [
        partial(
            c.post,
            "/api/users",
            json={
                "user": {"username": "wanted", "email": f"u{n}@example.com", "password": "p" * 8}
            },
        )
        for n, c in enumerate(clients)
    ]
    responses = fire(*calls)

    assert statuses(responses) == {201: 1, 422: len(clients) - 1}
    for response in responses:
        if response.status_code == 422:
            assert response.json() == {"errors": {"username": ["has already been taken"]}}
    assert served_app.sql("SELECT count(*) FROM users")[0][0] == 1


def test_users_renamed_to_one_username_at_once_leave_one_winner(served_app: ServedApp) -> None:
    users = [served_app.register(f"user{n}") for n in range(6)]
    clients = [served_app.client(user) for user in users]
    change = {"user": {"username": "wanted"}}
    responses = fire(*(partial(c.put, "/api/user", json=change) for c in clients))

    assert statuses(responses) == {200: 1, 422: len(clients) - 1}
    for response in responses:
        if response.status_code == 422:
            assert response.json() == {"errors": {"username": ["has already been taken"]}}


def test_users_changing_to_one_email_at_once_leave_one_winner(served_app: ServedApp) -> None:
    users = [served_app.register(f"user{n}") for n in range(6)]
    clients = [served_app.client(user) for user in users]
    change = {"user": {"email": "wanted@example.com"}}
    responses = fire(*(partial(c.put, "/api/user", json=change) for c in clients))

    assert statuses(responses) == {200: 1, 422: len(clients) - 1}
    for response in responses:
        if response.status_code == 422:
            assert response.json() == {"errors": {"email": ["has already been taken"]}}


# --- idempotent toggles -------------------------------------------------------


def test_follows_racing_unfollows_answer_200(served_app: ServedApp) -> None:
    served_app.register("celebrity")
    fan = served_app.register("fan")
    clients = [served_app.client(fan) for _ in range(8)]
    path = "/api/profiles/celebrity/follow"
    for _ in range(ROUNDS):
        responses = fire(
            *(partial(c.post if n % 2 else c.delete, path) for n, c in enumerate(clients))
        )
        assert statuses(responses) == {200: len(clients)}

    following = clients[0].get("/api/profiles/celebrity").json()["profile"]["following"]
    rows = served_app.sql("SELECT count(*) FROM follows")[0][0]
    assert rows == int(following)


def test_favorites_racing_unfavorites_answer_200(served_app: ServedApp) -> None:
    author = served_app.register("author")
    fans = [served_app.register(f"fan{n}") for n in range(4)]
    slug = post_article(served_app.client(author))["slug"]
    clients = [served_app.client(fan) for fan in fans for _ in range(2)]
    path = f"/api/articles/{slug}/favorite"
    for _ in range(ROUNDS):
        responses = fire(
            *(partial(c.post if n % 2 else c.delete, path) for n, c in enumerate(clients))
        )
        assert statuses(responses) == {200: len(clients)}

    article = served_app.client().get(f"/api/articles/{slug}").json()["article"]
    assert article["favoritesCount"] == served_app.sql("SELECT count(*) FROM favorites")[0][0]


def test_one_users_favorites_at_once_all_answer_what_the_rows_say(served_app: ServedApp) -> None:
    """Every answer counts the one row the user's requests leave, and the others' rows.

    The request that wrote the row answers from its own statement (PostgreSQL),
    which reads the database as it began; the others changed nothing and read
    the answer afterwards.
    """
    author = served_app.register("author")
    fan = served_app.register("fan")
    slug = post_article(served_app.client(author))["slug"]
    served_app.client(served_app.register("other")).post(f"/api/articles/{slug}/favorite")
    clients = [served_app.client(fan) for _ in range(8)]
    path = f"/api/articles/{slug}/favorite"
    for _ in range(ROUNDS):
        for method, favorited, count in (("post", True, 2), ("delete", False, 1)):
            responses = fire(*(partial(getattr(c, method), path) for c in clients))
            assert statuses(responses) == {200: len(clients)}
            answers = {
                (r.json()["article"]["favorited"], r.json()["article"]["favoritesCount"])
                for r in responses
            }
            assert answers == {(favorited, count)}
            assert served_app.sql("SELECT count(*) FROM favorites")[0][0] == count
