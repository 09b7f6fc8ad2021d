"""Attacks on article updates, profiles, follows and settings, through the HTTP surface.

``PUT /api/articles/{slug}``: partial updates, retitles that re-slug (to a reserved
word, to no letters, to a slug just freed), odd Unicode, null against missing fields,
tag lists whose names differ only in width, case or invisible characters, someone
else's article, and updates racing deletes and favorites. Afterwards every answer, cached
or not, here or on another instance, must be what a fresh read says, and every running
total must equal its rows.

Profiles and follows: following oneself in any spelling, names written in other Unicode
forms or percent-encoded, a user renamed while others follow and read them, and
``PUT /api/user`` with collisions in other Unicode forms, blank and null fields, and
concurrent renames to one name. A failed request writes nothing, and a token keeps
naming the one account it was issued for.
"""

from __future__ import annotations

import collections
import random
import unicodedata
from functools import partial
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from app import close_app
from app.data import counters
from app.extensions import db
from tests.apps import (
    instances_with_late_notices,
    make_app,
    writer_reader_uncached,
)
from tests.factories import (
    PASSWORD,
    auth,
    create_article,
    favorite,
    follow,
    register,
    token_subject,
)
from tests.listening import wait_for
from tests.serving import ServedApp, storm

TABLES = ("users", "follows", "articles", "article_tags", "tags", "favorites", "comments")


def fullwidth(text_: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text_)


def update(client: Any, user: dict[str, Any], slug: str, **fields: Any) -> Any:
    return client.put(f"/api/articles/{slug}", json={"article": fields}, headers=auth(user))


def updated(client: FlaskClient, user: dict[str, Any], slug: str, **fields: Any) -> dict[str, Any]:
    answer = update(client, user, slug, **fields)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["article"]


def change_user(client: Any, user: dict[str, Any], **fields: Any) -> Any:
    return client.put("/api/user", json={"user": fields}, headers=auth(user))


def rows(app: Any) -> dict[str, list[tuple[Any, ...]]]:
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


def no_drift(app: Any) -> None:
    with app.app_context():
        assert counters.drift() == []


def tag_counts(client: Any) -> dict[str, int]:
    """Each popular tag and the ``articlesCount`` of its list."""
    return {
        name: client.get("/api/articles", query_string={"tag": name}).get_json()["articlesCount"]
        for name in client.get("/api/tags").get_json()["tags"]
    }


def fresh_tag_counts(app: Any) -> dict[str, int]:
    with app.app_context():
        found = dict(
            db.session.execute(
                text(
                    "SELECT t.name, count(*) FROM tags t JOIN article_tags a ON a.tag_id = t.id "
                    "GROUP BY t.name"
                )
            ).all()
        )
        db.session.rollback()
    return found


def assert_envelope(answer: Any, status: int) -> None:
    assert answer.status_code == status, (answer.status_code, answer.get_data())
    errors = answer.get_json()["errors"]
    assert errors and all(
        isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)
        for messages in errors.values()
    ), errors


# --- PUT /api/articles/{slug}: the answer is the GET that follows ----------------

UPDATES = {
    "title only, to a reserved word": {"title": "Feed"},
    "title of no letters": {"title": "!!! ???"},
    "title in fullwidth letters": {"title": fullwidth("Wide Title")},
    "title at the length limit, in letters NFKC lengthens": {"title": "\ufdfa" * 255},
    "title of astral characters only": {"title": "\U0001f600" * 40},
    "title with right-to-left override and a BOM": {"title": "\u202eabc\ufeff def"},
    "description and body only": {"description": "e\u0301 \r\n", "body": "\u00a0x\u00a0"},
    "tags in every spelling of two names": {
        "tagList": ["tag", fullwidth("tag"), " tag\u200b ", "\ufefftag", "Tag", "TAG", "tag"]
    },
    "tags NFC and NFD, and one that canonicalises to nothing": {
        "tagList": ["caf\u00e9", "cafe\u0301", "\U000e0001", "x"]
    },
    "tags emptied": {"tagList": []},
    "everything at once": {
        "title": "Base",
        "description": "d2",
        "body": "b2",
        "tagList": ["b", "a", "A", "\u00e4", "a\u0308"],
    },
}


@pytest.mark.parametrize("fields", list(UPDATES.values()), ids=list(UPDATES))
def test_an_update_answers_byte_for_byte_what_its_get_then_answers(client, fields):
    author = register(client)
    create_article(client, author, title="Other", tagList=["tag", "known"])
    slug = create_article(client, author, title="Base", tagList=["known", "old"])["slug"]

    answer = update(client, author, slug, **fields)

    assert answer.status_code == 200, answer.get_json()
    new_slug = answer.get_json()["article"]["slug"]
    read = client.get(f"/api/articles/{new_slug}", headers=auth(author))
    assert answer.get_data() == read.get_data()


def test_a_partial_update_changes_only_the_fields_sent(client):
    author = register(client)
    article = create_article(client, author, title="Keep", description="d", body="b", tagList=["t"])

    after = updated(client, author, article["slug"], body="new body")

    unchanged = ("slug", "title", "description", "tagList", "createdAt", "author")
    assert {k: after[k] for k in unchanged} == {k: article[k] for k in unchanged}
    assert after["body"] == "new body"
    assert after["updatedAt"] >= article["updatedAt"]


