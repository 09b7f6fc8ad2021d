"""Attacks on creations that answer from what they wrote (no read back) and, on PostgreSQL,
insert the article, link its known tags and record the totals' deltas in one statement.

Whatever the title (its slug taken, reserved, or made of no letters) and the tags (case,
Unicode and width variants, duplicates, whitespace, fifty of them, some known, some new),
the creation's answer must be byte for byte what ``GET`` then answers its author; a
creation whose author goes as it runs must answer 404 and write nothing; concurrent
creations, retags and deletes through the served app must leave every running total equal
to its rows, with no 500; and cached lists must show the new article at once.
"""

from __future__ import annotations

import collections
import itertools
import random
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from app.articles import service as articles_service
from app.data import counters
from app.extensions import db
from app.models import TAG_MAX_LENGTH
from app.profiles import service as profiles_service
from tests import databases
from tests.apps import (
    app_with_tables,
    instances_with_late_notices,
    served_on,
    writer_reader_uncached,
)
from tests.factories import auth, create_article, register
from tests.listening import wait_for
from tests.serving import HttpClient, ServedApp, storm


def fullwidth(text_: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text_)


def created_and_read(client: FlaskClient, author: dict[str, Any], **fields: Any) -> tuple[Any, Any]:
    article = {"title": "T", "description": "d", "body": "b", **fields}
    created = client.post("/api/articles", json={"article": article}, headers=auth(author))
    assert created.status_code == 201, created.get_json()
    slug = created.get_json()["article"]["slug"]
    read = client.get(f"/api/articles/{slug}", headers=auth(author))
    assert read.status_code == 200
    return created, read


def post_article(client: HttpClient, title: str, tags: list[str]) -> Any:
    """``POST /api/articles`` through a served app's client; its response, whatever it is."""
    article = {"title": title, "description": "d", "body": "b", "tagList": tags}
    return client.post("/api/articles", json={"article": article})


def change_profile(client: FlaskClient, user: dict[str, Any], **fields: str) -> None:
    changed = client.put("/api/user", json={"user": fields}, headers=auth(user))
    assert changed.status_code == 200, changed.get_json()


# --- the answer is the article's GET answer, byte for byte --------------------

KNOWN = ["known", "Known", "café", "日本"]

TAG_LISTS = {
    "all known (one statement links every tag)": ["known", "café", "日本", "Known"],
    "known and new mixed, in every spelling": [
        "known",
        "KNOWN",
        fullwidth("known"),
        " known\u200b ",
        "cafe\u0301",
        "CAFÉ",
        "new-b",
        "new-a",
        "\ufeffnew-a  ",
        "Zz",
        "zz",
        "ä",
        "a\u0308",
        "é",
        "\U0001f600",
        "a  b\t c",
    ],
    "fifty, half known, with duplicates": [f"k{n}" for n in range(10)]
    + [f"fresh{n}" for n in range(30)]
    + [f"K{n}" for n in range(5)]
    + [fullwidth(f"k{n}") for n in range(5)],
    "only names that canonicalise to nothing and one real tag": ["\U000e0001", "x", "\U000e0020"],
    "a tag at the length limit": ["t" * TAG_MAX_LENGTH, "known"],
    "code point order differs from collation order": ["b", "B", "a", "A", "_", "-", "1", "É", "e"],
}


@pytest.mark.parametrize("tags", list(TAG_LISTS.values()), ids=list(TAG_LISTS))
def test_the_creation_answers_its_get_whatever_the_tags(client, tags):
    author = register(client)
    create_article(client, author, tagList=KNOWN + [f"k{n}" for n in range(10)])
    created, read = created_and_read(client, author, title="Tagged", tagList=tags)

    assert created.get_data() == read.get_data()


def test_the_creation_answers_its_get_whatever_the_databases_collation(collating_client):
    """Code point order in the answer, as ``GET`` reads it, on an ICU-collated database too."""
    client = collating_client
    author = register(client)
    create_article(client, author, tagList=["b", "Ä", "known"])
    tags = ["b", "B", "a", "A", "_", "-", "1", "É", "e", "Ä", "a\u0308", "ß", "ss", "\u00bd"]
    created, read = created_and_read(client, author, title="Collated", tagList=tags)

    assert created.get_data() == read.get_data()
    tags_read = created.get_json()["article"]["tagList"]
    assert tags_read == sorted(tags_read)


