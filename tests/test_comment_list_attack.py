"""Attacks on the comment list read as one prebuilt statement (and the tags' and feed's).

``GET /api/articles/<slug>/comments`` now runs one statement: the article the
slug names, outer-joined to its comments joined to their authors. No row is a
404, one row of NULL comment columns an empty list. Whatever the slug, the
order of writes and the viewer, the answer must be what the spec and the
previous release answered, and a cached answer byte for byte an uncached one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import close_app
from app.comments import service as comments_service
from app.tags import service as tags_service
from tests.apps import app_with_tables, make_app
from tests.factories import add_comment, auth, create_article, follow, register
from tests.listening import wait_for, wait_until_listening

NOT_FOUND = {"errors": {"article": ["not found"]}}


@pytest.fixture
def pair(app: Flask, database_url: str) -> Iterator[tuple[FlaskClient, FlaskClient]]:
    """A cached client (its feed listening) and an uncached instance on the same database."""
    uncached_app = make_app(database_url, RESPONSE_CACHE=False)
    try:
        wait_until_listening(app)
        yield app.test_client(), uncached_app.test_client()
    finally:
        close_app(uncached_app)


def comments_url(slug: str) -> str:
    return f"/api/articles/{slug}/comments"


def commented_article(client: FlaskClient, **fields: Any) -> tuple[Any, Any, str]:
    """jake's article (``fields`` as ``create_article`` takes them) with one comment by anna."""
    jake, anna = register(client, username="jake"), register(client, username="anna")
    slug = create_article(client, jake, **fields)["slug"]
    add_comment(client, anna, slug)
    return jake, anna, slug


def warmed(client: FlaskClient, url: str, headers: dict[str, str] | None = None) -> None:
    """``url`` answered from the cache (a notice of an earlier write may still clear it)."""

    def hit() -> bool:
        response = client.get(url, headers=headers or {})
        return response.status_code != 200 or response.headers.get("X-Cache") == "hit"

    wait_for(hit)


