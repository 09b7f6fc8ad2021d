"""Attacks on the statements compiled once (tags, follows, the totals' deltas) and the 1 s fold.

``INSERT … ON CONFLICT DO NOTHING`` for new tags and follows, and the running
totals' deltas, now run one prebuilt statement with the rows as executemany
parameters (app/data/upserts.py, app/data/counters.py); folds run at most once
a second. Whatever the rows (duplicates, case and Unicode variants, fifty
tags), however many writers race, and whether the deltas are folded yet, every
answer must equal a fresh count of the rows, cached answers must equal
uncached ones, and nothing compiled once is compiled again.
"""

from __future__ import annotations

import collections
import itertools
import random
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from app import close_app
from app.data import counters
from app.data.upserts import insert_ignoring_conflicts
from app.extensions import db
from app.models import CounterDelta, Tag
from tests.apps import app_with_tables, make_app, writer_reader_uncached
from tests.databases import compiled_anew
from tests.factories import auth, create_article, register
from tests.listening import wait_for, wait_until_listening
from tests.serving import HttpClient, ServedApp, storm


def fullwidth(text: str) -> str:
    """``text`` in fullwidth letters and digits (NFKC reads them as ``text``)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


# Five spellings of each of ten tags: the tag, its upper-case twin (a tag of its
# own: tags are case-sensitive), the tag again, in fullwidth letters, and with a
# zero-width space and stray spaces (those three are the tag itself).
TEN = [f"t{n}" for n in range(9)] + ["café"]
FIFTY = [
    spelling
    for name in TEN
    for spelling in (
        name,
        name.upper(),
        name,
        fullwidth(name),
        f"  {name}\u200b ",
    )
]
FIFTY[-4:] = [
    "CAFÉ",
    "cafe\u0301",
    fullwidth("caf") + "é",
    " café\u200b ",
]  # NFC and NFD alike: one tag
CANONICAL = sorted({*TEN, *(name.upper() for name in TEN)})


def rows_counted(app: Flask) -> dict[str, Any]:
    """A fresh count of the rows: articles, and each tag's articles (tags on none left out)."""
    with app.app_context():
        articles = db.session.scalar(text("SELECT count(*) FROM articles"))
        per_tag = dict(
            db.session.execute(
                text(
                    "SELECT tags.name, count(*) FROM tags "
                    "JOIN article_tags ON article_tags.tag_id = tags.id GROUP BY tags.name"
                )
            ).all()
        )
        db.session.rollback()
    return {"articles": articles, "tags": per_tag}


def answered(client: FlaskClient, tag_names: list[str]) -> dict[str, Any]:
    """What the API answers for the same: the list's total, and each tag's filtered total."""

    def body(url: str, **params: Any) -> Any:
        response = client.get(url, query_string=params)
        assert response.status_code == 200, url
        return response.get_json()

    per_tag = {
        name: body("/api/articles", tag=name, limit=1)["articlesCount"] for name in tag_names
    }
    return {
        "articles": body("/api/articles", limit=1)["articlesCount"],
        "tags": {name: count for name, count in per_tag.items() if count},
    }


def popular_order(counted: dict[str, int]) -> list[str]:
    """``/api/tags``: every tag on an article, the most used first, then by code point."""
    return sorted(counted, key=lambda name: (-counted[name], name))


def pending(app: Flask) -> int:
    with app.app_context():
        found = counters.pending_deltas()
        db.session.rollback()
    return found


def stored_equal_counted(app: Flask) -> bool:
    """The stored totals alone (what the previous release reads) equal a fresh count."""
    counted = rows_counted(app)
    with app.app_context():
        stored_tags = {
            name: count
            for name, count in db.session.execute(select(Tag.name, Tag.article_count)).all()
            if count
        }
        stored_articles = db.session.scalar(text("SELECT value FROM counters")) or 0
        db.session.rollback()
    return stored_tags == counted["tags"] and stored_articles == counted["articles"]


# --- fifty tags, duplicates and variants, with the deltas pending ------------