TITLES = {
    "its slug taken": ["Same title", "Same title", "Same title"],
    "reserved": ["Feed", "feed", "FEED!"],
    "no letters": ["!!!", "???", "---"],
    "giving the slug of a suffixed one": ["Twice", "Twice", "Twice 2", "Twice-2"],
    "long, cut at a word": ["word " * 50, "word " * 50],
}


@pytest.mark.parametrize("titles", list(TITLES.values()), ids=list(TITLES))
def test_the_creation_answers_its_get_whatever_the_title(client, titles):
    author = register(client)
    create_article(client, author, tagList=["known"])
    slugs = []
    for title in titles:
        created, read = created_and_read(client, author, title=title, tagList=["known", "new"])
        assert created.get_data() == read.get_data(), title
        slugs.append(created.get_json()["article"]["slug"])
    assert len(set(slugs)) == len(slugs)


def test_the_creation_answers_its_get_for_an_author_with_bio_and_image_just_changed(client):
    author = register(client)
    change_profile(client, author, bio="new bio \u00e9", image="https://example.com/a.png")
    created, read = created_and_read(client, author, title="After the change", tagList=["t"])

    assert created.get_json()["article"]["author"]["bio"] == "new bio \u00e9"
    assert created.get_data() == read.get_data()


def test_the_creation_answers_its_get_with_text_the_database_keeps_as_sent(client):
    author = register(client)
    fields = {
        "title": "  Spaces\u00a0and\ttabs  ",
        "description": "line\r\nbreak \U0001f600 e\u0301",
        "body": "\u202eright to left\u202c and \ufeff BOM",
        "tagList": ["t"],
    }
    created, read = created_and_read(client, author, **fields)

    assert created.get_data() == read.get_data()


def test_a_creation_records_each_total_once_whichever_path_it_took(client, app):
    """One statement (slug free, tags known), the slug taken, new tags, or both: exact totals."""
    author = register(client)
    create_article(client, author, title="Base", tagList=["a", "b"])
    create_article(client, author, title="Base", tagList=["a", "b"])  # slug taken, known
    create_article(client, author, title="Other", tagList=["a", "c", "d"])  # free, some new
    create_article(client, author, title="Base", tagList=["e", "a"])  # taken, some new
    create_article(client, author, title="Feed", tagList=[])  # reserved, none
    create_article(client, author, title="Plain")  # free, none
    with app.app_context():
        assert counters.drift() == []
    assert dict(_popular(client)) == {"a": 4, "b": 2, "c": 1, "d": 1, "e": 1}
    assert client.get("/api/articles?limit=1").get_json()["articlesCount"] == 6


def _popular(client: FlaskClient) -> list[tuple[str, int]]:
    names = client.get("/api/tags").get_json()["tags"]
    return [
        (name, client.get("/api/articles", query_string={"tag": name}).get_json()["articlesCount"])
        for name in names
    ]


# --- the author goes as the creation runs (PostgreSQL: SQLite has one writer) --


@pytest.mark.parametrize(
    "title, tags",
    [
        ("Fresh", ["known"]),  # one statement
        ("Fresh", ["known", "brand-new"]),  # one statement, then a new tag
        ("Taken", ["known", "brand-new"]),  # the slug taken: the older path
        ("Feed", []),  # reserved: the older path
    ],
    ids=["one statement", "one statement and a new tag", "slug taken", "reserved"],
)
def test_a_creation_whose_author_is_deleted_as_it_runs_answers_404_and_writes_nothing(
    postgres_url, monkeypatch, title, tags
):
    with app_with_tables(postgres_url) as app:
        client = app.test_client()
        author = register(client)
        other = register(client)
        create_article(client, other, title="Taken", tagList=["known"])
        found = articles_service.first_choice

        def author_deleted_first(title_: str) -> Any:
            with db.engine.begin() as connection:
                connection.execute(
                    text("DELETE FROM users WHERE username = :u"), {"u": author["username"]}
                )
            return found(title_)

        monkeypatch.setattr(articles_service, "first_choice", author_deleted_first)
        before = _counts(app)
        answer = client.post(
            "/api/articles",
            json={"article": {"title": title, "description": "d", "body": "b", "tagList": tags}},
            headers=auth(author),
        )

        assert answer.status_code == 404, answer.get_json()
        assert answer.get_json() == {"errors": {"profile": ["not found"]}}
        assert _counts(app) == before
        with app.app_context():
            assert counters.drift() == []


