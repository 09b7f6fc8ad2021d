"""The response cache: hot reads from memory, and never an answer a write made stale.

The central property: after every write, through this instance or another one
on the same database, every hot read answered from the cache is byte for byte
what an instance without a cache answers.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, make_url, select, text
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.wrappers import Response

from app import close_app
from app.data import change_feed, counters
from app.extensions import db
from app.models import Base, Favorite, Follow
from app.tags import service as tags
from app.web import response_cache, single_flight
from tests.apps import apps_on, make_app
from tests.factories import add_comment, auth, create_article, favorite, follow, register
from tests.listening import DEADLINE_SECONDS, feed_of, wait_for, wait_until_listening
from tests.totals import pend_every_total


@pytest.fixture
def second_app(database_url: str, app: Flask) -> Iterator[Callable[..., Flask]]:
    """Another instance on the same database (the ``app`` fixture made the tables)."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        other = make_app(database_url, **overrides)
        made.append(other)
        return other

    yield make
    for other in made:
        close_app(other)


@pytest.fixture
def uncached(second_app) -> FlaskClient:
    return second_app(RESPONSE_CACHE=False).test_client()


def test_a_repeated_read_is_served_without_sql(app, client, count_queries, jake):
    article = create_article(client, jake, tagList=["dragons"])
    wait_until_listening(app)
    url = f"/api/articles/{article['slug']}"

    first = client.get(url, headers=auth(jake))
    with count_queries() as counter:
        second = client.get(url, headers=auth(jake))

    assert first.headers["X-Cache"] == "miss"
    assert second.headers["X-Cache"] == "hit"
    assert counter.count == 0
    assert second.get_data() == first.get_data()
    assert second.headers["ETag"] == first.headers["ETag"]


def test_a_hit_sends_the_stored_etag_without_hashing_the_body_again(app, client, jake, monkeypatch):
    create_article(client, jake)
    wait_until_listening(app)
    first = client.get("/api/articles")
    hashed = []
    add_etag = Response.add_etag

    def counted(self, *args, **kwargs):
        hashed.append(self)
        return add_etag(self, *args, **kwargs)

    monkeypatch.setattr(Response, "add_etag", counted)

    hit = client.get("/api/articles")

    assert hit.headers["X-Cache"] == "hit"
    assert hit.headers["ETag"] == first.headers["ETag"]
    assert hashed == []


def test_a_hit_still_answers_if_none_match_with_304(app, client, jake):
    create_article(client, jake)
    wait_until_listening(app)
    etag = client.get("/api/articles").headers["ETag"]

    response = client.get("/api/articles", headers={"If-None-Match": etag})

    assert response.headers["X-Cache"] == "hit"
    assert response.status_code == 304


def test_each_viewer_gets_their_own_favorited_and_following(app, client, jake, anna):
    article = create_article(client, jake)
    favorite(client, anna, article["slug"])
    follow(client, anna, "jake")
    wait_until_listening(app)
    url = f"/api/articles/{article['slug']}"
    for _ in range(2):  # the second round is served from the cache
        as_anna = client.get(url, headers=auth(anna)).get_json()["article"]
        as_jake = client.get(url, headers=auth(jake)).get_json()["article"]
        anonymous = client.get(url).get_json()["article"]

        assert (as_anna["favorited"], as_anna["author"]["following"]) == (True, True)
        assert (as_jake["favorited"], as_jake["author"]["following"]) == (False, False)
        assert (anonymous["favorited"], anonymous["author"]["following"]) == (False, False)


def test_a_bad_token_is_refused_even_when_the_answer_is_cached(app, client, jake):
    wait_until_listening(app)
    client.get("/api/articles", headers=auth(jake))
    assert client.get("/api/articles", headers=auth(jake)).headers["X-Cache"] == "hit"

    forged = client.get("/api/articles", headers={"Authorization": f"Token {jake['token']}x"})
    unknown_scheme = client.get("/api/articles", headers={"Authorization": "Basic abc"})

    assert forged.status_code == 401
    assert unknown_scheme.status_code == 401


def test_an_answer_read_before_a_write_is_not_stored_after_it(app, client, jake):
    """A miss notes the sequence number before reading; a write in between voids the fill."""
    wait_until_listening(app)
    cache = app.extensions["response_cache"]
    read_at = cache.feed.current()
    create_article(client, jake)  # commits: the list's stamps move past read_at

    watches = cache.feed.stamps.indexes({"list:all"}, {"articles"})
    entry = response_cache.Entry(b"{}", '"x"', "application/json", read_at, watches)
    stored = cache.put((0, "", "/api/articles", ""), entry)

    assert stored is False
    assert client.get("/api/articles").get_json()["articlesCount"] == 1