def test_a_retitle_to_its_own_title_in_another_case_keeps_the_slug(client):
    author = register(client)
    slug = create_article(client, author, title="Same Words")["slug"]

    assert updated(client, author, slug, title="SAME words!")["slug"] == slug


def test_a_retitle_frees_the_old_slug_for_the_next_article_and_the_old_url_404s(client):
    author = register(client)
    slug = create_article(client, author, title="First Name")["slug"]

    renamed = updated(client, author, slug, title="Second Name")

    assert renamed["slug"] == "second-name"
    assert client.get(f"/api/articles/{slug}").status_code == 404
    assert update(client, author, slug, body="x").status_code == 404
    assert create_article(client, author, title="First Name")["slug"] == slug


def test_a_retitle_to_a_taken_title_gets_the_next_free_suffix(client):
    author = register(client)
    create_article(client, author, title="Taken")
    create_article(client, author, title="Taken")  # taken-2
    slug = create_article(client, author, title="Mine")["slug"]

    assert updated(client, author, slug, title="Taken")["slug"] == "taken-3"


INVALID_UPDATES: dict[str, Any] = {
    "no field": {"article": {}},
    "only unknown fields": {"article": {"slug": "hijacked", "favoritesCount": 9}},
    "null title": {"article": {"title": None}},
    "null body": {"article": {"body": None}},
    "null tag list": {"article": {"tagList": None}},
    "blank title": {"article": {"title": " \u200b\t"}},
    "invisible title": {"article": {"title": "\u3164\u2800"}},
    "empty description": {"article": {"description": ""}},
    "title too long": {"article": {"title": "x" * 256}},
    "NUL in body": {"article": {"body": "a\x00b"}},
    "lone surrogate in title": {"article": {"title": "\ud800"}},
    "number as title": {"article": {"title": 7}},
    "tag list a string": {"article": {"tagList": "a,b"}},
    "tag list with a number": {"article": {"tagList": ["a", 1]}},
    "tag list with null": {"article": {"tagList": ["a", None]}},
    "tag list with a list": {"article": {"tagList": [["a"]]}},
    "a blank tag": {"article": {"tagList": ["a", "\u200b "]}},
    "a tag NFKC lengthens past the limit": {"article": {"tagList": ["\ufdfa" * 6]}},
    "51 spellings of one tag": {"article": {"tagList": ["t"] * 26 + [fullwidth("t")] * 25}},
    "valid fields beside an invalid one": {
        "article": {"title": "Would change", "tagList": ["new"], "body": ""}
    },
    "article null": {"article": None},
    "article a list": {"article": ["title"]},
    "body a list": [{"article": {"title": "x"}}],
}


@pytest.mark.parametrize("body", list(INVALID_UPDATES.values()), ids=list(INVALID_UPDATES))
def test_an_invalid_update_answers_422_in_the_envelope_and_writes_nothing(client, app, body):
    author = register(client)
    slug = create_article(client, author, title="Stays", tagList=["t", "u"])["slug"]
    before = rows(app)

    answer = client.put(f"/api/articles/{slug}", json=body, headers=auth(author))

    assert_envelope(answer, 422)
    assert rows(app) == before


def test_updating_someone_elses_article_in_any_spelling_answers_403_and_writes_nothing(client, app):
    author, other = register(client, username="Owner"), register(client, username="owner2")
    slug = create_article(client, author, title="Theirs", tagList=["t"])["slug"]
    before = rows(app)

    answer = update(client, other, slug, title="Mine now", tagList=["x"])

    assert_envelope(answer, 403)
    assert rows(app) == before


def test_an_update_without_a_token_answers_401_before_validating(client, app):
    author = register(client)
    slug = create_article(client, author)["slug"]
    before = rows(app)

    answer = client.put(f"/api/articles/{slug}", json={"article": {}})

    assert_envelope(answer, 401)
    assert rows(app) == before


@pytest.mark.parametrize("slug", ["feed", "FEED", "%2e%2e", "no-such", "x" * 300, "%C3%A9"])
def test_updating_no_article_answers_4xx_in_the_envelope(client, slug):
    author = register(client)
    create_article(client, author, title="Feed")

    answer = client.put(
        f"/api/articles/{slug}", json={"article": {"body": "x"}}, headers=auth(author)
    )

    assert answer.status_code in (404, 405), answer.get_data()
    assert "errors" in answer.get_json()


def test_retags_move_every_tag_total_exactly(client, app):
    author = register(client)
    first = create_article(client, author, title="One", tagList=["a", "b", "c"])["slug"]
    second = create_article(client, author, title="Two", tagList=["b", "c"])["slug"]
    steps = [
        (first, ["a", fullwidth("a"), "A"]),  # b and c lose one, A is new
        (second, [" b ", "b\u200b", "d"]),  # c gone everywhere, d new
        (first, []),  # a and A gone
        (second, ["b", "d"]),  # the same set again: nothing moves
        (first, ["d", "e"] + [f"n{n}" for n in range(40)]),
    ]
    for slug, tags in steps:
        updated(client, author, slug, tagList=tags)
        no_drift(app)
        assert tag_counts(client) == fresh_tag_counts(app), tags
    assert "c" not in client.get("/api/tags").get_json()["tags"]
    assert client.get("/api/articles?tag=c").get_json() == {"articles": [], "articlesCount": 0}