def test_a_creation_waiting_on_its_authors_uncommitted_deletion_answers_404(postgres_url):
    """The deletion holds the user's row; the insert's foreign key check waits, then fails."""
    with app_with_tables(postgres_url) as app:
        client = app.test_client()
        author, other = register(client), register(client)
        create_article(client, other, tagList=["known"])  # the tags known
        assert client.get("/api/user", headers=auth(author)).status_code == 200  # remembered
        before = _counts(app)
        engine = create_engine(postgres_url)
        try:
            with engine.connect() as deleting:
                deleting.execute(
                    text("DELETE FROM users WHERE username = :u"), {"u": author["username"]}
                )
                answers: list[Any] = []
                creating = threading.Thread(
                    target=lambda: answers.append(
                        app.test_client().post(
                            "/api/articles",
                            json={
                                "article": {
                                    "title": "Waiting",
                                    "description": "d",
                                    "body": "b",
                                    "tagList": ["known", "new-one"],
                                }
                            },
                            headers=auth(author),
                        )
                    )
                )
                creating.start()
                creating.join(1.0)
                deleting.commit()
                creating.join(30)
        finally:
            engine.dispose()
        (answer,) = answers
        assert answer.status_code == 404, answer.get_json()
        assert _counts(app) == before
        with app.app_context():
            assert counters.drift() == []


def _counts(app: Any) -> dict[str, int]:
    with app.app_context():
        found = {
            table: db.session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            for table in ("articles", "article_tags", "tags", "counter_deltas", "counters")
        }
        db.session.rollback()
    return found


# --- concurrent creations, retags and deletes through the served app ----------


def _spell(name: str, rng: random.Random) -> str:
    return rng.choice([name, f" {name}\u200b", fullwidth(name), f"\ufeff{name}  "])


@pytest.fixture(params=databases.PARAMS)
def served_folding_every_write(
    request: pytest.FixtureRequest, tmp_path: Any, worker_id: str
) -> Iterator[ServedApp]:
    """The served app folding after every write: folds race the creations' own deltas."""
    with served_on(
        request.param, tmp_path, f"served_{worker_id}", COUNTERS_FOLD_INTERVAL="0"
    ) as served:
        yield served


def test_a_storm_of_same_titled_creations_over_known_and_new_tags_counts_exactly(
    served_app: ServedApp,
) -> None:
    """Same titles (slugs taken as they race), tags half known, half new to all of them at once,
    with retags and deletes of older articles: no 500, unique slugs, every creation's answer its
    later GET, and every total equal to its rows."""
    _storm_of_creations(served_app)


def test_the_same_storm_with_a_fold_after_every_write_counts_exactly(
    served_folding_every_write: ServedApp,
) -> None:
    _storm_of_creations(served_folding_every_write)