@pytest.fixture
def app_folding_late(database_url: str) -> Iterator[Flask]:
    """Folds at most once an hour: after the first write, every delta stays pending."""
    with app_with_tables(database_url, COUNTERS_FOLD_INTERVAL="3600") as app:
        yield app


def test_fifty_spellings_of_twenty_tags_are_stored_and_counted_once_each(app_folding_late):
    client = app_folding_late.test_client()
    writer = register(client)

    article = create_article(client, writer, tagList=FIFTY)

    assert article["tagList"] == CANONICAL
    with app_folding_late.app_context():
        names = db.session.scalars(select(Tag.name)).all()
    assert sorted(names) == CANONICAL
    assert client.get("/api/tags").get_json() == {"tags": CANONICAL}
    assert answered(client, CANONICAL) == rows_counted(app_folding_late)


def test_totals_read_exactly_while_every_delta_waits_for_a_fold(app_folding_late):
    app = app_folding_late
    client = app.test_client()
    writer, other = register(client), register(client)
    first = create_article(client, writer, tagList=FIFTY)  # folds at once: the first fold
    second = create_article(
        client, other, tagList=[*CANONICAL[:5], "u0", "u1", "U0", fullwidth("u1")]
    )
    client.put(
        f"/api/articles/{first['slug']}",
        json={"article": {"tagList": ["u1", "v0", "t0", "v0", fullwidth("v0")]}},
        headers=auth(writer),
    )
    create_article(client, writer, tagList=["v0", "w0"])
    client.delete(f"/api/articles/{second['slug']}", headers=auth(other))

    assert pending(app) > 0
    counted = rows_counted(app)
    every_name = [*CANONICAL, "u0", "u1", "U0", "v0", "w0"]
    assert answered(client, every_name) == counted
    assert client.get("/api/tags").get_json()["tags"] == popular_order(counted["tags"])
    with app.app_context():
        assert counters.drift() == []
    assert not stored_equal_counted(app)  # the stored values alone are behind: truly pending


def test_closing_the_app_folds_every_pending_delta_into_the_stored_totals(database_url):
    with app_with_tables(database_url, COUNTERS_FOLD_INTERVAL="1s") as app:
        client = app.test_client()
        writer = register(client)
        for tags in (FIFTY, ["a", "b"], ["b", "c", "B"], FIFTY[:7]):
            create_article(client, writer, tagList=tags)
        assert pending(app) > 0
    reopened = make_app(database_url)
    try:
        assert pending(reopened) == 0
        assert stored_equal_counted(reopened)
    finally:
        close_app(reopened)


def test_a_failed_fold_loses_no_delta_and_the_next_fold_takes_them(app_folding_late, monkeypatch):
    app = app_folding_late
    client = app.test_client()
    writer = register(client)
    original = counters._add_to_stored

    def failing(*args: Any) -> None:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("UPDATE tags", {}, Exception("server closed the connection"))

    monkeypatch.setattr(counters, "_add_to_stored", failing)
    create_article(client, writer, tagList=FIFTY)  # its fold fails
    create_article(client, writer, tagList=["t0", "x"])

    assert answered(client, [*CANONICAL, "x"]) == rows_counted(app)
    monkeypatch.setattr(counters, "_add_to_stored", original)
    with app.app_context():
        assert counters.fold() is True
        db.session.remove()
    assert pending(app) == 0
    assert stored_equal_counted(app)
    assert answered(client, [*CANONICAL, "x"]) == rows_counted(app)


# --- the executemany statements themselves ----------------------------------


def test_returning_gives_the_ids_of_the_rows_inserted_only_across_batches(app):
    """Over a thousand rows (several insertmanyvalues batches), with conflicts and duplicates."""
    with app.app_context():
        insert_ignoring_conflicts(Tag, [{"name": f"old{n}"} for n in range(0, 2500, 7)])
        db.session.commit()
        rows = [{"name": f"old{n}"} for n in range(2500)] + [{"name": "old3"}, {"name": "new"}]

        inserted = insert_ignoring_conflicts(Tag, rows, returning=Tag.id)

        names = dict(db.session.execute(select(Tag.id, Tag.name)).all())
        assert len(inserted) == len(set(inserted)) == 2500 - len(range(0, 2500, 7)) + 1
        assert {names[id_] for id_ in inserted} == {f"old{n}" for n in range(2500) if n % 7} | {
            "new"
        }
        assert len(names) == 2501
        db.session.rollback()