def test_deleting_an_article_forgets_its_comments(app, client, jake, anna):
    """The database deletes the comments (ON DELETE CASCADE); the cache knows it."""
    article = create_article(client, jake)
    add_comment(client, anna, article["slug"])
    wait_until_listening(app)
    url = f"/api/articles/{article['slug']}/comments"
    client.get(url)
    assert client.get(url).headers["X-Cache"] == "hit"

    client.delete(f"/api/articles/{article['slug']}", headers=auth(jake))

    assert client.get(url).status_code == 404


def test_every_table_a_write_can_reach_is_known():
    closure = change_feed.cascades(Base.metadata)

    assert closure["users"] >= {"articles", "comments", "favorites", "follows", "article_tags"}
    assert closure["articles"] == {"articles", "comments", "favorites", "article_tags"}
    assert closure["comments"] == {"comments"}
    assert set(closure) == set(Base.metadata.tables)
    for tables in change_feed.COVERS.values():
        assert set(tables) <= set(Base.metadata.tables)


def test_answers_larger_than_probation_are_not_kept(second_app, jake):
    small = second_app(RESPONSE_CACHE_MAX_BYTES=10_000).test_client()  # 2,000 in probation
    create_article(small, jake, body="x" * 5_000)
    wait_until_listening(small.application)
    url = "/api/articles/" + small.get("/api/articles").get_json()["articles"][0]["slug"]

    large = small.get(url), small.get(url)
    again = small.get("/api/tags"), small.get("/api/tags")

    assert [r.headers["X-Cache"] for r in large] == ["miss", "miss"]
    assert [r.headers["X-Cache"] for r in again] == ["miss", "hit"]  # small answers still are


def test_query_arguments_no_view_reads_share_one_entry(app, client, jake):
    create_article(client, jake, tagList=["dragons"])
    wait_until_listening(app)
    client.get("/api/articles?tag=dragons&limit=5")

    answers = [
        client.get("/api/articles?limit=5&junk=1&tag=dragons"),
        client.get("/api/articles?tag=dragons&limit=5&junk=2"),
        client.get("/api/articles?utm_source=x&tag=dragons&limit=5"),
    ]

    assert [r.headers["X-Cache"] for r in answers] == ["hit", "hit", "hit"]
    assert len(app.extensions["response_cache"]) == 1
    assert answers[0].get_json()["articlesCount"] == 1


def test_query_arguments_a_view_reads_are_keys_of_their_own(app, client, jake):
    create_article(client, jake, tagList=["dragons"])
    wait_until_listening(app)
    client.get("/api/articles?tag=dragons")

    other_tag = client.get("/api/articles?tag=unicorns")

    assert other_tag.headers["X-Cache"] == "miss"
    assert other_tag.get_json()["articlesCount"] == 0


def test_a_hot_answer_survives_a_flood_of_urls_read_once(second_app, jake):
    small = second_app(RESPONSE_CACHE_MAX_BYTES=60_000).test_client()
    for _ in range(3):
        create_article(small, jake)
    wait_until_listening(small.application)
    small.get("/api/tags")
    assert small.get("/api/tags").headers["X-Cache"] == "hit"  # read twice: protected

    for offset in range(200):  # 200 distinct valid URLs, well past the budget
        small.get(f"/api/articles?offset={offset % 4}&limit={offset // 4 + 1}")

    assert small.get("/api/tags").headers["X-Cache"] == "hit"
    assert response_cache_size(small.application) <= 60_000


def response_cache_size(app: Flask) -> int:
    return app.extensions["response_cache"].size_bytes


def test_the_byte_bound_counts_each_entrys_key():
    feed = SimpleNamespace(fresh=lambda watches, read_at: True)
    cache = response_cache.ResponseCache(feed, max_bytes=100_000)  # type: ignore[arg-type]
    entry = response_cache.Entry(b"{}", '"x"', "application/json", 1, (7,))

    for n in range(100):
        cache.put((0, "", "/api/articles", f"tag={n}{'x' * 8_000}"), entry)
        cache.get((0, "", "/api/articles", f"tag={n}{'x' * 8_000}"))  # promoted

    assert 0 < len(cache) <= 100_000 // 8_000
    assert cache.size_bytes <= 100_000