def _storm_of_creations(served_app: ServedApp) -> None:
    rng = random.Random(11)  # noqa: S311 - tag choices, not secrets
    known = [f"k{n}" for n in range(12)]
    fresh = [f"f{n}" for n in range(12)] + [f"F{n}" for n in range(4)]
    authors = [served_app.register(f"racer{n}") for n in range(4)]
    clients = [served_app.client(author) for author in authors for _ in range(2)]
    seeding = clients[0]
    old = []
    for n in range(8):
        response = seeding.post(
            "/api/articles",
            json={
                "article": {
                    "title": f"Old {n}",
                    "description": "d",
                    "body": "b",
                    "tagList": known[n : n + 4],
                }
            },
        )
        assert response.status_code == 201, response.text
        old.append(response.json()["article"]["slug"])
    titles = itertools.cycle(["Same", "Same", "Feed", "!!!", "Old 1", "Unique"])
    serial = itertools.count()

    def tags() -> list[str]:
        chosen = rng.sample(known, 4) + rng.sample(fresh, 4)
        return [_spell(name, rng) for name in chosen + chosen[:3]]

    def create(client: HttpClient) -> Any:
        title = next(titles)
        if title == "Unique":
            title = f"Unique {next(serial)}"
        return client.post(
            "/api/articles",
            json={"article": {"title": title, "description": "d", "body": "b", "tagList": tags()}},
        )

    calls: list[Any] = [partial(create, c) for c in clients for _ in range(3)]
    for n, slug in enumerate(old):
        if n % 2:
            calls.append(partial(seeding.delete, f"/api/articles/{slug}"))
        else:
            calls.append(
                partial(seeding.put, f"/api/articles/{slug}", json={"article": {"tagList": tags()}})
            )
    rng.shuffle(calls)
    answers = storm(calls, threads=8)
    statuses = collections.Counter(a.status_code for a in answers)
    assert set(statuses) <= {200, 201, 204}, [a.text for a in answers if a.status_code >= 300]
    assert statuses[201] == 24

    creations = [a for a in answers if a.status_code == 201]
    slugs = [a.json()["article"]["slug"] for a in creations]
    assert len(set(slugs)) == len(slugs)
    assert not {"feed", *old[::2]} & set(slugs)  # the odd ones were deleted meanwhile
    by_author = {a["username"]: served_app.client(a) for a in authors}
    for answer in creations:
        article = answer.json()["article"]
        reader = by_author[article["author"]["username"]]
        read = reader.get(f"/api/articles/{article['slug']}")
        assert read.content == answer.content, article["slug"]

    with served_app.app.app_context():
        assert counters.drift() == []
    (tags_, distinct) = served_app.sql("SELECT count(*), count(DISTINCT name) FROM tags")[0]
    assert tags_ == distinct
    for c in [*clients, *by_author.values()]:
        c.close()


# --- cached lists show the new article as soon as its creation answers --------


def test_cached_lists_show_each_creation_at_once_here_and_soon_on_another_instance(database_url):
    """Every path a creation takes (one statement; slug taken; reserved; new tags): the writer's
    cached lists equal fresh ones as soon as it answers, another instance's once it hears."""
    with writer_reader_uncached(database_url) as (writer, reader, uncached):
        author, viewer = register(writer), register(writer)
        create_article(writer, author, title="Base", tagList=["known", "Known"])
        follow_url = f"/api/profiles/{author['username']}/follow"
        assert writer.post(follow_url, headers=auth(viewer)).status_code == 200
        urls = [
            ("/api/articles/feed", auth(viewer)),
            ("/api/tags", {}),
            ("/api/articles", {}),
            ("/api/articles?tag=known", {}),
            ("/api/articles?tag=Known", {}),
            ("/api/articles?tag=new1", {}),
            ("/api/articles?tag=new2", {}),
            (f"/api/articles?author={author['username']}", {}),
            ("/api/articles", auth(viewer)),
            ("/api/articles?tag=known", auth(author)),
        ]

        def answers(client: FlaskClient) -> list[tuple[int, bytes]]:
            return [
                (r.status_code, r.get_data()) for r in (client.get(u, headers=h) for u, h in urls)
            ]

        writes = [
            ("Fresh", ["known"]),  # one statement, every tag known
            ("Base", ["Known"]),  # the slug taken
            ("Feed", ["known", "new1"]),  # reserved, a new tag
            ("Fresh two", [fullwidth("known"), "new2", "NEW2"]),  # one statement, new tags
        ]
        for title, tags in writes:
            answers(writer)
            answers(reader)
            assert writer.get("/api/tags").headers["X-Cache"] == "hit"
            create_article(writer, author, title=title, tagList=tags)
            assert answers(writer) == answers(uncached), title
            wait_for(lambda: answers(reader) == answers(uncached))


def create_in_flight(client: FlaskClient, author: dict[str, Any]) -> tuple[Any, str]:
    created = client.post(
        "/api/articles",
        json={"article": {"title": "In flight", "description": "d", "body": "b"}},
        headers=auth(author),
    )
    return created, f"/api/articles/{created.get_json()['article']['slug']}"


def comment_in_flight(client: FlaskClient, author: dict[str, Any]) -> tuple[Any, str]:
    slug = create_article(client, author)["slug"]
    commented = client.post(
        f"/api/articles/{slug}/comments",
        json={"comment": {"body": "In flight"}},
        headers=auth(author),
    )
    return commented, f"/api/articles/{slug}/comments"