def test_recorded_deltas_of_many_tags_and_the_articles_total_are_all_kept(app):
    with app.app_context():
        ids = insert_ignoring_conflicts(Tag, [{"name": f"d{n}"} for n in range(60)], Tag.id)
        assert counters.adjust({tag_id: n % 3 - 1 for n, tag_id in enumerate(ids)}, 5)
        db.session.commit()
        kept = dict(
            db.session.execute(
                select(
                    func.coalesce(CounterDelta.tag_id, 0), func.sum(CounterDelta.delta)
                ).group_by(CounterDelta.tag_id)
            ).all()
        )
        db.session.rollback()
    expected = {tag_id: n % 3 - 1 for n, tag_id in enumerate(ids) if n % 3 != 1}
    assert kept == {**expected, 0: 5}


# --- follows ----------------------------------------------------------------


def test_following_twice_and_unfollowing_twice_keep_flag_and_feed_right(client):
    author, reader = register(client), register(client)
    article = create_article(client, author, tagList=["x"])
    follow_url = f"/api/profiles/{author['username']}/follow"

    answers = [client.post(follow_url, headers=auth(reader)) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.get_json()["profile"]["following"] for a in answers)
    profile = client.get(f"/api/profiles/{author['username']}", headers=auth(reader)).get_json()
    assert profile["profile"]["following"] is True
    feed = client.get("/api/articles/feed", headers=auth(reader)).get_json()
    assert [a["slug"] for a in feed["articles"]] == [article["slug"]]
    assert feed["articlesCount"] == 1

    answers = [client.delete(follow_url, headers=auth(reader)) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    profile = client.get(f"/api/profiles/{author['username']}", headers=auth(reader)).get_json()
    assert profile["profile"]["following"] is False
    assert client.get("/api/articles/feed", headers=auth(reader)).get_json() == {
        "articles": [],
        "articlesCount": 0,
    }


def test_a_new_tag_held_by_another_transaction_times_out_the_batch_cleanly(postgres_url):
    """PostgreSQL: the rows' statements run in one pipeline; one waiting past the lock
    timeout fails the request (503) and leaves the connection fit for the next one."""
    import psycopg

    with app_with_tables(postgres_url, DATABASE_LOCK_TIMEOUT="300ms") as app:
        client = app.test_client()
        author = register(client)
        create_article(client, author, tagList=["known"])
        article = {"title": "t", "description": "d", "body": "b"}
        tags = ["aaa", "held", "known", "zzz"]
        with psycopg.connect(postgres_url.replace("+psycopg", "")) as other:
            other.execute("INSERT INTO tags (name) VALUES ('held')")  # not committed
            for _ in range(2):
                answer = client.post(
                    "/api/articles",
                    json={"article": {**article, "tagList": tags}},
                    headers=auth(author),
                )
                assert answer.status_code == 503
                assert answer.get_json() == {"errors": {"database": ["is busy, please retry"]}}
            with app.app_context():
                assert db.session.scalars(select(Tag.name)).all() == ["known"]
                db.session.rollback()
            other.rollback()

        answer = client.post(
            "/api/articles", json={"article": {**article, "tagList": tags}}, headers=auth(author)
        )
        assert answer.status_code == 201
        assert answer.get_json()["article"]["tagList"] == tags
        assert client.get("/api/tags").get_json() == {"tags": ["known", "aaa", "held", "zzz"]}
        assert answered(client, tags) == rows_counted(app)


# --- the response cache after new tags and follows -------------------------


@pytest.fixture
def cached_and_uncached(database_url: str) -> Iterator[tuple[FlaskClient, FlaskClient, Flask]]:
    with app_with_tables(database_url) as app:
        uncached = make_app(database_url, RESPONSE_CACHE=False)
        try:
            wait_until_listening(app)
            yield app.test_client(), uncached.test_client(), app
        finally:
            close_app(uncached)


def test_new_tags_and_follows_move_every_cached_answer_that_shows_them(cached_and_uncached):
    cached, uncached, _app = cached_and_uncached
    author, reader = register(cached), register(cached)
    slugs: list[str] = []
    follow_url = f"/api/profiles/{author['username']}/follow"
    tag_names = ["n0", "N1", "n4", "shared"]

    def reads() -> list[tuple[str, dict[str, str]]]:
        urls = ["/api/tags", "/api/articles", *(f"/api/articles?tag={n}" for n in tag_names)]
        urls += [f"/api/articles/{slug}" for slug in slugs[:1]]
        signed_in = ["/api/articles/feed", f"/api/profiles/{author['username']}", "/api/articles"]
        return [(url, {}) for url in urls] + [(url, auth(reader)) for url in signed_in]

    def answers(client: FlaskClient) -> list[tuple[int, bytes]]:
        return [
            (r.status_code, r.get_data())
            for r in (client.get(url, headers=headers) for url, headers in reads())
        ]

    def created(tags: list[str]) -> None:
        slugs.append(create_article(cached, author, tagList=tags)["slug"])

    def retagged(tags: list[str]) -> None:
        response = cached.put(
            f"/api/articles/{slugs[0]}", json={"article": {"tagList": tags}}, headers=auth(author)
        )
        assert response.status_code == 200

    def followed(method: str) -> None:
        assert cached.open(follow_url, method=method, headers=auth(reader)).status_code == 200

    writes = [
        partial(created, ["n0", "shared"]),  # new tags only
        partial(created, ["shared", "n1", "N1"]),  # one known, two new
        partial(followed, "POST"),
        partial(followed, "POST"),  # changes nothing
        partial(created, ["shared"]),  # known tags only: no tag inserted
        partial(retagged, ["n2", "n3", fullwidth("n4")]),  # new tags on an update
        partial(followed, "DELETE"),
        partial(followed, "DELETE"),
        partial(followed, "POST"),
        partial(retagged, []),
    ]
    for n, write in enumerate(writes):
        answers(cached)  # every answer cached
        assert cached.get("/api/tags").headers["X-Cache"] == "hit", n
        write()
        assert answers(cached) == answers(uncached), n


def test_a_reader_on_another_instance_sees_new_tags_and_follows(database_url):
    """A cached reader on another instance: the notice (or ``data_version``) reaches it."""
    with writer_reader_uncached(database_url) as (writer, reader, uncached):
        author, follower = register(writer), register(writer)
        follow_url = f"/api/profiles/{author['username']}/follow"
        reads = [
            ("/api/tags", {}),
            ("/api/articles?tag=fresh1", {}),
            (f"/api/profiles/{author['username']}", auth(follower)),
            ("/api/articles/feed", auth(follower)),
        ]

        def same() -> bool:
            return all(
                reader.get(u, headers=h).get_data() == uncached.get(u, headers=h).get_data()
                for u, h in reads
            )

        writes = [
            partial(create_article, writer, author, tagList=["fresh0", "fresh1"]),
            partial(writer.post, follow_url, headers=auth(follower)),
            partial(create_article, writer, author, tagList=["fresh1", "fresh2"]),
            partial(writer.delete, follow_url, headers=auth(follower)),
        ]
        for write in writes:
            for url, headers in reads:  # cached on the reader
                reader.get(url, headers=headers)
            write()
            wait_for(same)


# --- compiled once, with the shapes attackers pick ---------------------------


def test_fifty_new_tags_double_follows_and_retags_compile_nothing_again(app_folding_late):
    client = app_folding_late.test_client()
    author, reader = register(client), register(client)

    def round_(n: int) -> None:
        tags = [f"r{n}-{m}" for m in range(49)] + ["shared"]
        slug = create_article(client, author, tagList=tags)["slug"]
        create_article(client, author, tagList=[f"solo{n}"])
        create_article(client, author, tagList=["shared"])
        for method in ("POST", "POST", "DELETE", "DELETE"):
            url = f"/api/profiles/{author['username']}/follow"
            assert client.open(url, method=method, headers=auth(reader)).status_code == 200
        retag = [f"q{n}-{m}" for m in range(50)]
        url = f"/api/articles/{slug}"
        assert (
            client.put(url, json={"article": {"tagList": retag}}, headers=auth(author)).status_code
            == 200
        )
        assert client.delete(url, headers=auth(author)).status_code == 204

    round_(0)
    with compiled_anew(app_folding_late) as compiled:
        round_(1)
    assert compiled == []


# --- served: real threads in two processes, folds at the default 1 s -------


def _statuses(responses: list[Any]) -> collections.Counter[int]:
    return collections.Counter(response.status_code for response in responses)


def _served_answers(served: ServedApp, names: list[str]) -> dict[str, Any]:
    client = served.client()
    try:
        per_tag = {
            name: client.get("/api/articles", params={"tag": name, "limit": 1}).json()[
                "articlesCount"
            ]
            for name in names
        }
        total = client.get("/api/articles", params={"limit": 1}).json()["articlesCount"]
        tags = client.get("/api/tags").json()["tags"]
    finally:
        client.close()
    return {"articles": total, "tags": {k: v for k, v in per_tag.items() if v}, "popular": tags}


def _spell(name: str, rng: random.Random) -> str:
    """One of the spellings that canonicalise to ``name``."""
    return rng.choice([name, f" {name}\u200b", fullwidth(name), f"\ufeff{name}  "])


def test_a_storm_of_creates_retags_and_deletes_over_shared_new_tags_counts_exactly(
    served_app: ServedApp,
) -> None:
    rng = random.Random(7)  # noqa: S311 - tag choices, not secrets
    pool = [f"s{n}" for n in range(30)] + [f"S{n}" for n in range(10)]
    authors = [served_app.register(f"stormer{n}") for n in range(4)]
    clients = [served_app.client(author) for author in authors for _ in range(2)]
    titles = itertools.count()

    def tag_list() -> list[str]:
        chosen = rng.sample(pool, 20)
        return [_spell(name, rng) for name in chosen + chosen[:5]]  # 25, with duplicates

    def create(client: HttpClient) -> Any:
        article = {"title": f"Storm {next(titles)}", "description": "d", "body": "b"}
        return client.post("/api/articles", json={"article": {**article, "tagList": tag_list()}})

    created = storm([partial(create, c) for c in clients for _ in range(2)], threads=8)
    assert _statuses(created) == {201: 16}
    slugs = [(n // 2, r.json()["article"]["slug"]) for n, r in enumerate(created)]

    calls = []
    for n, (owner, slug) in enumerate(slugs):
        client = clients[owner]
        if n % 3 == 0:
            calls.append(partial(client.delete, f"/api/articles/{slug}"))
        else:
            calls.append(
                partial(
                    client.put, f"/api/articles/{slug}", json={"article": {"tagList": tag_list()}}
                )
            )
    calls += [partial(create, c) for c in clients]
    changed = storm(calls, threads=8)
    assert set(_statuses(changed)) <= {200, 201, 204}, [
        r.text for r in changed if r.status_code >= 300
    ]

    counted = rows_counted(served_app.app)
    answers = _served_answers(served_app, pool)
    assert answers["articles"] == counted["articles"] == 16 - 6 + 8
    assert answers["tags"] == counted["tags"]
    assert answers["popular"] == popular_order(counted["tags"])
    with served_app.app.app_context():
        assert counters.drift() == []
    (tags,) = served_app.sql("SELECT count(*) FROM tags")[0]
    (distinct,) = served_app.sql("SELECT count(DISTINCT name) FROM tags")[0]
    assert tags == distinct <= len(pool)
    for client in clients:
        client.close()

    served_app.server.process.terminate()  # each worker folds what it left pending (close_app)
    served_app.server.process.wait(timeout=60)
    assert pending(served_app.app) == 0
    assert stored_equal_counted(served_app.app)


def test_storms_of_follows_unfollows_and_a_deletion_leave_flag_rows_and_feed_agreeing(
    served_app: ServedApp,
) -> None:
    author = served_app.register("followed")
    readers = [served_app.register(f"follower{n}") for n in range(4)]
    writer = served_app.client(author)
    slug = create_article_served(writer, ["x"])
    writer.close()
    url = "/api/profiles/followed/follow"
    clients = {r["username"]: [served_app.client(r) for _ in range(2)] for r in readers}

    # Everyone follows twice at once, from two connections each.
    calls = [partial(c.post, url) for pair in clients.values() for c in pair for _ in range(2)]
    assert _statuses(storm(calls, threads=8)) == {200: 16}
    for client, _ in clients.values():
        assert client.get("/api/profiles/followed").json()["profile"]["following"] is True
        assert [a["slug"] for a in client.get("/api/articles/feed").json()["articles"]] == [slug]
    assert served_app.sql("SELECT count(*) FROM follows")[0][0] == 4

    # Half unfollow twice while the other half follow again.
    names = list(clients)
    calls = [partial(c.delete, url) for name in names[:2] for c in clients[name] for _ in range(2)]
    calls += [partial(c.post, url) for name in names[2:] for c in clients[name] for _ in range(2)]
    assert _statuses(storm(calls, threads=8)) == {200: 16}
    for n, name in enumerate(names):
        client = clients[name][0]
        following = client.get("/api/profiles/followed").json()["profile"]["following"]
        feed = client.get("/api/articles/feed").json()
        assert following is (n >= 2)
        assert feed["articlesCount"] == (1 if n >= 2 else 0) == len(feed["articles"])

    # The followed user goes (an operator's delete) while eight more follows are in flight.
    def delete_user() -> None:
        with served_app.app.app_context():
            db.session.execute(text("DELETE FROM users WHERE username = 'followed'"))
            db.session.commit()
            db.session.remove()

    every = [c for pair in clients.values() for c in pair]
    calls = [partial(c.post, url) for c in every[:4]] + [delete_user]
    calls += [partial(c.post, url) for c in every[4:]]
    answers = [a for a in storm(calls, threads=9) if a is not None]
    assert set(_statuses(answers)) <= {200, 404}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 404:
            assert answer.json() == {"errors": {"profile": ["not found"]}}
    assert served_app.sql("SELECT count(*) FROM follows")[0][0] == 0
    assert every[0].get("/api/profiles/followed").status_code == 404
    assert every[0].get("/api/articles/feed").json() == {"articles": [], "articlesCount": 0}
    for c in every:
        c.close()


def create_article_served(client: HttpClient, tags: list[str]) -> str:
    response = client.post(
        "/api/articles",
        json={"article": {"title": "Followed", "description": "d", "body": "b", "tagList": tags}},
    )
    assert response.status_code == 201, response.text
    return response.json()["article"]["slug"]


def test_a_fold_compiles_nothing_again_whatever_the_number_of_tags_it_folds(app_folding_late):
    """At one fold a second, a fold takes every tag written in that second: many shapes."""
    app = app_folding_late
    with app.app_context():
        ids = insert_ignoring_conflicts(Tag, [{"name": f"f{n}"} for n in range(12)], Tag.id)
        db.session.commit()
        counters.adjust({tag_id: 1 for tag_id in ids[:2]}, 1)
        db.session.commit()
        counters.fold()  # every statement of a fold seen once
        with compiled_anew(app) as compiled:
            for k in (3, 7, 12):
                counters.adjust({tag_id: 1 for tag_id in ids[:k]}, 1)
                db.session.commit()
                counters.fold()
        db.session.remove()
    assert compiled == []