def test_a_retitle_keeps_comments_favorites_and_tags_with_the_article(client):
    author, reader = register(client), register(client)
    slug = create_article(client, author, title="Before", tagList=["kept"])["slug"]
    favorite(client, reader, slug)
    client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "c"}}, headers=auth(reader)
    )

    new = updated(client, author, slug, title="After")

    assert (new["favoritesCount"], new["tagList"]) == (1, ["kept"])
    comments = client.get(f"/api/articles/{new['slug']}/comments").get_json()["comments"]
    assert [c["body"] for c in comments] == ["c"]
    assert client.get(f"/api/articles/{slug}/comments").status_code == 404
    listed = client.get(f"/api/articles?favorited={reader['username']}").get_json()
    assert [a["slug"] for a in listed["articles"]] == [new["slug"]]


# --- cached answers after updates, here and on another instance ----------------


def test_cached_answers_after_each_update_equal_fresh_ones_here_and_soon_elsewhere(database_url):
    with writer_reader_uncached(database_url) as (writer, reader, uncached):
        author, viewer = register(writer, username="Author"), register(writer)
        follow(writer, viewer, "author")
        slug = create_article(writer, author, title="Start", tagList=["known", "old"])["slug"]
        create_article(writer, author, title="Neighbour", tagList=["known"])
        favorite(writer, viewer, slug)
        writer.post(
            f"/api/articles/{slug}/comments", json={"comment": {"body": "hi"}}, headers=auth(viewer)
        )
        slugs = {slug}
        writes: list[dict[str, Any]] = [
            {"title": "Renamed"},
            {"tagList": ["old", "new", fullwidth("new")]},
            {"description": "only the description"},
            {"title": "Feed", "tagList": []},
            {"title": "Start", "tagList": ["known"]},  # back to the first slug
            {"tagList": ["Known", "KNOWN", "new"]},
        ]

        def urls() -> list[tuple[str, dict[str, str]]]:
            found: list[tuple[str, dict[str, str]]] = [
                ("/api/articles", {}),
                ("/api/articles", auth(viewer)),
                ("/api/articles/feed", auth(viewer)),
                ("/api/tags", {}),
                ("/api/articles?author=AUTHOR", {}),
                (f"/api/articles?favorited={viewer['username']}", auth(author)),
                ("/api/profiles/Author", auth(viewer)),
            ]
            for tag in ("known", "Known", "KNOWN", "old", "new"):
                found.append((f"/api/articles?tag={tag}", {}))
            for s in sorted(slugs):
                found += [(f"/api/articles/{s}", auth(viewer)), (f"/api/articles/{s}", {})]
                found.append((f"/api/articles/{s}/comments", auth(viewer)))
            return found

        def answers(client: FlaskClient) -> list[tuple[int, bytes]]:
            return [
                (r.status_code, r.get_data()) for r in (client.get(u, headers=h) for u, h in urls())
            ]

        for fields in writes:
            answers(writer)
            answers(reader)
            slug = updated(writer, author, slug, **fields)["slug"]
            slugs.add(slug)
            assert answers(writer) == answers(uncached), fields
            wait_for(lambda: answers(reader) == answers(uncached))


# --- updates racing deletes, favorites and each other (served) ------------------


def test_updates_racing_deletes_favorites_and_each_other_answer_4xx_never_500(
    served_app: ServedApp,
) -> None:
    """Each article is retitled and retagged by its author on two connections while readers
    favorite and unfavorite it and the author deletes it: each request answers what happened
    (200, 204, 404), and afterwards every total equals its rows."""
    author = served_app.register("updater")
    fans = [served_app.register(f"fan{n}") for n in range(3)]
    writers = [served_app.client(author) for _ in range(3)]
    fan_clients = [served_app.client(fan) for fan in fans]
    slugs = []
    for n in range(6):
        created = writers[0].post(
            "/api/articles",
            json={
                "article": {
                    "title": f"Racing {n}",
                    "description": "d",
                    "body": "b",
                    "tagList": ["shared", f"own{n}"],
                }
            },
        )
        assert created.status_code == 201, created.text
        slugs.append(created.json()["article"]["slug"])
    rng = random.Random(7)  # noqa: S311 - an order, not a secret
    calls: list[Any] = []
    for n, slug in enumerate(slugs):
        url = f"/api/articles/{slug}"
        calls += [
            partial(writers[1].put, url, json={"article": {"title": "Racing 0", "tagList": ["x"]}}),
            partial(writers[2].put, url, json={"article": {"tagList": ["shared", "y", "Y"]}}),
            partial(writers[1].put, url, json={"article": {"body": "new"}}),
        ]
        calls += [partial(c.post, url + "/favorite") for c in fan_clients]
        calls.append(partial(fan_clients[n % 3].delete, url + "/favorite"))
        if n % 2:
            calls.append(partial(writers[0].delete, url))
    rng.shuffle(calls)

    answers = storm(calls, threads=8)

    statuses = collections.Counter(a.status_code for a in answers)
    assert set(statuses) <= {200, 204, 404, 409}, [a.text for a in answers if a.status_code >= 500]
    for answer in answers:
        if answer.status_code >= 400:
            assert answer.json()["errors"], answer.text
    no_drift(served_app.app)
    left = [row[0] for row in served_app.sql("SELECT slug FROM articles")]
    assert len(left) == 6 - statuses[204]
    for slug in left:
        read = writers[0].get(f"/api/articles/{slug}").json()["article"]
        stored = served_app.sql(
            "SELECT count(*) FROM favorites f JOIN articles a ON a.id = f.article_id "
            "WHERE a.slug = :s",
            s=slug,
        )[0][0]
        assert read["favoritesCount"] == stored
    listed = writers[0].get("/api/articles").json()
    assert listed["articlesCount"] == len(left)
    assert sorted(a["slug"] for a in listed["articles"]) == sorted(left)
    for c in [*writers, *fan_clients]:
        c.close()