@pytest.mark.parametrize("write", [create_in_flight, comment_in_flight], ids=["create", "comment"])
def test_a_write_answers_its_author_as_stored_while_a_profile_change_is_in_flight(
    postgres_url, write
):
    """The author changed their profile on another instance, whose notice has not reached this
    one yet (the listener is slow): the token's user is the remembered row, but the ``GET``
    that follows (never cached yet) reads the stored one, and so must the write's answer.

    Reading the article back gave the stored profile; an answer built from the request's
    ``current_user`` gives the remembered one until the notice arrives."""
    with instances_with_late_notices(postgres_url) as apps:
        author = register(apps.here)
        assert apps.here.get("/api/user", headers=auth(author)).status_code == 200  # remembered

        apps.notices.hold()  # the notices reach this instance late
        changed = apps.there.put(
            "/api/user", json={"user": {"bio": "changed there"}}, headers=auth(author)
        )
        assert changed.status_code == 200
        written, url = write(apps.here, author)
        read = apps.uncached.get(url, headers=auth(author))

        answered, stored = written.get_json(), read.get_json()
        if "comment" in answered:
            answered, stored = answered["comment"], stored["comments"][0]
        else:
            answered, stored = answered["article"], stored["article"]
        assert stored["author"]["bio"] == "changed there"
        assert answered == stored


# --- follow and unfollow of a user deleted as they run (PostgreSQL) ------------


def two_users_and_the_follow_url(client: FlaskClient, method: str) -> tuple[Any, Any, str]:
    """The followed user, the follower and the follow URL; before an unfollow, followed."""
    followed, follower = register(client), register(client)
    url = f"/api/profiles/{followed['username']}/follow"
    if method == "DELETE":
        assert client.post(url, headers=auth(follower)).status_code == 200
    return followed, follower, url


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_following_or_unfollowing_a_user_deleted_just_before_the_write_never_answers_500(
    postgres_url, monkeypatch, method
):
    with app_with_tables(postgres_url) as app:
        client = app.test_client()
        _, follower, url = two_users_and_the_follow_url(client, method)
        found = profiles_service.get_user

        def vanishing(username: str) -> Any:
            user = found(username)
            with db.engine.begin() as other:
                other.execute(text("DELETE FROM users WHERE id = :id"), {"id": user.id})
            return user

        monkeypatch.setattr(profiles_service, "get_user", vanishing)
        answer = client.open(url, method=method, headers=auth(follower))

        if method == "POST":  # the foreign key fails
            assert answer.status_code == 404
            assert answer.get_json() == {"errors": {"profile": ["not found"]}}
        else:  # nothing left to delete: the write succeeded, and says so
            assert answer.status_code == 200, answer.get_json()
            assert answer.get_json()["profile"]["following"] is False
        with app.app_context():
            assert db.session.scalar(text("SELECT count(*) FROM follows")) == 0


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_follow_or_unfollow_written_before_the_user_is_deleted_answers_200(
    postgres_url, monkeypatch, method
):
    """The deletion waits for the write's commit (the follow row's key share lock, or the
    follows row the unfollow deleted): the answer, taken before the commit, is the write's."""
    with app_with_tables(postgres_url) as app:
        client = app.test_client()
        followed, follower, url = two_users_and_the_follow_url(client, method)
        purge = profiles_service.change_feed.purge
        deletions: list[threading.Thread] = []

        def delete_user() -> None:
            with db.engine.begin() as other:
                other.execute(
                    text("DELETE FROM users WHERE username = :u"), {"u": followed["username"]}
                )

        def purging_then_deleting(*keys: str) -> None:
            purge(*keys)
            deleting = threading.Thread(target=lambda: _in_context(app, delete_user))
            deleting.start()
            deleting.join(0.5)  # blocked on this request's locks, or done
            deletions.append(deleting)

        monkeypatch.setattr(profiles_service.change_feed, "purge", purging_then_deleting)
        answer = client.open(url, method=method, headers=auth(follower))
        monkeypatch.undo()
        for deleting in deletions:
            deleting.join(30)

        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["profile"] == {
            "username": followed["username"],
            "bio": None,
            "image": None,
            "following": method == "POST",
        }
        assert client.get(url.removesuffix("/follow")).status_code == 404
        with app.app_context():
            assert db.session.scalar(text("SELECT count(*) FROM follows")) == 0


def _in_context(app: Any, call: Any) -> None:
    with app.app_context():
        call()