def same_answer(
    cached: FlaskClient, uncached: FlaskClient, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Cached and uncached answers byte-identical (status and body); the parsed answer."""
    one = cached.get(url, headers=headers or {})
    two = uncached.get(url, headers=headers or {})
    assert (one.status_code, one.get_data()) == (two.status_code, two.get_data()), url
    return one.status_code, one.get_json()


# --- odd slugs: 404 with the spec's body, never a 500, never someone's comments ----------


@pytest.mark.parametrize(
    "slug",
    [
        "nope",
        "caf%C3%A9",  # percent-encoded é
        "caf\u00e9",
        "\u6f22\u5b57-\U0001f600",
        "x" * 255,
        "x" * 256,  # past the column's length
        "x" * 5000,
        "%25",  # a literal percent sign
        "a%20b",
        "'; DROP TABLE comments; --",
        "%ED%A0%80",  # an encoded lone surrogate: not UTF-8
        "%FF",
    ],
    ids=lambda s: s[:24],
)
def test_an_unknown_odd_slug_lists_404_with_the_spec_body(client, jake, slug):
    for headers in ({}, auth(jake)):
        response = client.get(comments_url(slug), headers=headers)

        assert response.status_code == 404
        assert response.get_json() == NOT_FOUND


def test_a_nul_in_the_slug_matches_no_route(client):
    assert client.get(comments_url("a%00b")).status_code == 404


def test_a_trailing_slash_lists_what_the_path_without_it_lists(pair):
    """A trailing slash is the path without it (app/web/http_edges.py), cached or not."""
    cached, uncached = pair
    jake = register(uncached, username="jake")
    slug = create_article(uncached, jake)["slug"]
    add_comment(uncached, jake, slug)
    warmed(cached, comments_url(slug))

    slashed = same_answer(cached, uncached, comments_url(slug) + "/")
    double = same_answer(cached, uncached, comments_url(slug) + "//")

    assert slashed == double == same_answer(cached, uncached, comments_url(slug))
    assert len(slashed[1]["comments"]) == 1


def test_a_unicode_titled_article_lists_its_comments_raw_and_percent_encoded(client, jake, anna):
    article = create_article(client, jake, title="Caf\u00e9 \u6f22\u5b57 \u00fcber")
    comment = add_comment(client, anna, article["slug"], "\u2603 snow")

    raw = client.get(comments_url(article["slug"]))
    encoded = client.get(comments_url(quote(article["slug"], safe="")))

    assert raw.status_code == encoded.status_code == 200
    assert raw.get_json() == encoded.get_json()
    assert [c["id"] for c in raw.get_json()["comments"]] == [comment["id"]]
    assert raw.get_json()["comments"][0]["body"] == "\u2603 snow"


def test_a_slug_in_other_case_is_not_the_article(client, jake, anna):
    article = create_article(client, jake, title="Mixed Case Title")
    add_comment(client, anna, article["slug"])

    response = client.get(comments_url(article["slug"].upper()))

    assert response.status_code == 404
    assert response.get_json() == NOT_FOUND


def test_a_slug_prefix_or_like_pattern_is_not_the_article(client, jake, anna):
    article = create_article(client, jake, title="Prefix Match")
    add_comment(client, anna, article["slug"])

    for slug in (article["slug"][:-1], article["slug"] + "-", "prefix%25", "prefix_match"):
        assert client.get(comments_url(slug)).status_code == 404, slug


# --- the answer's shape: every comment, newest first, its own author ---------------


def test_no_comments_is_an_empty_list_not_a_null_comment(client, jake):
    slug = create_article(client, jake)["slug"]

    for headers in ({}, auth(jake)):
        response = client.get(comments_url(slug), headers=headers)
        assert response.status_code == 200
        assert response.get_json() == {"comments": []}


def test_comments_of_several_authors_each_carry_their_own_profile_newest_first(client, jake):
    slug = create_article(client, jake)["slug"]
    anna = register(client, username="anna")
    bob = register(client, username="bob")
    client.put(
        "/api/user",
        json={"user": {"bio": "bob's bio", "image": "https://b/i.png"}},
        headers=auth(bob),
    )
    made = [
        add_comment(client, anna, slug, "1"),
        add_comment(client, bob, slug, "2"),
        add_comment(client, anna, slug, "3"),
        add_comment(client, jake, slug, "4"),
    ]
    follow(client, jake, "bob")

    listed = client.get(comments_url(slug), headers=auth(jake)).get_json()["comments"]

    assert [c["id"] for c in listed] == [c["id"] for c in reversed(made)]
    assert [(c["body"], c["author"]["username"], c["author"]["following"]) for c in listed] == [
        ("4", "jake", False),
        ("3", "anna", False),
        ("2", "bob", True),
        ("1", "anna", False),
    ]
    assert listed[2]["author"]["bio"] == "bob's bio"
    assert listed[2]["author"]["image"] == "https://b/i.png"


def test_comments_made_in_the_same_instant_list_by_id_newest_first(client, jake, monkeypatch):
    slug = create_article(client, jake)["slug"]
    instant = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    monkeypatch.setattr(comments_service, "utcnow", lambda: instant)
    made = [add_comment(client, jake, slug, f"tie {n}")["id"] for n in range(4)]

    for headers in ({}, auth(jake)):
        listed = client.get(comments_url(slug), headers=headers).get_json()["comments"]
        assert [c["id"] for c in listed] == sorted(made, reverse=True)
        assert {c["createdAt"] for c in listed} == {"2026-01-02T03:04:05.678Z"}


def test_sixty_comments_are_all_listed_once_each(client, jake, anna):
    slug = create_article(client, jake)["slug"]
    made = [add_comment(client, anna if n % 3 else jake, slug, f"n{n}")["id"] for n in range(60)]

    for headers in ({}, auth(anna)):
        listed = client.get(comments_url(slug), headers=headers).get_json()["comments"]
        assert [c["id"] for c in listed] == made[::-1]


def test_comments_of_another_article_never_show(client, jake, anna):
    one = create_article(client, jake)["slug"]
    two = create_article(client, jake)["slug"]
    mine = add_comment(client, anna, one, "on one")
    add_comment(client, anna, two, "on two")

    listed = client.get(comments_url(one)).get_json()["comments"]

    assert [c["id"] for c in listed] == [mine["id"]]


def test_anonymous_and_signed_in_lists_are_the_same_comments(client, jake, anna):
    slug = create_article(client, jake)["slug"]
    for n in range(5):
        add_comment(client, anna if n % 2 else jake, slug, f"c{n}")
    follow(client, jake, "anna")

    anonymous = client.get(comments_url(slug)).get_json()["comments"]
    as_jake = client.get(comments_url(slug), headers=auth(jake)).get_json()["comments"]

    def without_following(items: list[dict[str, Any]]) -> list[Any]:
        return [(c["id"], c["body"], c["author"]["username"]) for c in items]

    assert without_following(anonymous) == without_following(as_jake)
    assert {c["author"]["following"] for c in anonymous} == {False}
    assert [c["author"]["following"] for c in as_jake] == [
        c["author"]["username"] == "anna" for c in as_jake
    ]


# --- the response cache: cached equals uncached after every write ------------------


def test_zero_then_one_then_no_comment_cached_equals_uncached(pair):
    cached, uncached = pair
    jake, anna = register(uncached, username="jake"), register(uncached, username="anna")
    slug = create_article(uncached, jake)["slug"]
    url = comments_url(slug)
    viewers: list[dict[str, str]] = [{}, auth(jake), auth(anna)]

    def check() -> list[Any]:
        answers = []
        for headers in viewers:
            warmed(cached, url, headers)
            answers.append(same_answer(cached, uncached, url, headers))
        return answers

    assert {a[1]["comments"] == [] for a in check()} == {True}
    comment = add_comment(cached, anna, slug)
    assert [len(a[1]["comments"]) for a in check()] == [1, 1, 1]
    response = cached.delete(f"{url}/{comment['id']}", headers=auth(anna))
    assert response.status_code == 204
    assert [a[1] for a in check()] == [{"comments": []}] * 3


def test_following_and_unfollowing_a_commenter_moves_the_viewers_cached_list(pair):
    cached, uncached = pair
    jake, _anna, slug = commented_article(uncached)
    url = comments_url(slug)

    for expected, write in ((True, "post"), (False, "delete")):
        warmed(cached, url, auth(jake))
        warmed(cached, url)
        response = getattr(cached, write)("/api/profiles/anna/follow", headers=auth(jake))
        assert response.status_code == 200
        _, as_jake = same_answer(cached, uncached, url, auth(jake))
        _, anonymous = same_answer(cached, uncached, url)
        assert as_jake["comments"][0]["author"]["following"] is expected
        assert anonymous["comments"][0]["author"]["following"] is False


@pytest.mark.parametrize(
    "change",
    [{"username": "anna2"}, {"bio": "new bio"}, {"image": "https://example.com/a.png"}],
    ids=["username", "bio", "image"],
)
def test_a_commenter_editing_their_profile_moves_the_cached_list(pair, change):
    cached, uncached = pair
    jake, anna, slug = commented_article(uncached)
    url = comments_url(slug)
    for headers in ({}, auth(jake)):
        warmed(cached, url, headers)

    response = cached.put("/api/user", json={"user": change}, headers=auth(anna))
    assert response.status_code == 200

    for headers in ({}, auth(jake)):
        _, answer = same_answer(cached, uncached, url, headers)
        ((field, value),) = change.items()
        assert answer["comments"][0]["author"][field] == value


def test_a_commenter_editing_their_profile_through_another_instance_reaches_the_cache(pair):
    cached, uncached = pair
    _jake, anna, slug = commented_article(uncached)
    url = comments_url(slug)
    warmed(cached, url)

    uncached.put("/api/user", json={"user": {"username": "anna-renamed"}}, headers=auth(anna))

    wait_for(
        lambda: cached.get(url).get_json()["comments"][0]["author"]["username"] == "anna-renamed"
    )
    same_answer(cached, uncached, url)


def test_a_deleted_article_lists_404_cached_or_not(pair):
    cached, uncached = pair
    jake, _anna, slug = commented_article(uncached, title="Soon Gone")
    url = comments_url(slug)
    for headers in ({}, auth(jake)):
        warmed(cached, url, headers)

    assert cached.delete(f"/api/articles/{slug}", headers=auth(jake)).status_code == 204

    for headers in ({}, auth(jake)):
        status, body = same_answer(cached, uncached, url, headers)
        assert (status, body) == (404, NOT_FOUND)


def test_a_slug_reused_after_deletion_shows_only_the_new_articles_comments(pair):
    cached, uncached = pair
    jake, anna = register(uncached, username="jake"), register(uncached, username="anna")
    slug = create_article(uncached, jake, title="Reused Title")["slug"]
    add_comment(uncached, anna, slug, "on the old one")
    url = comments_url(slug)
    warmed(cached, url)
    warmed(cached, url, auth(jake))
    assert cached.delete(f"/api/articles/{slug}", headers=auth(jake)).status_code == 204

    again = create_article(cached, jake, title="Reused Title")["slug"]
    assert again == slug

    for headers in ({}, auth(jake)):
        status, body = same_answer(cached, uncached, url, headers)
        assert (status, body) == (200, {"comments": []})
    add_comment(cached, jake, slug, "on the new one")
    _, body = same_answer(cached, uncached, url)
    assert [c["body"] for c in body["comments"]] == ["on the new one"]


@pytest.mark.parametrize("with_tags", [False, True], ids=["title only", "title and tags"])
def test_a_retitled_article_lists_404_at_its_old_slug_and_its_comments_at_the_new(pair, with_tags):
    cached, uncached = pair
    jake, anna = register(uncached, username="jake"), register(uncached, username="anna")
    old = create_article(uncached, jake, title="Old Name")["slug"]
    comment = add_comment(uncached, anna, old)
    warmed(cached, comments_url(old))
    warmed(cached, comments_url(old), auth(anna))

    changes: dict[str, Any] = {"title": "New Name"}
    if with_tags:
        changes["tagList"] = ["renamed"]
    response = cached.put(f"/api/articles/{old}", json={"article": changes}, headers=auth(jake))
    assert response.status_code == 200
    new = response.get_json()["article"]["slug"]
    assert new != old

    for headers in ({}, auth(anna)):
        assert same_answer(cached, uncached, comments_url(old), headers) == (404, NOT_FOUND)
        status, body = same_answer(cached, uncached, comments_url(new), headers)
        assert status == 200
        assert [c["id"] for c in body["comments"]] == [comment["id"]]


def test_a_slug_taken_over_by_another_article_shows_that_articles_comments(pair):
    """A's slug freed by a retitle, then B retitled into it: the cached list was A's."""
    cached, uncached = pair
    jake, anna = register(uncached, username="jake"), register(uncached, username="anna")
    first = create_article(uncached, jake, title="Contested")["slug"]
    add_comment(uncached, anna, first, "on A")
    second = create_article(uncached, jake, title="Other")["slug"]
    add_comment(uncached, anna, second, "on B")
    warmed(cached, comments_url(first))

    moved = uncached.put(
        f"/api/articles/{first}", json={"article": {"title": "Elsewhere"}}, headers=auth(jake)
    )
    assert moved.status_code == 200
    taken = uncached.put(
        f"/api/articles/{second}", json={"article": {"title": "Contested"}}, headers=auth(jake)
    )
    assert taken.get_json()["article"]["slug"] == first

    wait_for(
        lambda: (
            [c["body"] for c in cached.get(comments_url(first)).get_json()["comments"]] == ["on B"]
        )
    )
    same_answer(cached, uncached, comments_url(first))


def test_a_comment_on_another_article_leaves_this_list_right(pair):
    cached, uncached = pair
    jake, anna = register(uncached, username="jake"), register(uncached, username="anna")
    one = create_article(uncached, jake)["slug"]
    two = create_article(uncached, jake)["slug"]
    warmed(cached, comments_url(one))

    add_comment(cached, anna, two)

    assert same_answer(cached, uncached, comments_url(one)) == (200, {"comments": []})


def test_an_unknown_slug_is_never_cached_into_a_later_articles_answer(pair):
    cached, uncached = pair
    jake = register(uncached, username="jake")
    url = comments_url("not-yet")
    for _ in range(2):
        assert cached.get(url).status_code == 404

    slug = create_article(cached, jake, title="Not Yet")["slug"]
    assert slug == "not-yet"
    comment = add_comment(cached, jake, slug)

    status, body = same_answer(cached, uncached, url)
    assert status == 200
    assert [c["id"] for c in body["comments"]] == [comment["id"]]


# --- a list read while the article is deleted ------------------------------------


def test_a_list_read_while_its_article_is_deleted_is_all_comments_or_404(app, client):
    """One statement, one snapshot: never the article found and its comments already gone."""
    jake, anna = register(client, username="jake"), register(client, username="anna")
    seen: list[tuple[int, Any]] = []

    def read(reader: FlaskClient, slug: str, stop: threading.Event) -> None:
        while not stop.is_set():
            response = reader.get(comments_url(slug), headers=auth(anna))
            body = response.get_json()
            seen.append(
                (response.status_code, len(body["comments"]) if "comments" in body else body)
            )
            if response.status_code != 200:
                return

    for round_ in range(5):
        slug = create_article(client, jake, title=f"Racing {round_}")["slug"]
        for n in range(3):
            add_comment(client, anna, slug, f"{n}")
        stop = threading.Event()
        threads = [
            threading.Thread(target=read, args=(app.test_client(), slug, stop)) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        assert client.delete(f"/api/articles/{slug}", headers=auth(jake)).status_code == 204
        stop.set()
        for thread in threads:
            thread.join(30)

    answers = {(status, repr(what)) for status, what in seen}
    assert answers <= {(200, "3"), (404, repr(NOT_FOUND))}, sorted(answers)


# --- statements built once: shared across apps, viewers and databases ---------------


def test_the_comment_statement_binds_each_viewer_not_the_first(client, jake, anna):
    """Built once per kind of viewer: the bound viewer id, not the first viewer's, decides."""
    slug = create_article(client, jake)["slug"]
    bob = register(client, username="bob")
    add_comment(client, bob, slug)
    follow(client, anna, "bob")
    comments_service._comments_statement.cache_clear()

    first = client.get(comments_url(slug), headers=auth(anna)).get_json()
    second = client.get(comments_url(slug), headers=auth(jake)).get_json()
    third = client.get(comments_url(slug), headers=auth(anna)).get_json()

    assert first["comments"][0]["author"]["following"] is True
    assert second["comments"][0]["author"]["following"] is False
    assert third == first


def test_statements_built_on_one_database_answer_on_the_other(database_url, tmp_path):
    """The module-level statements are shared by every app in the process, whatever its dialect."""
    sqlite_url = f"sqlite:///{tmp_path / 'other.db'}"
    urls = [database_url, sqlite_url] if database_url != sqlite_url else [database_url]
    comments_service._comments_statement.cache_clear()
    tags_service._popular_tags_statement.cache_clear()
    for n, url in enumerate(urls):
        with app_with_tables(url, RESPONSE_CACHE=False) as made:
            c = made.test_client()
            jake = register(c, username=f"jake{n}")
            slug = create_article(c, jake, tagList=[f"t{n}", "shared"])["slug"]
            add_comment(c, jake, slug, f"db {n}")

            assert c.get("/api/tags").get_json() == {"tags": sorted(["shared", f"t{n}"])}
            listed = c.get(comments_url(slug), headers=auth(jake)).get_json()["comments"]
            assert [x["body"] for x in listed] == [f"db {n}"]


def test_the_feed_binds_each_viewers_followed_authors(pair):
    """Two viewers, each following someone else: each cached feed moves with its own authors."""
    cached, uncached = pair
    jake, anna = register(uncached, username="jake"), register(uncached, username="anna")
    carol, dave = register(uncached, username="carol"), register(uncached, username="dave")
    follow(uncached, anna, "jake")
    follow(uncached, carol, "dave")
    feed = "/api/articles/feed"
    for viewer in (anna, carol):
        warmed(cached, feed, auth(viewer))

    create_article(cached, dave, title="By Dave")

    _, for_carol = same_answer(cached, uncached, feed, auth(carol))
    _, for_anna = same_answer(cached, uncached, feed, auth(anna))
    assert [a["title"] for a in for_carol["articles"]] == ["By Dave"]
    assert for_anna["articles"] == []
    create_article(cached, jake, title="By Jake")
    _, for_anna = same_answer(cached, uncached, feed, auth(anna))
    assert [a["title"] for a in for_anna["articles"]] == ["By Jake"]


def test_tags_built_once_follow_new_and_deleted_articles(pair):
    cached, uncached = pair
    jake = register(uncached, username="jake")
    warmed(cached, "/api/tags")
    slug = create_article(cached, jake, tagList=["zeta", "alpha"])["slug"]
    create_article(cached, jake, tagList=["zeta"])

    assert same_answer(cached, uncached, "/api/tags") == (200, {"tags": ["zeta", "alpha"]})
    assert cached.delete(f"/api/articles/{slug}", headers=auth(jake)).status_code == 204
    assert same_answer(cached, uncached, "/api/tags") == (200, {"tags": ["zeta"]})


def test_tags_built_once_read_the_deltas_not_yet_folded(database_url):
    """The prebuilt statement adds the pending deltas: right before any fold."""
    with app_with_tables(database_url, COUNTERS_FOLD_INTERVAL="3600", RESPONSE_CACHE=False) as made:
        c = made.test_client()
        jake = register(c, username="jake")
        first = create_article(c, jake, tagList=["b", "a"])["slug"]
        create_article(c, jake, tagList=["b"])
        assert c.get("/api/tags").get_json() == {"tags": ["b", "a"]}
        assert c.delete(f"/api/articles/{first}", headers=auth(jake)).status_code == 204
        assert c.get("/api/tags").get_json() == {"tags": ["b"]}


def test_cached_and_uncached_lists_share_an_etag_and_both_answer_304(pair):
    cached, uncached = pair
    jake, _anna, slug = commented_article(uncached)
    url = comments_url(slug)
    for headers in ({}, auth(jake)):
        warmed(cached, url, headers)
        hit, fresh = cached.get(url, headers=headers), uncached.get(url, headers=headers)
        assert hit.headers["X-Cache"] == "hit"
        assert hit.headers["ETag"] == fresh.headers["ETag"]
        for reader in (cached, uncached):
            again = reader.get(url, headers={**headers, "If-None-Match": hit.headers["ETag"]})
            assert again.status_code == 304


def test_following_survives_the_followed_commenter_renaming(pair):
    cached, uncached = pair
    jake, anna = register(uncached, username="jake"), register(uncached, username="anna")
    slug = create_article(uncached, jake)["slug"]
    add_comment(uncached, anna, slug)
    follow(uncached, jake, "anna")
    url = comments_url(slug)
    warmed(cached, url, auth(jake))

    renamed = cached.put("/api/user", json={"user": {"username": "Anna2"}}, headers=auth(anna))
    assert renamed.status_code == 200

    _, body = same_answer(cached, uncached, url, auth(jake))
    assert body["comments"][0]["author"] == {
        "username": "Anna2",
        "bio": None,
        "image": None,
        "following": True,
    }