# --- profiles and follows -------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    ["Kay", "kay", "KAY", fullwidth("kay"), "\u212aay", "Kay/", "%4Bay"],
    ids=["as typed", "lower", "upper", "fullwidth", "kelvin sign", "trailing slash", "encoded"],
)
def test_following_oneself_in_any_spelling_answers_422_and_writes_nothing(client, app, spelling):
    kay = register(client, username="Kay")
    before = rows(app)

    answer = client.post(f"/api/profiles/{spelling}/follow", headers=auth(kay))

    assert answer.status_code == 422, answer.get_data()
    assert answer.get_json() == {"errors": {"profile": ["cannot follow yourself"]}}
    assert rows(app) == before


def test_unfollowing_oneself_writes_nothing_and_says_not_following(client, app):
    kay = register(client, username="Kay")
    before = rows(app)

    answer = client.delete("/api/profiles/KAY/follow", headers=auth(kay))

    assert answer.status_code in (200, 422), answer.get_data()
    if answer.status_code == 200:
        assert answer.get_json()["profile"]["following"] is False
    assert rows(app) == before


@pytest.mark.parametrize(
    "spelling, found",
    [
        ("Jos\u00e9", True),
        ("jose\u0301", True),  # NFD, other case
        ("JOS%C3%89", True),  # percent-encoded upper case
        (fullwidth("jose") + "\u0301", True),
        ("Jos\u00e9.", False),
        ("Jos\u00e9%00", False),
        ("Jos\u00e9\u200b", False),
        ("%20Jos%C3%A9", False),
        ("Jos%FF", False),
    ],
)
def test_a_profile_and_its_follow_are_found_by_every_spelling_that_reads_the_same(
    client, spelling, found
):
    register(client, username="Jos\u00e9")
    viewer = register(client)

    got = client.get(f"/api/profiles/{spelling}", headers=auth(viewer))
    followed = client.post(f"/api/profiles/{spelling}/follow", headers=auth(viewer))

    if found:
        assert got.status_code == followed.status_code == 200
        assert got.get_json()["profile"]["username"] == "Jos\u00e9"
        assert followed.get_json()["profile"]["following"] is True
    else:
        assert_envelope(got, 404)
        assert_envelope(followed, 404)


def test_a_renamed_user_is_still_followed_and_their_old_name_is_free(client, app):
    kay, fan = register(client, username="Kay"), register(client)
    follow(client, fan, "Kay")
    create_article(client, kay, title="By Kay")

    assert change_user(client, kay, username="Kai").status_code == 200

    assert client.get("/api/profiles/kay", headers=auth(fan)).status_code == 404
    assert client.get("/api/profiles/KAI", headers=auth(fan)).get_json()["profile"] == {
        "username": "Kai",
        "bio": None,
        "image": None,
        "following": True,
    }
    feed = client.get("/api/articles/feed", headers=auth(fan)).get_json()
    assert [a["author"]["username"] for a in feed["articles"]] == ["Kai"]
    assert client.get("/api/articles?author=Kay").get_json()["articlesCount"] == 0
    newcomer = register(client, username="kay")
    assert client.get("/api/profiles/KAY", headers=auth(fan)).get_json()["profile"] == {
        "username": "kay",
        "bio": None,
        "image": None,
        "following": False,
    }
    assert token_subject(newcomer["token"]) != token_subject(kay["token"])