def test_a_new_tag_another_transaction_commits_while_the_creation_waits_is_linked_and_counted(
    postgres_url,
):
    """The one statement does not see the tag (not committed yet); the tags' insert waits for
    it, finds it taken, and the link that follows counts it once: answer, rows and totals."""
    import psycopg

    with app_with_tables(postgres_url) as app:
        client = app.test_client()
        author = register(client)
        create_article(client, author, tagList=["known"])
        tags = ["aaa", "held", "known", "zzz"]
        answers: list[Any] = []
        with psycopg.connect(postgres_url.replace("+psycopg", "")) as other:
            other.execute("INSERT INTO tags (name) VALUES ('held')")  # not committed yet

            def create() -> None:
                answers.append(
                    app.test_client().post(
                        "/api/articles",
                        json={
                            "article": {
                                **{"title": "t", "description": "d", "body": "b"},
                                "tagList": tags,
                            }
                        },
                        headers=auth(author),
                    )
                )

            creating = threading.Thread(target=create)
            creating.start()
            creating.join(0.5)
            other.commit()
            creating.join(30)
        (answer,) = answers
        assert answer.status_code == 201, answer.get_json()
        slug = answer.get_json()["article"]["slug"]
        read = client.get(f"/api/articles/{slug}", headers=auth(author))
        assert answer.get_data() == read.get_data()
        assert answer.get_json()["article"]["tagList"] == tags
        with app.app_context():
            assert counters.drift() == []
        assert client.get("/api/tags").get_json() == {"tags": ["known", "aaa", "held", "zzz"]}


# --- one schema instance per route, shared by every thread ----------------------


def test_shared_argument_schemas_keep_each_concurrent_requests_errors_and_values_its_own(
    served_app: ServedApp,
) -> None:
    """The routes' argument schemas are instances shared by a worker's threads: concurrent
    valid and invalid bodies each get their own values and their own errors, never another's."""
    author = served_app.register("sharer")
    clients = [served_app.client(author) for _ in range(8)]
    bodies: list[tuple[dict[str, Any], int, Any]] = []
    for n in range(48):
        kind = n % 4
        if kind == 0:
            article = {
                "title": f"Valid {n}",
                "description": f"d{n}",
                "body": f"b{n}",
                "tagList": [f"v{n}", f"V{n}"],
            }
            bodies.append((article, 201, None))
        elif kind == 1:
            article = {"description": f"d{n}", "body": f"b{n}"}
            bodies.append((article, 422, {"errors": {"title": ["can't be blank"]}}))
        elif kind == 2:
            article = {
                "title": f"T{n}",
                "description": f"d{n}",
                "body": f"b{n}",
                "tagList": [f"x{m}" for m in range(51)],
            }
            bodies.append(
                (article, 422, {"errors": {"tagList": ["has too many tags (maximum is 50)"]}})
            )
        else:
            article = {"title": f"T{n}", "description": "", "body": f"b{n}", "tagList": [" "]}
            bodies.append((article, 422, None))

    def send(n: int) -> Any:
        return clients[n % 8].post("/api/articles", json={"article": bodies[n][0]})

    answers = storm([partial(send, n) for n in range(len(bodies))], threads=8)
    kind3 = [answers[n].json() for n in range(3, len(bodies), 4)]
    assert all(answer == kind3[0] for answer in kind3), kind3
    for n, answer in enumerate(answers):
        article, status, expected = bodies[n]
        assert answer.status_code == status, (n, answer.text)
        if status == 201:
            got = answer.json()["article"]
            assert (got["title"], got["description"], got["body"], got["tagList"]) == (
                article["title"],
                article["description"],
                article["body"],
                sorted(article["tagList"]),
            )
        elif expected is not None:
            assert answer.json() == expected, n
    for c in clients:
        c.close()


