"""If-Match on writes: a write changes what the client last read, or nothing (412).

RFC 9110 §13.1.1: the tag is the strong ETag the writer's own GET answers; a
weak tag never matches; ``*`` matches any existing resource; with If-Match a
missing resource is a 412, without it Conduit's 404 (app/web/conditional_writes.py).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from tests.factories import add_comment, auth, create_article, favorite
from tests.serving import ServedApp, storm

STALE = {"errors": {"If-Match": ["does not match the current representation"]}}


@pytest.fixture
def article(client, jake) -> dict[str, Any]:
    return create_article(client, jake, title="Dragons", body="They fly.")


def etag_of(client, user, slug: str) -> str:
    response = client.get(f"/api/articles/{slug}", headers=auth(user))
    assert response.status_code == 200
    return response.headers["ETag"]


def body_of(client, slug: str) -> str:
    return client.get(f"/api/articles/{slug}").get_json()["article"]["body"]


def edit(client, user, slug: str, if_match: str | None, **changes: Any):
    headers = auth(user) if if_match is None else {**auth(user), "If-Match": if_match}
    return client.put(
        f"/api/articles/{slug}", json={"article": changes or {"body": "Edited."}}, headers=headers
    )


# --- PUT /api/articles/{slug} -------------------------------------------------


def test_an_edit_with_the_current_etag_is_saved(client, jake, article):
    etag = etag_of(client, jake, article["slug"])

    response = edit(client, jake, article["slug"], etag)

    assert response.status_code == 200
    assert body_of(client, article["slug"]) == "Edited."


def test_an_edit_with_a_stale_etag_is_412_and_writes_nothing(client, jake, article):
    stale = etag_of(client, jake, article["slug"])
    assert edit(client, jake, article["slug"], None, body="Changed elsewhere.").status_code == 200

    response = edit(client, jake, article["slug"], stale, title="Renamed")

    assert response.status_code == 412
    assert response.get_json() == STALE
    assert body_of(client, article["slug"]) == "Changed elsewhere."
    assert client.get("/api/articles").get_json()["articles"][0]["title"] == "Dragons"


def test_the_etag_the_edit_compares_is_the_writers_own(client, jake, anna, article):
    """Anna's view says favorited: true; the author's tag is the one that counts."""
    favorite(client, anna, article["slug"])
    annas = etag_of(client, anna, article["slug"])
    jakes = etag_of(client, jake, article["slug"])

    assert annas != jakes
    assert edit(client, jake, article["slug"], annas).status_code == 412
    assert edit(client, jake, article["slug"], jakes).status_code == 200


def test_a_favorite_changes_the_representation_so_an_edit_read_before_it_fails(
    client, jake, anna, article
):
    etag = etag_of(client, jake, article["slug"])
    favorite(client, anna, article["slug"])  # favoritesCount is in the body

    assert edit(client, jake, article["slug"], etag).status_code == 412


def test_a_star_matches_an_existing_article(client, jake, article):
    response = edit(client, jake, article["slug"], "*")

    assert response.status_code == 200
    assert body_of(client, article["slug"]) == "Edited."


def test_any_listed_tag_may_match(client, jake, article):
    etag = etag_of(client, jake, article["slug"])

    assert edit(client, jake, article["slug"], f'"other", {etag}').status_code == 200


def test_a_weak_etag_never_matches_if_match(client, jake, article):
    """If-Match compares strongly (RFC 9110 §8.8.3.2): W/"x" does not match "x"."""
    etag = etag_of(client, jake, article["slug"])

    response = edit(client, jake, article["slug"], f"W/{etag}")

    assert response.status_code == 412
    assert body_of(client, article["slug"]) == "They fly."


@pytest.mark.parametrize(
    "shape",
    ["{tag}", "{tag}, {quoted}", "'{tag}'", '"{tag}', "{quoted} junk"],
    ids=["unquoted", "unquoted beside a quoted", "single quotes", "unterminated", "trailing junk"],
)
def test_an_if_match_that_is_not_a_list_of_entity_tags_matches_nothing(
    client, jake, article, shape
):
    """RFC 9110 §8.8.3: an entity-tag is quoted; a lenient parser takes ``abc`` as ``"abc"``."""
    quoted = etag_of(client, jake, article["slug"])
    sent = shape.format(tag=quoted.strip('"'), quoted='"other"')

    response = edit(client, jake, article["slug"], sent)

    assert response.status_code == 412
    assert body_of(client, article["slug"]) == "They fly."


def test_a_tag_holding_a_comma_is_one_tag(client, jake, article):
    etag = etag_of(client, jake, article["slug"])

    assert edit(client, jake, article["slug"], f'"a,b", {etag}').status_code == 200


def if_none_match(client, user, slug: str, value: str):
    return client.put(
        f"/api/articles/{slug}",
        json={"article": {"body": "Edited."}},
        headers={**auth(user), "If-None-Match": value},
    )


@pytest.mark.parametrize("value", ["*", "{etag}", 'W/{etag}, "other"'])
def test_if_none_match_naming_the_existing_article_is_412_and_writes_nothing(
    client, jake, article, value
):
    """RFC 9110 §13.1.2: on a write, ``*`` or a (weakly) matching tag makes the condition false."""
    etag = etag_of(client, jake, article["slug"])

    response = if_none_match(client, jake, article["slug"], value.format(etag=etag))

    assert response.status_code == 412
    assert response.get_json() == {
        "errors": {"If-None-Match": ["matches the current representation"]}
    }
    assert body_of(client, article["slug"]) == "They fly."


def test_if_none_match_naming_another_tag_lets_the_write_through(client, jake, article):
    assert if_none_match(client, jake, article["slug"], '"other"').status_code == 200
    assert body_of(client, article["slug"]) == "Edited."


def test_a_missing_article_is_412_with_if_match_and_404_without(client, jake):
    with_star = edit(client, jake, "no-such-article", "*")
    without = edit(client, jake, "no-such-article", None)

    assert with_star.status_code == 412
    assert with_star.get_json() == STALE
    assert without.status_code == 404


def test_someone_elses_article_is_still_403_with_a_matching_etag(client, jake, anna, article):
    etag = etag_of(client, anna, article["slug"])

    assert edit(client, anna, article["slug"], etag).status_code == 403


def test_an_invalid_edit_is_422_before_the_precondition(client, jake, article):
    response = edit(client, jake, article["slug"], '"stale"', title="")

    assert response.status_code == 422


def test_a_renamed_article_fails_the_etag_read_under_its_old_slug(client, jake, article):
    stale = etag_of(client, jake, article["slug"])
    assert edit(client, jake, article["slug"], None, title="Wyverns").status_code == 200

    assert edit(client, jake, article["slug"], stale).status_code == 412


# --- DELETE /api/articles/{slug} -----------------------------------------------


def test_a_delete_with_a_stale_etag_is_412_and_keeps_the_article(client, jake, article):
    stale = etag_of(client, jake, article["slug"])
    edit(client, jake, article["slug"], None)

    response = client.delete(
        f"/api/articles/{article['slug']}", headers={**auth(jake), "If-Match": stale}
    )

    assert response.status_code == 412
    assert response.get_json() == STALE
    assert client.get(f"/api/articles/{article['slug']}").status_code == 200


def test_a_delete_with_the_current_etag_deletes(client, jake, article):
    etag = etag_of(client, jake, article["slug"])

    response = client.delete(
        f"/api/articles/{article['slug']}", headers={**auth(jake), "If-Match": etag}
    )

    assert response.status_code == 204
    assert client.get(f"/api/articles/{article['slug']}").status_code == 404


def test_deleting_a_deleted_article_with_a_star_is_412(client, jake, article):
    url = f"/api/articles/{article['slug']}"
    assert client.delete(url, headers=auth(jake)).status_code == 204

    assert client.delete(url, headers={**auth(jake), "If-Match": "*"}).status_code == 412
    assert client.delete(url, headers=auth(jake)).status_code == 404


# --- PUT /api/user and DELETE a comment: no entity tag of their own ------------------


def test_the_current_user_matches_a_star_and_no_listed_tag(client, jake):
    etag = client.get("/api/user", headers=auth(jake)).headers["ETag"]

    listed = client.put(
        "/api/user", json={"user": {"bio": "Listed"}}, headers={**auth(jake), "If-Match": etag}
    )
    star = client.put(
        "/api/user", json={"user": {"bio": "Starred"}}, headers={**auth(jake), "If-Match": "*"}
    )

    assert listed.status_code == 412
    assert listed.get_json() == STALE
    assert star.status_code == 200
    assert client.get("/api/user", headers=auth(jake)).get_json()["user"]["bio"] == "Starred"


def test_a_comment_matches_a_star_and_no_listed_tag(client, jake, article):
    comment = add_comment(client, jake, article["slug"])
    url = f"/api/articles/{article['slug']}/comments/{comment['id']}"

    listed = client.delete(url, headers={**auth(jake), "If-Match": '"anything"'})
    star = client.delete(url, headers={**auth(jake), "If-Match": "*"})
    again = client.delete(url, headers={**auth(jake), "If-Match": "*"})

    assert listed.status_code == 412
    assert star.status_code == 204
    assert again.status_code == 412
    assert client.delete(url, headers=auth(jake)).status_code == 404


# --- Served, concurrent: the check and the write are one ------------------------


def test_two_edits_with_the_same_etag_save_exactly_one(served_app: ServedApp) -> None:
    author = served_app.register("author")
    clients = [served_app.client(author) for _ in range(2)]
    for round_ in range(4):
        created = clients[0].post(
            "/api/articles",
            json={"article": {"title": f"Race {round_}", "description": "d", "body": "b"}},
        )
        slug = created.json()["article"]["slug"]
        etag = clients[0].get(f"/api/articles/{slug}").headers["ETag"]

        answers = storm(
            [
                partial(
                    client.put,
                    f"/api/articles/{slug}",
                    json={"article": {"body": f"writer {n}"}},
                    headers={"If-Match": etag},
                )
                for n, client in enumerate(clients)
            ],
            threads=2,
        )

        assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]
        (saved,) = (a.json()["article"]["body"] for a in answers if a.status_code == 200)
        assert clients[0].get(f"/api/articles/{slug}").json()["article"]["body"] == saved


def test_an_edit_and_a_delete_with_the_same_etag_do_exactly_one(served_app: ServedApp) -> None:
    author = served_app.register("author")
    editor, deleter = served_app.client(author), served_app.client(author)
    created = editor.post(
        "/api/articles", json={"article": {"title": "Contested", "description": "d", "body": "b"}}
    )
    slug = created.json()["article"]["slug"]
    etag = editor.get(f"/api/articles/{slug}").headers["ETag"]

    answers = storm(
        [
            partial(
                editor.put,
                f"/api/articles/{slug}",
                json={"article": {"body": "edited"}},
                headers={"If-Match": etag},
            ),
            partial(deleter.delete, f"/api/articles/{slug}", headers={"If-Match": etag}),
        ],
        threads=2,
    )

    codes = [a.status_code for a in answers]
    assert codes in ([200, 412], [412, 204]), [a.text for a in answers]
    exists = editor.get(f"/api/articles/{slug}").status_code
    assert exists == (200 if codes[0] == 200 else 404)