def test_follows_unfollows_and_renames_leave_cached_answers_equal_to_fresh_ones(database_url):
    with writer_reader_uncached(database_url) as (writer, reader, uncached):
        kay, fan = register(writer, username="Kay"), register(writer, username="Fan")
        other = register(writer, username="Other")
        create_article(writer, kay, title="By Kay", tagList=["k"])
        create_article(writer, other, title="By Other")
        names = ["Kay"]

        def urls() -> list[tuple[str, dict[str, str]]]:
            found: list[tuple[str, dict[str, str]]] = [
                ("/api/articles/feed", auth(fan)),
                ("/api/articles", auth(fan)),
                ("/api/articles?tag=k", auth(fan)),
                ("/api/articles/by-kay", auth(fan)),
                ("/api/articles/by-kay/comments", auth(fan)),
                ("/api/profiles/Other", auth(fan)),
            ]
            for name in names:
                found += [
                    (f"/api/profiles/{name}", auth(fan)),
                    (f"/api/profiles/{name}", {}),
                    (f"/api/articles?author={name}", auth(fan)),
                ]
            return found

        def answers(client: FlaskClient) -> list[tuple[int, bytes]]:
            return [
                (r.status_code, r.get_data()) for r in (client.get(u, headers=h) for u, h in urls())
            ]

        writer.post(
            "/api/articles/by-kay/comments", json={"comment": {"body": "c"}}, headers=auth(kay)
        )
        steps = [
            lambda: follow(writer, fan, "KAY"),
            lambda: change_user(writer, kay, username="Kai", bio="renamed"),
            lambda: follow(writer, fan, "other"),
            lambda: writer.delete("/api/profiles/kai/follow", headers=auth(fan)),
            lambda: change_user(writer, kay, username="Kay", image="https://example.com/k.png"),
            lambda: follow(writer, fan, fullwidth("kay")),
            lambda: change_user(writer, other, username="Kai"),  # takes Kay's old new name
        ]
        names += ["Kai", "kai", "KAY"]
        for step in steps:
            answers(writer)
            answers(reader)
            step()
            assert answers(writer) == answers(uncached)
            wait_for(lambda: answers(reader) == answers(uncached))


# --- PUT /api/user ----------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"username": "KAY"}, "username"),
        ({"username": fullwidth("kay")}, "username"),
        ({"username": "\u212aay"}, "username"),  # KELVIN SIGN
        ({"email": "KAY@EXAMPLE.COM"}, "email"),
        ({"email": fullwidth("kay") + "@example.com"}, "email"),
    ],
)
def test_a_settings_change_to_another_users_name_or_email_in_another_form_is_422(
    client, app, fields, field
):
    register(client, username="Kay", email="kay@example.com")
    me = register(client, username="me")
    before = rows(app)

    answer = change_user(client, me, **fields, bio="would change too")

    assert answer.status_code == 422, answer.get_data()
    assert answer.get_json() == {"errors": {field: ["has already been taken"]}}
    assert rows(app) == before


def test_a_password_change_beside_a_taken_username_writes_nothing_and_keeps_every_token(
    client, app
):
    register(client, username="Kay")
    me = register(client)
    before = rows(app)

    answer = change_user(client, me, username="kay", password="another-long-password")

    assert answer.get_json() == {"errors": {"username": ["has already been taken"]}}
    assert rows(app) == before
    assert client.get("/api/user", headers=auth(me)).status_code == 200


def test_a_name_that_nfkc_lengthens_to_the_limit_is_found_by_its_long_spelling(client):
    viewer = register(client)
    name = "\ufdfa" * 64
    me = register(client)
    assert change_user(client, me, username=name).status_code == 200
    long_spelling = unicodedata.normalize("NFKC", name)  # 18 letters and spaces each
    assert len(long_spelling) == 18 * 64

    found = client.get(f"/api/profiles/{long_spelling}", headers=auth(viewer))
    followed = client.post(f"/api/profiles/{long_spelling}/follow", headers=auth(viewer))

    assert found.status_code == followed.status_code == 200, found.get_data()
    assert found.get_json()["profile"]["username"] == name


def test_renaming_oneself_to_ones_own_name_in_another_form_is_allowed(client):
    me = register(client, username="Jos\u00e9", email="jose@example.com")

    answer = change_user(client, me, username="JOSE\u0301", email="JOSE@example.com")

    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["user"]["username"] == "JOSE\u0301"
    assert answer.get_json()["user"]["email"] == "jose@example.com"
    assert token_subject(answer.get_json()["user"]["token"]) == token_subject(me["token"])


INVALID_SETTINGS: dict[str, Any] = {
    "no field": {},
    "username null": {"username": None},
    "username empty": {"username": ""},
    "username a dot segment": {"username": ".."},
    "username with a slash": {"username": "a/b"},
    "username with a trailing newline": {"username": "kay\n"},
    "username too long": {"username": "k" * 65},
    "email null": {"email": None},
    "email empty": {"email": ""},
    "email not an email": {"email": "kay"},
    "password null": {"password": None},
    "password too short": {"password": "short"},
    "password blank but long": {"password": " " * 7},
    "bio with NUL": {"bio": "a\x00"},
    "image a number": {"image": 5},
    "image too long": {"image": "https://example.com/" + "x" * 2048},
    "a valid bio beside an invalid email": {"bio": "would change", "email": "nope"},
    "bio a list": {"bio": ["a"]},
    "image an object": {"image": {"url": "x"}},
    "email a number": {"email": 5},
    "username starting with a combining mark": {"username": "\u0301abc"},
    "username outside the Basic Multilingual Plane": {"username": "\U0001d4a6ay"},
    "username of invisible characters": {"username": "\u200b\u3164"},
    "email whose compared form is too long": {"email": "\ufdfa" * 14 + "@example.com"},
}