def test_creations_retitles_and_deletes_racing_for_one_slug_answer_and_count_exactly(
    served_app: ServedApp,
) -> None:
    """One slug base wanted by everyone at once: creations (the one statement finds it taken or
    waits on its inserter), retitles to it (a savepoint each), and deletes freeing it."""
    authors = [served_app.register(f"slugger{n}") for n in range(4)]
    clients = [served_app.client(author) for author in authors for _ in range(2)]
    owned: list[tuple[int, str]] = []
    for n, client in enumerate(clients):
        for title in (f"Old {n}", "Same"):
            response = post_article(client, title, ["shared", f"own{n}"])
            assert response.status_code == 201, response.text
            owned.append((n, response.json()["article"]["slug"]))
    old = [(n, slug) for n, slug in owned if slug.startswith("old-")]
    same = [(n, slug) for n, slug in owned if slug.startswith("same")]

    def create(client: HttpClient, title: str, tags: list[str]) -> Any:
        return client.post(
            "/api/articles",
            json={"article": {"title": title, "description": "d", "body": "b", "tagList": tags}},
        )

    calls: list[Any] = []
    for n, client in enumerate(clients):
        calls.append(partial(create, client, "Same", ["shared", "fresh", f"own{n}"]))
        calls.append(partial(create, client, "SAME!", ["Shared", "fresh2"]))
    for n, slug in old:
        calls.append(
            partial(
                clients[n].put,
                f"/api/articles/{slug}",
                json={"article": {"title": "Same", "tagList": ["fresh", "fresh3"]}},
            )
        )
    for n, slug in same[::2]:
        calls.append(partial(clients[n].delete, f"/api/articles/{slug}"))
    random.Random(5).shuffle(calls)  # noqa: S311 - order, not secrets
    answers = storm(calls, threads=8)

    statuses = collections.Counter(a.status_code for a in answers)
    assert set(statuses) <= {200, 201, 204}, [a.text for a in answers if a.status_code >= 300]
    created = [a.json()["article"] for a in answers if a.status_code == 201]
    assert len(created) == 16
    slugs = served_app.sql("SELECT slug FROM articles")
    assert len(slugs) == 16 + 16 - 4
    owners = {author["username"]: clients[2 * n] for n, author in enumerate(authors)}
    for article in created:
        read = owners[article["author"]["username"]].get(f"/api/articles/{article['slug']}")
        assert read.status_code == 200
        assert read.json() == {"article": article}
    with served_app.app.app_context():
        assert counters.drift() == []
    for c in clients:
        c.close()


def test_follow_and_unfollow_answer_the_profile_its_get_then_answers(client):
    """Taken before the commit, the answer is still byte for byte the profile's ``GET``."""
    followed = register(client, username="Kay\u00e9")
    follower = register(client)
    change_profile(client, followed, bio="b\u00e9o", image="https://example.com/k.png")
    for method in ("POST", "POST", "DELETE", "DELETE", "POST"):
        url = "/api/profiles/kay\u00e9/follow"  # as people read it: another case
        answer = client.open(url, method=method, headers=auth(follower))
        read = client.get(url.removesuffix("/follow"), headers=auth(follower))
        assert answer.status_code == 200, method
        assert answer.get_data() == read.get_data(), method


def test_creations_racing_their_authors_deletion_answer_201_404_or_401_and_leave_no_orphan(
    served_app: ServedApp,
) -> None:
    """An operator deletes the author while eight creations (known and new tags, a taken
    slug) are in flight: each creation lands before the deletion (and goes with it), or fails
    cleanly: its insert's foreign key (404), or its token's user gone (401). Never a 500."""
    author = served_app.register("leaving")
    bystander = served_app.register("staying")
    keeper = served_app.client(bystander)
    assert (
        keeper.post(
            "/api/articles",
            json={"article": {"title": "Same", "description": "d", "body": "b", "tagList": ["k"]}},
        ).status_code
        == 201
    )
    clients = [served_app.client(author) for _ in range(8)]

    def create(n: int) -> Any:
        return post_article(clients[n], "Same" if n % 2 else f"Mine {n}", ["k", f"new{n % 3}"])

    def delete_author() -> None:
        with served_app.app.app_context():
            db.session.execute(text("DELETE FROM users WHERE username = 'leaving'"))
            db.session.commit()
            db.session.remove()

    calls: list[Any] = [partial(create, n) for n in range(4)] + [delete_author]
    calls += [partial(create, n) for n in range(4, 8)]
    answers = [a for a in storm(calls, threads=9) if a is not None]
    statuses = collections.Counter(a.status_code for a in answers)
    assert set(statuses) <= {201, 401, 404}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 404:
            assert answer.json() == {"errors": {"profile": ["not found"]}}
    assert served_app.sql("SELECT count(*) FROM articles")[0][0] == 1  # the bystander's
    assert served_app.sql("SELECT count(*) FROM article_tags")[0][0] == 1
    for c in [keeper, *clients]:
        c.close()