def test_an_entry_counts_at_least_the_memory_of_its_pieces():
    key = (7, "0123456789abcdef" * 2, "/api/articles", "limit=5&tag=dragons")
    entry = response_cache.Entry(b"x" * 1_000, '"etag"', "application/json", 12, (34, 56))

    counted = response_cache.footprint(key, entry)

    assert counted >= 1_000 + len("limit=5&tag=dragons") + response_cache.BOOKKEEPING
    assert counted >= sum(map(sys.getsizeof, (key, entry, entry.body, *key)))


def test_the_tags_are_one_answer_for_every_viewer(app, client, jake):
    wait_until_listening(app)
    client.get("/api/tags")

    as_jake = client.get("/api/tags", headers=auth(jake))
    with_a_bad_token = client.get("/api/tags", headers={"Authorization": "Token nonsense"})

    assert as_jake.headers["X-Cache"] == "hit"
    assert with_a_bad_token.status_code == 200  # the tags never looked at the token


def test_the_cache_can_be_switched_off(uncached):
    response = uncached.get("/api/tags")

    assert response.status_code == 200
    assert "X-Cache" not in response.headers


# --- the property: cached equals uncached after every write ------------------


class World:
    """Users and an article, written through any instance; knows the hot reads."""

    def __init__(self, client: FlaskClient) -> None:
        self.jake = register(client, username="jake")
        self.anna = register(client, username="anna")
        self.slug = create_article(client, self.jake, tagList=["dragons"])["slug"]
        self.comment_id: int | None = None

    def reads(self) -> list[tuple[str, dict[str, str]]]:
        urls = [
            "/api/articles",
            "/api/articles?tag=dragons",
            "/api/articles?author=jake",
            "/api/articles?favorited=anna",
            "/api/articles?limit=1&offset=1",
            f"/api/articles/{self.slug}",
            f"/api/articles/{self.slug}/comments",
            "/api/tags",
            "/api/profiles/jake",
            "/api/profiles/anna",
        ]
        viewers = [{}, auth(self.jake), auth(self.anna)]
        signed_in = [
            ("/api/articles/feed", auth(self.anna)),
            ("/api/articles/feed", auth(self.jake)),
        ]
        return [(url, viewer) for url in urls for viewer in viewers] + signed_in


def _register(world: World, client: FlaskClient) -> None:
    register(client, username="carol")


def _create(world: World, client: FlaskClient) -> None:
    create_article(client, world.jake, tagList=["dragons", "training"])


def _favorite(world: World, client: FlaskClient) -> None:
    favorite(client, world.anna, world.slug)


def _follow(world: World, client: FlaskClient) -> None:
    follow(client, world.anna, "jake")


def _create_for_followers(world: World, client: FlaskClient) -> None:
    """A new article by someone followed: it enters the followers' feeds."""
    create_article(client, world.jake, tagList=["training"])


def _comment(world: World, client: FlaskClient) -> None:
    world.comment_id = add_comment(client, world.anna, world.slug)["id"]


def _retitle(world: World, client: FlaskClient) -> None:
    response = client.put(
        f"/api/articles/{world.slug}",
        json={"article": {"title": "A new title", "tagList": ["training"]}},
        headers=auth(world.jake),
    )
    assert response.status_code == 200
    world.slug = response.get_json()["article"]["slug"]


def _update_profile(world: World, client: FlaskClient) -> None:
    response = client.put(
        "/api/user", json={"user": {"bio": "I like dragons"}}, headers=auth(world.jake)
    )
    assert response.status_code == 200


def _unfavorite(world: World, client: FlaskClient) -> None:
    response = client.delete(f"/api/articles/{world.slug}/favorite", headers=auth(world.anna))
    assert response.status_code == 200


def _unfollow(world: World, client: FlaskClient) -> None:
    response = client.delete("/api/profiles/jake/follow", headers=auth(world.anna))
    assert response.status_code == 200


def _delete_comment(world: World, client: FlaskClient) -> None:
    response = client.delete(
        f"/api/articles/{world.slug}/comments/{world.comment_id}", headers=auth(world.anna)
    )
    assert response.status_code == 204


def _delete_article(world: World, client: FlaskClient) -> None:
    response = client.delete(f"/api/articles/{world.slug}", headers=auth(world.jake))
    assert response.status_code == 204