@pytest.mark.parametrize("fields", list(INVALID_SETTINGS.values()), ids=list(INVALID_SETTINGS))
def test_an_invalid_settings_change_answers_422_in_the_envelope_and_writes_nothing(
    client, app, fields
):
    me = register(client)
    before = rows(app)

    answer = change_user(client, me, **fields)

    assert_envelope(answer, 422)
    assert rows(app) == before


def test_an_empty_password_keeps_the_password_and_every_token(client):
    me = register(client)

    answer = change_user(client, me, password="", bio="b")

    assert answer.status_code == 200
    assert client.get("/api/user", headers=auth(me)).status_code == 200
    login = client.post(
        "/api/users/login", json={"user": {"email": me["email"], "password": PASSWORD}}
    )
    assert login.status_code == 200


@pytest.mark.parametrize("blank", ["", " ", "\t\n"])
@pytest.mark.parametrize("field", ["bio", "image"])
def test_a_blank_bio_or_image_clears_it_and_a_missing_one_keeps_it(client, field, blank):
    me = register(client)
    assert change_user(client, me, **{field: "https://example.com/x"}).status_code == 200

    kept = change_user(client, me, username=me["username"] + "x").get_json()["user"]
    cleared = change_user(client, me, **{field: blank}).get_json()["user"]
    nulled = change_user(client, me, **{field: None}).get_json()["user"]

    assert kept[field] == "https://example.com/x"
    assert cleared[field] is None
    assert nulled[field] is None


@pytest.mark.parametrize("field", ["bio", "image"])
@pytest.mark.parametrize(
    "invisible",
    ["\u200b\u3164", "\U000e0041\U000e0042 \U0001d173"],  # astral ones too: tags, a format char
    ids=["basic plane", "astral planes"],
)
def test_a_bio_or_image_of_invisible_characters_only_clears_it_as_blank(client, field, invisible):
    me = register(client)

    answer = change_user(client, me, **{field: invisible})

    assert answer.status_code == 200
    assert answer.get_json()["user"][field] is None


def test_a_token_keeps_naming_its_account_through_renames_and_name_swaps(client):
    a, b = register(client, username="Alpha"), register(client, username="Beta")
    assert change_user(client, a, username="Tmp").status_code == 200
    assert change_user(client, b, username="alpha").status_code == 200
    assert change_user(client, a, username="BETA").status_code == 200

    me_a = client.get("/api/user", headers=auth(a)).get_json()["user"]
    me_b = client.get("/api/user", headers=auth(b)).get_json()["user"]

    assert (me_a["username"], me_a["email"]) == ("BETA", a["email"])
    assert (me_b["username"], me_b["email"]) == ("alpha", b["email"])
    assert token_subject(me_a["token"]) == token_subject(a["token"])


SPELLINGS = {
    "username": ["Kay", "kay", "KAY", fullwidth("kay"), "\u212aay", "kAy", "Kay", fullwidth("KAY")],
    "email": [
        "kay@example.com",
        "KAY@example.com",
        "Kay@Example.COM",
        fullwidth("kay") + "@example.com",
        "\u212aay@example.com",
        "kay@EXAMPLE.com",
        "kay@example.com",
        "kAy@example.com",
    ],
}


@pytest.mark.parametrize("field", list(SPELLINGS))
def test_concurrent_changes_to_one_name_or_email_in_many_spellings_leave_exactly_one_owner(
    served_app: ServedApp, field: str
) -> None:
    users = [served_app.register(f"renamer{n}") for n in range(8)]
    clients = [served_app.client(user) for user in users]

    answers = storm(
        [
            partial(c.put, "/api/user", json={"user": {field: value, "bio": "mine"}})
            for c, value in zip(clients, SPELLINGS[field], strict=True)
        ]
    )

    statuses = collections.Counter(a.status_code for a in answers)
    assert statuses == {200: 1, 422: 7}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 422:
            assert answer.json() == {"errors": {field: ["has already been taken"]}}
    assert served_app.sql("SELECT count(*) FROM users WHERE bio = 'mine'")[0][0] == 1
    (winner,) = [a.json()["user"] for a in answers if a.status_code == 200]
    (index,) = [n for n, a in enumerate(answers) if a.status_code == 200]
    me = clients[index].get("/api/user").json()["user"]
    assert me[field] == winner[field]
    assert token_subject(me["token"]) == token_subject(users[index]["token"])
    for c in clients:
        c.close()


def test_follows_and_unfollows_racing_renames_answer_200_or_404_and_agree_with_the_rows(
    served_app: ServedApp,
) -> None:
    """Fans follow and unfollow Kay by several spellings while Kay is renamed back and forth:
    each answer is 200 (its profile one of Kay's names) or 404 (the name was free then), and
    afterwards each fan's profile, feed and rows agree."""
    kay = served_app.register("Kay")
    fans = [served_app.register(f"fan{n}") for n in range(4)]
    kay_client = served_app.client(kay)
    assert (
        kay_client.post(
            "/api/articles", json={"article": {"title": "K", "description": "d", "body": "b"}}
        ).status_code
        == 201
    )
    fan_clients = [served_app.client(fan) for fan in fans]
    calls: list[Any] = []
    for n in range(6):
        calls.append(
            partial(kay_client.put, "/api/user", json={"user": {"username": ["Kai", "Kay"][n % 2]}})
        )
    for n, c in enumerate(fan_clients):
        for m, name in enumerate(["kay", "KAI", fullwidth("kay"), "Kai", "KAY", "kai"]):
            method = c.post if (n + m) % 3 else c.delete
            calls.append(partial(method, f"/api/profiles/{name}/follow"))
    random.Random(3).shuffle(calls)  # noqa: S311 - an order, not a secret

    answers = storm(calls, threads=8)

    for answer in answers:
        assert answer.status_code in (200, 404), answer.text
        if answer.status_code == 404:
            assert answer.json() == {"errors": {"profile": ["not found"]}}
        elif "profile" in answer.json():
            assert answer.json()["profile"]["username"] in ("Kay", "Kai")
    name = kay_client.get("/api/user").json()["user"]["username"]
    for fan, c in zip(fans, fan_clients, strict=True):
        stored = served_app.sql(
            "SELECT count(*) FROM follows f JOIN users u ON u.id = f.follower_id "
            "WHERE u.username = :u",
            u=fan["username"],
        )[0][0]
        assert c.get(f"/api/profiles/{name}").json()["profile"]["following"] is (stored == 1)
        assert c.get("/api/articles/feed").json()["articlesCount"] == stored
    for c in [kay_client, *fan_clients]:
        c.close()


def test_a_settings_answer_shows_the_account_as_stored_while_a_change_is_in_flight(postgres_url):
    """The account's bio changed on another instance whose notice has not reached this one:
    this instance's answer to the user's own settings change must still show the bio stored."""
    with instances_with_late_notices(postgres_url) as apps:
        me = register(apps.here)
        assert apps.here.get("/api/user", headers=auth(me)).status_code == 200  # remembered

        apps.notices.hold()
        assert change_user(apps.there, me, bio="changed there").status_code == 200
        answer = change_user(apps.here, me, image="https://example.com/me.png")

        assert answer.status_code == 200
        assert answer.get_json()["user"]["bio"] == "changed there"


def test_a_favorite_by_a_user_renamed_elsewhere_moves_the_cached_list_of_their_new_name(
    postgres_url,
):
    """Kay becomes Kai on one instance; before that notice reaches another instance, Kai
    favorites an article there. Every instance's ``?favorited=Kai`` must show it, soon."""
    with instances_with_late_notices(postgres_url) as apps:
        here, there, uncached = apps.here, apps.there, apps.uncached
        kay, author = register(here, username="Kay"), register(here)
        slug = create_article(here, author, title="Liked")["slug"]
        assert here.get("/api/user", headers=auth(kay)).status_code == 200  # remembered

        apps.notices.hold()  # the rename reaches this instance late
        assert change_user(there, kay, username="Kai").status_code == 200
        url = "/api/articles?favorited=Kai"
        there.get(url)
        assert there.get(url).headers["X-Cache"] == "hit"
        favorite(here, kay, slug)
        apps.notices.release()

        fresh = uncached.get(url).get_json()
        assert [a["slug"] for a in fresh["articles"]] == [slug]
        wait_for(lambda: there.get(url).get_json() == fresh, seconds=5)


def test_every_worker_answers_fresh_after_each_update_follow_and_rename(
    served_app: ServedApp,
) -> None:
    """gunicorn's two workers share the stamps: right after each write answers, reads on
    eight other connections (both workers, their caches warmed first) equal a fresh read."""
    kay, fan = served_app.register("Kay"), served_app.register("Fan")
    kay_client, fan_client = served_app.client(kay), served_app.client(fan)
    created = kay_client.post(
        "/api/articles",
        json={"article": {"title": "Start", "description": "d", "body": "b", "tagList": ["t"]}},
    )
    assert created.status_code == 201, created.text
    slug = created.json()["article"]["slug"]
    assert fan_client.post(f"/api/articles/{slug}/favorite").status_code == 200
    readers = [served_app.client(fan) for _ in range(8)]
    uncached_app = make_app(served_app.database_url, RESPONSE_CACHE=False)
    uncached = uncached_app.test_client()
    fan_auth = auth(fan)
    names = {"Kay", "Kai"}
    slugs = {slug}

    def urls() -> list[str]:
        found = ["/api/articles", "/api/articles/feed", "/api/tags", "/api/articles?tag=t"]
        found += ["/api/articles?tag=u", "/api/articles?favorited=fan"]
        for name in sorted(names):
            found += [f"/api/profiles/{name}", f"/api/articles?author={name}"]
        for s in sorted(slugs):
            found += [f"/api/articles/{s}", f"/api/articles/{s}/comments"]
        return found

    def fresh() -> list[tuple[int, Any]]:
        return [
            (r.status_code, r.get_json())
            for r in (uncached.get(u, headers=fan_auth) for u in urls())
        ]

    def served(client: Any) -> list[tuple[int, Any]]:
        return [(r.status_code, r.json()) for r in (client.get(u) for u in urls())]

    steps: list[tuple[Any, str, dict[str, Any]]] = [
        (kay_client.put, "/api/articles/{slug}", {"article": {"title": "Renamed"}}),
        (fan_client.post, "/api/profiles/kay/follow", {}),
        (kay_client.put, "/api/articles/{slug}", {"article": {"tagList": ["u", "T"]}}),
        (kay_client.put, "/api/user", {"user": {"username": "Kai", "bio": "b"}}),
        (fan_client.delete, "/api/articles/{slug}/favorite", {}),
        (fan_client.delete, "/api/profiles/KAI/follow", {}),
        (kay_client.put, "/api/articles/{slug}", {"article": {"title": "Start", "body": "x"}}),
        (kay_client.put, "/api/user", {"user": {"username": "Kay", "image": "https://e.x/i"}}),
    ]
    try:
        for method, path, body in steps:
            for reader in readers:
                served(reader)
            answer = method(path.format(slug=slug), **({"json": body} if body else {}))
            assert answer.status_code == 200, answer.text
            if "article" in answer.json():
                slug = answer.json()["article"]["slug"]
                slugs.add(slug)
            expected = fresh()
            for reader in readers:
                assert served(reader) == expected, (path, body)
    finally:
        close_app(uncached_app)
        for c in [kay_client, fan_client, *readers]:
            c.close()