WRITES = [
    _register,
    _create,
    _favorite,
    _follow,
    _create_for_followers,
    _comment,
    _retitle,
    _update_profile,
    _unfavorite,
    _unfollow,
    _delete_comment,
    _delete_article,
]


def _answer(client: FlaskClient, url: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
    response = client.get(url, headers=headers)
    return response.status_code, response.get_data(), response.headers.get("X-Cache", "")


def _warm(cached: FlaskClient, world: World) -> None:
    """Every read cached; a notice of an earlier write may still arrive and clear one."""

    def cached_now(url: str, headers: dict[str, str]) -> bool:
        status, _, state = _answer(cached, url, headers)
        return status != 200 or state == "hit"

    for url, headers in world.reads():
        wait_for(lambda url=url, headers=headers: cached_now(url, headers))


def _differences(cached: FlaskClient, uncached: FlaskClient, world: World) -> list[str]:
    return [
        url
        for url, headers in world.reads()
        if _answer(cached, url, headers)[:2] != _answer(uncached, url, headers)[:2]
    ]


@pytest.mark.slow  # every read, for every viewer, after each of eleven writes
@pytest.mark.parametrize("writer", ["same instance", "another instance"])
def test_after_every_write_cached_answers_equal_uncached_ones(app, client, uncached, writer):
    wait_until_listening(app)
    world = World(uncached)
    through = client if writer == "same instance" else uncached

    for write in WRITES:
        _warm(client, world)
        write(world, through)

        if writer == "same instance":  # read-your-writes: no delay at all
            assert _differences(client, uncached, world) == [], write.__name__
        else:
            wait_for(lambda: _differences(client, uncached, world) == [])


# --- PostgreSQL: replicas, and a listener that dies -------------------------


@pytest.fixture
def postgres_app(postgres_url: str) -> Iterator[Callable[..., Flask]]:
    with apps_on(postgres_url) as make:
        yield make


def test_two_instances_on_postgresql_see_each_others_writes(postgres_app):
    one, two = postgres_app().test_client(), postgres_app().test_client()
    wait_until_listening(one.application)
    wait_until_listening(two.application)
    jake = register(one, username="jake")
    for reader in (one, two):  # the registration's notice may still be on its way to two
        wait_for(lambda reader=reader: reader.get("/api/articles").headers["X-Cache"] == "hit")

    create_article(one, jake)
    seen_by_one = one.get("/api/articles").get_json()["articlesCount"]
    wait_for(lambda: two.get("/api/articles").get_json()["articlesCount"] == 1)
    create_article(two, jake)
    wait_for(lambda: one.get("/api/articles").get_json()["articlesCount"] == 2)

    assert seen_by_one == 1  # the writer at once
    wait_for(lambda: two.get("/api/articles").headers["X-Cache"] == "hit")  # and caching again


def test_a_write_leaves_reads_of_other_tables_cached(postgres_app):
    """On PostgreSQL the feed knows which tables a write touched (SQLite's
    ``data_version`` does not, so there every write moves every table)."""
    client = postgres_app().test_client()
    wait_until_listening(client.application)
    jake, anna = register(client, username="jake"), register(client, username="anna")
    article = create_article(client, jake)
    # The three writes' own notices come back too; only then is the cache settled.
    wait_for(lambda: feed_of(client.application).notices >= 3)
    reads = ["/api/articles", "/api/tags", f"/api/articles/{article['slug']}/comments"]
    for url in reads:
        client.get(url)

    add_comment(client, anna, article["slug"])

    states = {url: client.get(url).headers["X-Cache"] for url in reads}
    assert states == {
        "/api/articles": "hit",
        "/api/tags": "hit",
        f"/api/articles/{article['slug']}/comments": "miss",
    }


def _kill_listener(app: Flask) -> None:
    feed = feed_of(app)
    with app.app_context():
        db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": feed.backend_pid})
        db.session.commit()


def test_a_lost_listener_turns_the_cache_off_not_stale(postgres_app):
    cached = postgres_app(RESPONSE_CACHE_RECONNECT_SECONDS=3600).test_client()
    writer = postgres_app(RESPONSE_CACHE=False).test_client()
    wait_until_listening(cached.application)
    jake = register(writer, username="jake")
    # Caching, once the registration's notifications have reached the cached app.
    wait_for(lambda: cached.get("/api/articles").headers["X-Cache"] == "hit")

    _kill_listener(cached.application)
    wait_for(lambda: not feed_of(cached.application).online)
    create_article(writer, jake)
    response = cached.get("/api/articles")

    assert response.headers["X-Cache"] == "off"
    assert response.get_json()["articlesCount"] == 1


def test_the_cache_comes_back_when_the_listener_reconnects(postgres_app):
    cached = postgres_app().test_client()
    writer = postgres_app(RESPONSE_CACHE=False).test_client()
    wait_until_listening(cached.application)
    jake = register(writer, username="jake")
    cached.get("/api/articles")
    feed = feed_of(cached.application)
    lost_before = feed.disconnections

    _kill_listener(cached.application)
    wait_for(lambda: feed.disconnections > lost_before)
    create_article(writer, jake)  # perhaps while nobody listened
    wait_until_listening(cached.application)

    assert cached.get("/api/articles").get_json()["articlesCount"] == 1
    # The write's own notification may land after the reconnection: a fill or two
    # may be refused before the generations settle and answers are kept again.
    wait_for(lambda: cached.get("/api/articles").headers["X-Cache"] == "hit")


def test_a_database_the_feed_cannot_hear_turns_the_cache_off():
    engine = SimpleNamespace(url=make_url("mysql://nobody@127.0.0.1/none"))  # only its URL is read

    assert change_feed.feed_for(engine).current() is None


# --- surrogate keys: a write moves what shows what it changed, nothing more ----


def _states(client: FlaskClient, urls: dict[str, dict[str, str]]) -> dict[str, str]:
    return {
        url: client.get(url, headers=headers).headers["X-Cache"] for url, headers in urls.items()
    }


def _settled(client: FlaskClient, urls: dict[str, dict[str, str]]) -> None:
    """Every one of ``urls`` cached (a notice of a write made before may still arrive)."""
    for url, headers in urls.items():
        wait_for(
            lambda url=url, headers=headers: (
                client.get(url, headers=headers).headers["X-Cache"] == "hit"
            )
        )


@pytest.fixture
def keyed(postgres_app) -> SimpleNamespace:
    """PostgreSQL (its notifications name what changed; SQLite's ``data_version`` moves
    everything): jake's article tagged dragons, another tagged training, and anna."""
    client = postgres_app().test_client()
    wait_until_listening(client.application)
    jake, anna = register(client, username="jake"), register(client, username="anna")
    dragons = create_article(client, jake, tagList=["dragons"])["slug"]
    training = create_article(client, jake, tagList=["training"])["slug"]
    return SimpleNamespace(client=client, jake=jake, anna=anna, dragons=dragons, training=training)


@pytest.mark.parametrize("as_favoriter", [False, True], ids=["anonymous", "the favoriter"])
def test_a_favorite_moves_the_article_and_the_lists_showing_it_only(keyed, as_favoriter):
    """The favoriter's own answers without that article stay cached too (no per-viewer key)."""
    headers = auth(keyed.anna) if as_favoriter else {}
    urls = {
        f"/api/articles/{keyed.dragons}": headers,
        "/api/articles?tag=dragons": headers,
        "/api/articles?tag=training": headers,
        f"/api/articles/{keyed.training}": headers,
    }
    _settled(keyed.client, urls)

    favorite(keyed.client, keyed.anna, keyed.dragons)

    assert _states(keyed.client, urls) == {
        f"/api/articles/{keyed.dragons}": "miss",
        "/api/articles?tag=dragons": "miss",
        "/api/articles?tag=training": "hit",
        f"/api/articles/{keyed.training}": "hit",
    }


def test_a_comment_leaves_every_list_cached(keyed):
    urls = {
        "/api/articles": {},
        "/api/articles?tag=dragons": {},
        f"/api/articles/{keyed.dragons}": {},
        f"/api/articles/{keyed.dragons}/comments": {},
    }
    _settled(keyed.client, urls)

    add_comment(keyed.client, keyed.anna, keyed.dragons)

    assert _states(keyed.client, urls) == {
        "/api/articles": "hit",
        "/api/articles?tag=dragons": "hit",
        f"/api/articles/{keyed.dragons}": "hit",
        f"/api/articles/{keyed.dragons}/comments": "miss",
    }


def test_a_new_article_moves_the_lists_it_enters_only(keyed):
    urls = {
        "/api/articles": {},
        "/api/articles?tag=dragons": {},
        "/api/articles?tag=training": {},
        f"/api/articles/{keyed.training}": {},
    }
    _settled(keyed.client, urls)

    create_article(keyed.client, keyed.jake, tagList=["dragons"])

    assert _states(keyed.client, urls) == {
        "/api/articles": "miss",
        "/api/articles?tag=dragons": "miss",
        "/api/articles?tag=training": "hit",
        f"/api/articles/{keyed.training}": "hit",
    }


def test_folding_the_pending_totals_moves_no_answer(keyed):
    """Every read adds the pending deltas to the stored totals: a fold changes no answer."""
    app = keyed.client.application
    pend_every_total(app)
    urls = {"/api/articles": {}, "/api/articles?tag=dragons": {}, "/api/tags": {}}
    _settled(keyed.client, urls)

    with app.app_context():
        counters.fold()

    assert _states(keyed.client, urls) == dict.fromkeys(urls, "hit")
    assert keyed.client.get("/api/articles").get_json()["articlesCount"] == 2
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM counter_deltas")) == 0


def test_a_fold_that_finds_another_fold_running_moves_no_answer(keyed):
    """It writes nothing: ending its transaction must not tell the cache "anything moved"."""
    app = keyed.client.application
    pend_every_total(app)
    urls = {"/api/articles": {}, "/api/articles?tag=dragons": {}, "/api/tags": {}}
    _settled(keyed.client, urls)

    with app.app_context():
        engine = db.engine
    with engine.connect() as other_fold, other_fold.begin():
        other_fold.execute(select(func.pg_advisory_xact_lock(counters.FOLD_LOCK_KEY)))
        with app.app_context():
            counters.fold()

    assert _states(keyed.client, urls) == dict.fromkeys(urls, "hit")
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM counter_deltas")) > 0


def test_a_new_article_leaves_the_comments_cached(keyed):
    """An insert sets off no cascade: the comments table has not moved."""
    urls = {f"/api/articles/{keyed.dragons}/comments": {}, "/api/articles": {}}
    _settled(keyed.client, urls)

    create_article(keyed.client, keyed.jake, tagList=["dragons"])

    assert _states(keyed.client, urls) == {
        f"/api/articles/{keyed.dragons}/comments": "hit",
        "/api/articles": "miss",
    }


def test_a_favorite_or_unfavorite_that_changes_nothing_moves_nothing(keyed):
    favorite(keyed.client, keyed.anna, keyed.dragons)
    urls = {
        f"/api/articles/{keyed.dragons}": auth(keyed.anna),
        f"/api/articles/{keyed.training}": auth(keyed.anna),
        "/api/articles?favorited=anna": {},
    }
    _settled(keyed.client, urls)

    favorite(keyed.client, keyed.anna, keyed.dragons)  # already favorited
    unfavorite = keyed.client.delete(
        f"/api/articles/{keyed.training}/favorite", headers=auth(keyed.anna)
    )  # never favorited

    assert unfavorite.status_code == 200
    assert set(_states(keyed.client, urls).values()) == {"hit"}


def test_a_new_article_moves_only_the_feeds_of_its_authors_followers(keyed):
    follow(keyed.client, keyed.anna, "jake")
    urls = {"/api/articles/feed": auth(keyed.anna), "/api/articles/feed?limit=5": auth(keyed.jake)}
    _settled(keyed.client, urls)

    create_article(keyed.client, keyed.jake)

    assert _states(keyed.client, urls) == {
        "/api/articles/feed": "miss",
        "/api/articles/feed?limit=5": "hit",  # jake follows no one
    }


def test_a_new_article_moves_its_authors_list_not_the_others(keyed):
    create_article(keyed.client, keyed.anna)
    urls = {"/api/articles?author=jake": {}, "/api/articles?author=anna": {}}
    _settled(keyed.client, urls)

    create_article(keyed.client, keyed.jake)

    assert _states(keyed.client, urls) == {
        "/api/articles?author=jake": "miss",
        "/api/articles?author=anna": "hit",
    }


def test_a_statement_that_changes_no_row_moves_no_stamp(keyed):
    feed = feed_of(keyed.client.application)
    watched = feed.stamps.indexes((), {"favorites", "follows"})
    with keyed.client.application.app_context():
        before = feed.stamps.seq
        db.session.execute(delete(Favorite).where(Favorite.user_id == 0))
        db.session.execute(delete(Follow).where(Follow.follower_id == 0))
        db.session.commit()

    assert feed.stamps.seq > before  # the commit was seen
    assert feed.stamps.fresh(watched, before)


def test_a_follow_moves_only_the_followers_answers(keyed):
    urls = {
        "/api/articles?limit=5": auth(keyed.anna),
        "/api/articles": auth(keyed.jake),
        "/api/profiles/jake": {},
        "/api/articles?limit=10": {},
    }
    _settled(keyed.client, urls)

    follow(keyed.client, keyed.anna, "jake")

    assert _states(keyed.client, urls) == {
        "/api/articles?limit=5": "miss",
        "/api/articles": "hit",
        "/api/profiles/jake": "hit",
        "/api/articles?limit=10": "hit",
    }


def test_a_process_does_not_forget_its_answers_when_its_own_notice_comes_back(keyed):
    feed = feed_of(keyed.client.application)
    url = f"/api/articles/{keyed.dragons}"
    _settled(keyed.client, {url: {}})
    heard = feed.notices

    favorite(keyed.client, keyed.anna, keyed.dragons)
    moved = feed.stamps.seq  # the writer moved its stamps before it answered
    keyed.client.get(url)  # read again at once: stored, most often before the notice is back
    wait_for(lambda: feed.notices > heard)

    assert feed.stamps.seq == moved
    assert keyed.client.get(url).headers["X-Cache"] == "hit"


# --- what a cached answer depends on is derived from the statements it ran ----


def _hot_reads(client: FlaskClient) -> list[tuple[str, dict[str, str]]]:
    jake, anna = register(client, username="jake"), register(client, username="anna")
    slug = create_article(client, jake, tagList=["dragons"])["slug"]
    favorite(client, anna, slug)
    follow(client, anna, "jake")
    add_comment(client, anna, slug)
    urls = [
        "/api/articles",
        "/api/articles?tag=dragons",
        "/api/articles?author=jake",
        "/api/articles?favorited=anna",
        "/api/articles?tag=nothing",
        "/api/articles?offset=50",
        f"/api/articles/{slug}",
        f"/api/articles/{slug}/comments",
        "/api/tags",
        "/api/profiles/jake",
    ]
    return [
        *((url, {}) for url in urls),
        *((url, auth(anna)) for url in urls),
        ("/api/articles/feed", auth(anna)),
        ("/api/articles/feed", auth(jake)),
    ]


def test_every_hot_read_is_kept_after_a_miss(app, client):
    reads = _hot_reads(client)
    wait_until_listening(app)
    for url, headers in reads:  # the writes' own notices are skipped: nothing to wait for
        client.get(url, headers=headers)

    missed = [
        (url, bool(headers))
        for url, headers in reads
        if client.get(url, headers=headers).headers["X-Cache"] != "hit"
    ]

    assert missed == []


def test_an_answer_that_read_a_table_its_keys_do_not_cover_is_not_kept(
    app, client, jake, monkeypatch
):
    """A service that joins a new table without declaring a key that covers it."""
    popular = tags.popular_tags

    def popular_and_follows() -> list[str]:
        db.session.execute(select(Follow.follower_id).limit(1)).all()
        return popular()

    monkeypatch.setattr(tags, "popular_tags", popular_and_follows)
    wait_until_listening(app)
    client.get("/api/tags")

    assert client.get("/api/tags").headers["X-Cache"] == "miss"


# --- single flight: concurrent misses of one key in one process fill it once ----

READERS = 4  # a gunicorn worker's threads


class _HeldFill:
    """``tags.popular_tags``, counted; the first call (the leader's fill) reads, then
    holds until :attr:`release` is set, then returns what it read or raises ``fail``."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.popular = tags.popular_tags
        self.fail = fail
        self.calls = 0
        self.read = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self) -> list[str]:
        with self._lock:
            self.calls += 1
            leader = self.calls == 1
        answer = self.popular()
        if leader:
            self.read.set()
            assert self.release.wait(DEADLINE_SECONDS)
            if self.fail is not None:
                raise self.fail
        return answer


class _Readers:
    """Readers of one URL on threads of their own, each with its own client."""

    def __init__(self, app: Flask, url: str) -> None:
        self.app, self.url = app, url
        self.answers: dict[int, tuple[int, bytes, str] | BaseException] = {}
        self.threads: list[threading.Thread] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            number = len(self.threads)
            thread = threading.Thread(target=self._read, args=(number,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _read(self, number: int) -> None:
        try:
            response = self.app.test_client().get(self.url)
            self.answers[number] = (
                response.status_code,
                response.get_data(),
                response.headers.get("X-Cache", ""),
            )
        except BaseException as error:  # the leader's failure, kept for the test to see
            self.answers[number] = error

    def finish(self) -> None:
        for thread in self.threads:
            thread.join(DEADLINE_SECONDS)
        assert not any(thread.is_alive() for thread in self.threads), "a reader is still waiting"


def _count_followers(app: Flask, monkeypatch) -> threading.Semaphore:
    """Released once for each miss that joins a fill already under way."""
    flights = app.extensions["response_cache"].flights
    join = flights.join
    followers = threading.Semaphore(0)

    def counted(key: response_cache.Key) -> tuple[threading.Event, bool]:
        flight, leading = join(key)
        if not leading:
            followers.release()
        return flight, leading

    monkeypatch.setattr(flights, "join", counted)
    return followers


@pytest.fixture
def held_fill(app, monkeypatch) -> Callable[..., tuple[_HeldFill, _Readers]]:
    """``held_fill(fail=None)``: the leader of ``/api/tags`` reading, held; the other
    readers waiting on its fill. The followers' wait is unbounded here, so only
    the leader's landing can wake them (a test stalls to its deadline otherwise)."""
    wait_until_listening(app)
    monkeypatch.setattr(response_cache, "FILL_WAIT_SECONDS", None)
    followers = _count_followers(app, monkeypatch)

    def start(fail: BaseException | None = None) -> tuple[_HeldFill, _Readers]:
        fill = _HeldFill(fail)
        monkeypatch.setattr(tags, "popular_tags", fill)
        readers = _Readers(app, "/api/tags")
        readers.start(1)
        assert fill.read.wait(DEADLINE_SECONDS)
        readers.start(READERS - 1)
        for _ in range(READERS - 1):
            assert followers.acquire(timeout=DEADLINE_SECONDS)
        return fill, readers

    return start


def test_concurrent_misses_of_one_key_compute_it_once(app, client, jake, held_fill):
    create_article(client, jake, tagList=["dragons"])
    fill, readers = held_fill()

    fill.release.set()
    readers.finish()

    answers = [readers.answers[number] for number in range(READERS)]
    assert fill.calls == 1
    assert [state for _, _, state in answers] == ["miss"] + ["hit"] * (READERS - 1)
    assert {(status, body) for status, body, _ in answers} == {answers[0][:2]}
    assert answers[0][0] == 200


class _Escaping(BaseException):
    """What no error handler turns into a response (Flask handles ``Exception``):
    ``after_request`` does not run, ``teardown_request`` does."""


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("a bug"), ServiceUnavailable(), _Escaping()],
    ids=["answers 500", "answers 503", "escapes Flask"],
)
def test_a_leader_that_fails_wakes_its_followers_who_compute(app, client, jake, held_fill, failure):
    create_article(client, jake, tagList=["dragons"])
    fill, readers = held_fill(fail=failure)

    fill.release.set()
    readers.finish()

    followers = [readers.answers[number] for number in range(1, READERS)]
    # The first follower awake computes; one awake after it stored may hit.
    assert fill.calls > 1
    assert all(answer[0] == 200 and b"dragons" in answer[1] for answer in followers)
    assert len(app.extensions["response_cache"].flights) == 0


def test_a_fill_a_write_voided_is_not_served_to_its_followers(app, client, jake, held_fill):
    create_article(client, jake, tagList=["dragons"])
    fill, readers = held_fill()

    create_article(client, jake, tagList=["unicorns"])  # after the leader read the tags
    fill.release.set()
    readers.finish()

    leader, *followers = (readers.answers[number] for number in range(READERS))
    assert b"unicorns" not in leader[1]  # read before the write: answered, not stored
    assert fill.calls > 1
    assert all(b"unicorns" in body for _, body, _ in followers)


def test_a_landed_flight_is_forgotten_and_wakes_its_followers():
    flights: single_flight.Flights[str] = single_flight.Flights()
    flight, leading = flights.join("tags")
    followed, following = flights.join("tags")

    flights.land("tags", flight)

    assert (leading, following, followed is flight) == (True, False, True)
    assert flight.is_set()
    assert len(flights) == 0
    assert flights.join("tags")[1] is True  # the next miss leads a new fill