def test_a_feed_following_past_its_author_keys_and_back_stays_fresh(database_url):
    """Past FEED_AUTHOR_KEYS followed authors the feed watches every new article; back under
    it, each followed author's list: either way each new article by a followed author shows
    at once, and no unfollowed author's does."""
    from app.articles.service import FEED_AUTHOR_KEYS

    with writer_reader_uncached(database_url) as (writer, reader, uncached):
        viewer = register(writer)
        authors = [register(writer) for _ in range(FEED_AUTHOR_KEYS + 1)]
        for author in authors:
            follow(writer, viewer, author["username"])
        url, headers = "/api/articles/feed?limit=5", auth(viewer)

        def same_everywhere() -> None:
            fresh = uncached.get(url, headers=headers).get_data()
            assert writer.get(url, headers=headers).get_data() == fresh
            wait_for(lambda: reader.get(url, headers=headers).get_data() == fresh)

        for step in range(4):
            writer.get(url, headers=headers)
            reader.get(url, headers=headers)
            if step == 2:  # back to FEED_AUTHOR_KEYS followed authors
                writer.delete(f"/api/profiles/{authors[0]['username']}/follow", headers=headers)
            create_article(writer, authors[[0, 30, 60, 0][step]], title=f"Step {step}")
            same_everywhere()
        titles = [a["title"] for a in uncached.get(url, headers=headers).get_json()["articles"]]
        assert titles == ["Step 2", "Step 1"]  # Step 0 and 3 by the author no longer followed


def test_a_password_change_ends_the_old_tokens_cached_reads_everywhere_and_not_the_new_ones(
    database_url,
):
    with writer_reader_uncached(database_url) as (writer, reader, uncached):
        me, kay = register(writer), register(writer, username="Kay")
        follow(writer, me, "Kay")
        slug = create_article(writer, kay, title="Read")["slug"]
        urls = ["/api/articles", "/api/articles/feed", f"/api/articles/{slug}", "/api/profiles/kay"]
        old = auth(me)
        for client in (writer, reader):
            for u in urls:
                client.get(u, headers=old)
                assert client.get(u, headers=old).status_code == 200

        answer = change_user(writer, me, password="a-brand-new-password")
        assert answer.status_code == 200
        new = {"Authorization": f"Token {answer.get_json()['user']['token']}"}

        for client in (writer, reader):
            for u in urls:
                wait_for(lambda c=client, u=u: c.get(u, headers=old).status_code == 401)
                assert client.get(u, headers=old).get_json() == {
                    "errors": {"token": ["is invalid"]}
                }
                fresh = uncached.get(u, headers=new)
                assert fresh.status_code == 200
                assert client.get(u, headers=new).get_data() == fresh.get_data()


@pytest.mark.parametrize(
    "there, here",
    [
        ({"bio": "changed there"}, {"bio": "first"}),
        ({"bio": "changed there"}, {"bio": ""}),
        ({"username": "Renamed"}, {"username": "Original"}),
    ],
    ids=["bio set back", "bio cleared", "renamed back"],
)
def test_a_settings_change_back_to_what_this_instance_remembers_is_written(
    postgres_url, there, here
):
    """Another instance changed the field; this one has not heard yet. The user now sets the
    field to the value this instance still remembers: a 200 must have written it."""
    with instances_with_late_notices(postgres_url) as apps:
        me = register(apps.here, username="Original")
        assert change_user(apps.here, me, bio="first").status_code == 200
        assert apps.here.get("/api/user", headers=auth(me)).status_code == 200  # remembered

        apps.notices.hold()  # the change reaches this instance late
        assert change_user(apps.there, me, **there).status_code == 200
        answer = change_user(apps.here, me, **here)
        apps.notices.release()

        assert answer.status_code == 200
        ((field, value),) = here.items()
        expected = value or None
        assert answer.get_json()["user"][field] == expected
        stored = apps.uncached.get("/api/user", headers=auth(me))
        assert stored.get_json()["user"][field] == expected
