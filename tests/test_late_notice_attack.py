"""Attacks on writes taken by an instance that has not yet heard another instance's change.

Two instances ("here" and "there") serve one PostgreSQL database; a third answers
without a response cache (what the database says now). Here remembers the token's
user and keeps cached answers; its change-feed notices are held back
(tests/apps.py ``instances_with_late_notices``) while "there" writes. A write
here must then decide and answer from the database's current state, never from what here
remembers or has cached: ``If-Match`` / ``If-None-Match`` against the stored
representation, names and slugs taken elsewhere, whose token is current, and the
profile each answer shows.
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.apps import LateInstances, instances_with_late_notices
from tests.factories import add_comment, auth, create_article, register
from tests.listening import wait_for

STALE_TAG = {"errors": {"If-Match": ["does not match the current representation"]}}
CURRENT_TAG = {"errors": {"If-None-Match": ["matches the current representation"]}}


def remembered(client: FlaskClient, user: dict[str, Any]) -> None:
    """Let ``client``'s instance remember the token's user (``GET /api/user`` is no hot read)."""
    assert client.get("/api/user", headers=auth(user)).status_code == 200


def change_user(client: FlaskClient, user: dict[str, Any], **fields: Any) -> Any:
    return client.put("/api/user", json={"user": fields}, headers=auth(user))


def an_article_cached_here(
    apps: LateInstances, title: str, username: str | None = None, **fields: Any
) -> tuple[dict[str, Any], str, str]:
    """A new author's new article, its author remembered and its ``GET`` cached here.

    Returns the author, the slug and the ``ETag`` of the cached answer.
    """
    author = register(apps.here) if username is None else register(apps.here, username=username)
    slug = create_article(apps.here, author, title=title, **fields)["slug"]
    remembered(apps.here, author)
    return author, slug, cached_etag(apps.here, author, slug)


def cached_etag(client: FlaskClient, user: dict[str, Any], slug: str) -> str:
    """The author's ``GET`` of the article, read until it is a cache hit; its ``ETag``."""
    client.get(f"/api/articles/{slug}", headers=auth(user))
    read = client.get(f"/api/articles/{slug}", headers=auth(user))
    assert read.headers["X-Cache"] == "hit"
    return read.headers["ETag"]


def put_article(
    client: FlaskClient, user: dict[str, Any], slug: str, headers: dict[str, str], **fields: Any
) -> Any:
    return client.put(
        f"/api/articles/{slug}", json={"article": fields}, headers={**auth(user), **headers}
    )


def stored_article(apps: LateInstances, slug: str, user: dict[str, Any]) -> Any:
    return apps.uncached.get(f"/api/articles/{slug}", headers=auth(user))


# --- If-Match / If-None-Match on PUT and DELETE /api/articles/{slug} -------------


def test_if_match_with_the_tag_this_instance_still_caches_is_412_after_an_edit_elsewhere(
    postgres_url,
):
    with instances_with_late_notices(postgres_url) as apps:
        author, slug, old = an_article_cached_here(apps, title="Edited", body="first")

        apps.notices.hold()
        assert put_article(apps.there, author, slug, {}, body="there").status_code == 200
        assert apps.here.get(f"/api/articles/{slug}", headers=auth(author)).headers["ETag"] == old
        answer = put_article(apps.here, author, slug, {"If-Match": old}, body="here")

        assert answer.status_code == 412, answer.get_data()
        assert answer.get_json() == STALE_TAG
        assert stored_article(apps, slug, author).get_json()["article"]["body"] == "there"


def test_if_match_with_the_tag_read_elsewhere_writes_on_an_instance_not_yet_told(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        author, slug, _ = an_article_cached_here(apps, title="Edited", body="first")

        apps.notices.hold()
        assert put_article(apps.there, author, slug, {}, body="there").status_code == 200
        current = apps.there.get(f"/api/articles/{slug}", headers=auth(author)).headers["ETag"]
        answer = put_article(apps.here, author, slug, {"If-Match": current}, body="here")

        assert answer.status_code == 200, answer.get_data()
        assert stored_article(apps, slug, author).get_json()["article"]["body"] == "here"


def test_if_match_with_the_cached_tag_is_412_after_the_author_changed_their_bio_elsewhere(
    postgres_url,
):
    """The author's profile is part of the article's representation (and its tag)."""
    with instances_with_late_notices(postgres_url) as apps:
        author, slug, old = an_article_cached_here(apps, title="Profiled")

        apps.notices.hold()
        assert change_user(apps.there, author, bio="new bio").status_code == 200
        answer = put_article(apps.here, author, slug, {"If-Match": old}, body="here")

        assert answer.status_code == 412, answer.get_data()
        assert stored_article(apps, slug, author).get_json()["article"]["body"] != "here"


def test_if_match_with_the_tag_read_elsewhere_after_a_bio_change_writes_here(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        author, slug, _ = an_article_cached_here(apps, title="Profiled")

        apps.notices.hold()
        assert change_user(apps.there, author, bio="new bio").status_code == 200
        current = apps.there.get(f"/api/articles/{slug}", headers=auth(author)).headers["ETag"]
        answer = put_article(apps.here, author, slug, {"If-Match": current}, body="here")

        assert answer.status_code == 200, answer.get_data()
        assert answer.get_json()["article"]["author"]["bio"] == "new bio"


def test_if_none_match_with_the_tag_read_elsewhere_is_412_on_an_instance_not_yet_told(
    postgres_url,
):
    with instances_with_late_notices(postgres_url) as apps:
        author, slug, _ = an_article_cached_here(apps, title="Edited", body="first")

        apps.notices.hold()
        assert put_article(apps.there, author, slug, {}, body="there").status_code == 200
        current = apps.there.get(f"/api/articles/{slug}", headers=auth(author)).headers["ETag"]
        answer = put_article(apps.here, author, slug, {"If-None-Match": current}, body="here")

        assert answer.status_code == 412, answer.get_data()
        assert answer.get_json() == CURRENT_TAG


def test_if_none_match_with_the_tag_this_instance_still_caches_writes_after_an_edit_elsewhere(
    postgres_url,
):
    with instances_with_late_notices(postgres_url) as apps:
        author, slug, old = an_article_cached_here(apps, title="Edited", body="first")

        apps.notices.hold()
        assert put_article(apps.there, author, slug, {}, body="there").status_code == 200
        answer = put_article(apps.here, author, slug, {"If-None-Match": old}, body="here")

        assert answer.status_code == 200, answer.get_data()
        assert stored_article(apps, slug, author).get_json()["article"]["body"] == "here"


def test_a_delete_with_the_tag_this_instance_still_caches_is_412_after_an_edit_elsewhere(
    postgres_url,
):
    with instances_with_late_notices(postgres_url) as apps:
        author, slug, old = an_article_cached_here(apps, title="Kept")

        apps.notices.hold()
        assert put_article(apps.there, author, slug, {}, tagList=["new"]).status_code == 200
        answer = apps.here.delete(
            f"/api/articles/{slug}", headers={**auth(author), "If-Match": old}
        )

        assert answer.status_code == 412, answer.get_data()
        assert stored_article(apps, slug, author).status_code == 200


def test_if_match_on_an_article_retitled_elsewhere_is_412_at_its_old_slug(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        author, slug, old = an_article_cached_here(apps, title="Old Name")

        apps.notices.hold()
        assert put_article(apps.there, author, slug, {}, title="New Name").status_code == 200
        answer = put_article(apps.here, author, slug, {"If-Match": old}, body="here")

        assert answer.status_code == 412, answer.get_data()
        assert stored_article(apps, "new-name", author).get_json()["article"]["body"] != "here"


def test_an_update_answers_what_an_uncached_get_then_answers_after_an_edit_elsewhere(
    postgres_url,
):
    with instances_with_late_notices(postgres_url) as apps:
        author, slug, _ = an_article_cached_here(apps, title="Start", tagList=["a"])

        apps.notices.hold()
        assert put_article(apps.there, author, slug, {}, tagList=["b"], body="x").status_code == 200
        assert (
            change_user(apps.there, author, bio="there", image="https://e.x/i").status_code == 200
        )
        answer = put_article(apps.here, author, slug, {}, description="here")

        assert answer.status_code == 200, answer.get_data()
        assert answer.get_data() == stored_article(apps, slug, author).get_data()


# --- whose token is current ------------------------------------------------------


def test_a_token_minted_by_a_password_change_elsewhere_is_honoured_by_a_write_here(
    postgres_url,
):
    """The password change ended the old token; the new one is the account's current key.
    An instance that still remembers the old key must not refuse the current token."""
    with instances_with_late_notices(postgres_url) as apps:
        author = register(apps.here)
        slug = create_article(apps.here, author, title="Mine")["slug"]
        remembered(apps.here, author)

        apps.notices.hold()
        changed = change_user(apps.there, author, password="a-brand-new-password")
        assert changed.status_code == 200
        renewed = {**author, "token": changed.get_json()["user"]["token"]}
        answer = put_article(apps.here, renewed, slug, {}, body="with the new token")

        assert answer.status_code == 200, answer.get_data()


def test_a_token_from_a_sign_in_after_signing_out_everywhere_elsewhere_is_honoured_here(
    postgres_url,
):
    with instances_with_late_notices(postgres_url) as apps:
        author = register(apps.here)
        remembered(apps.here, author)

        apps.notices.hold()
        assert apps.there.delete("/api/user/sessions", headers=auth(author)).status_code == 204
        login = apps.there.post(
            "/api/users/login",
            json={"user": {"email": author["email"], "password": "correct-horse-battery"}},
        )
        assert login.status_code == 200
        answer = apps.here.post(
            "/api/articles",
            json={"article": {"title": "After", "description": "d", "body": "b"}},
            headers=auth(login.get_json()["user"]),
        )

        assert answer.status_code == 201, answer.get_data()


def test_a_token_ended_by_signing_out_everywhere_elsewhere_cannot_write_here_once_heard(
    postgres_url,
):
    """docs/deployment.md: a replica refuses the old tokens as soon as its listener hears the
    sign-out; until then it honours the session key it remembers (app/data/known_users.py)."""
    with instances_with_late_notices(postgres_url) as apps:
        author = register(apps.here)
        slug = create_article(apps.here, author, title="Guarded")["slug"]
        remembered(apps.here, author)

        apps.notices.hold()
        assert apps.there.delete("/api/user/sessions", headers=auth(author)).status_code == 204
        apps.notices.release()
        wait_for(lambda: apps.here.get("/api/user", headers=auth(author)).status_code == 401)
        answer = apps.here.delete(f"/api/articles/{slug}", headers=auth(author))

        assert answer.status_code == 401, answer.get_data()
        assert apps.uncached.get(f"/api/articles/{slug}").status_code == 200


def test_a_password_change_here_with_a_token_ended_elsewhere_is_401(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        me = register(apps.here)
        remembered(apps.here, me)

        apps.notices.hold()
        assert apps.there.delete("/api/user/sessions", headers=auth(me)).status_code == 204
        answer = change_user(apps.here, me, password="another-long-password")

        assert answer.status_code == 401, answer.get_data()
        login = apps.uncached.post(
            "/api/users/login",
            json={"user": {"email": me["email"], "password": "another-long-password"}},
        )
        assert login.status_code == 401


def test_signing_out_everywhere_here_with_a_token_ended_elsewhere_is_401(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        me = register(apps.here)
        remembered(apps.here, me)

        apps.notices.hold()
        changed = change_user(apps.there, me, password="another-long-password")
        assert changed.status_code == 200
        answer = apps.here.delete("/api/user/sessions", headers=auth(me))

        assert answer.status_code == 401, answer.get_data()
        renewed = {"Authorization": f"Token {changed.get_json()['user']['token']}"}
        assert apps.uncached.get("/api/user", headers=renewed).status_code == 200


# --- profiles and follows: the profile as stored, names as they are now -----------


def test_unfollowing_oneself_answers_the_bio_changed_elsewhere(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        kay = register(apps.here, username="Kay")
        assert change_user(apps.here, kay, bio="first").status_code == 200
        remembered(apps.here, kay)

        apps.notices.hold()
        assert change_user(apps.there, kay, bio="changed there").status_code == 200
        answer = apps.here.delete("/api/profiles/Kay/follow", headers=auth(kay))

        assert answer.status_code == 200, answer.get_data()
        assert answer.get_json()["profile"]["bio"] == "changed there"


def test_unfollowing_oneself_by_the_name_taken_elsewhere_answers_that_name(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        kay = register(apps.here, username="Kay")
        remembered(apps.here, kay)

        apps.notices.hold()
        assert change_user(apps.there, kay, username="Kai").status_code == 200
        answer = apps.here.delete("/api/profiles/Kai/follow", headers=auth(kay))

        assert answer.status_code == 200, answer.get_data()
        fresh = apps.uncached.get("/api/profiles/Kai", headers=auth(kay))
        assert answer.get_data() == fresh.get_data()


def test_following_oneself_by_the_name_taken_elsewhere_is_422(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        kay = register(apps.here, username="Kay")
        remembered(apps.here, kay)

        apps.notices.hold()
        assert change_user(apps.there, kay, username="Kai").status_code == 200
        answer = apps.here.post("/api/profiles/KAI/follow", headers=auth(kay))

        assert answer.status_code == 422, answer.get_data()
        assert answer.get_json() == {"errors": {"profile": ["cannot follow yourself"]}}


def test_following_the_name_one_gave_up_elsewhere_is_404(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        kay = register(apps.here, username="Kay")
        remembered(apps.here, kay)

        apps.notices.hold()
        assert change_user(apps.there, kay, username="Kai").status_code == 200
        answer = apps.here.post("/api/profiles/Kay/follow", headers=auth(kay))

        assert answer.status_code == 404, answer.get_data()


def test_following_a_user_renamed_elsewhere_answers_their_stored_profile(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        fan, kay = register(apps.here), register(apps.here, username="Kay")
        remembered(apps.here, fan)
        remembered(apps.here, kay)
        apps.here.get("/api/profiles/Kay", headers=auth(fan))

        apps.notices.hold()
        assert change_user(apps.there, kay, username="Kai", bio="b").status_code == 200
        answer = apps.here.post("/api/profiles/kai/follow", headers=auth(fan))

        assert answer.status_code == 200, answer.get_data()
        fresh = apps.uncached.get("/api/profiles/Kai", headers=auth(fan))
        assert answer.get_data() == fresh.get_data()


# --- names and slugs taken elsewhere -----------------------------------------------


def test_registering_a_name_taken_by_a_rename_elsewhere_is_422(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        kay = register(apps.here, username="Kay")
        remembered(apps.here, kay)
        apps.here.get("/api/profiles/Kai")

        apps.notices.hold()
        assert change_user(apps.there, kay, username="Kai").status_code == 200
        answer = apps.here.post(
            "/api/users",
            json={"user": {"username": "KAI", "email": "k2@example.com", "password": "p" * 10}},
        )

        assert answer.status_code == 422, answer.get_data()
        assert answer.get_json() == {"errors": {"username": ["has already been taken"]}}


def test_renaming_to_a_name_taken_by_a_rename_elsewhere_is_422_and_writes_nothing(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        kay, other = register(apps.here, username="Kay"), register(apps.here, username="Other")
        remembered(apps.here, kay)
        remembered(apps.here, other)

        apps.notices.hold()
        assert change_user(apps.there, kay, username="Kai").status_code == 200
        answer = change_user(apps.here, other, username="kai")

        assert answer.status_code == 422, answer.get_data()
        fresh = apps.uncached.get("/api/user", headers=auth(other)).get_json()["user"]
        assert fresh["username"] == "Other"


def test_taking_back_the_name_given_up_elsewhere_is_written(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        kay, other = register(apps.here, username="Kay"), register(apps.here, username="Other")
        remembered(apps.here, kay)
        remembered(apps.here, other)

        apps.notices.hold()
        assert change_user(apps.there, kay, username="Kai").status_code == 200
        answer = change_user(apps.here, other, username="Kay")

        assert answer.status_code == 200, answer.get_data()
        fresh = apps.uncached.get("/api/user", headers=auth(other)).get_json()["user"]
        assert fresh["username"] == "Kay"


def test_a_new_article_takes_the_slug_a_retitle_elsewhere_freed(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        author = register(apps.here)
        slug = create_article(apps.here, author, title="First Name")["slug"]
        remembered(apps.here, author)
        apps.here.get(f"/api/articles/{slug}")
        apps.here.get(f"/api/articles/{slug}")

        apps.notices.hold()
        assert put_article(apps.there, author, slug, {}, title="Second Name").status_code == 200
        created = create_article(apps.here, author, title="First Name")

        assert created["slug"] == "first-name"
        assert apps.uncached.get("/api/articles/second-name").status_code == 200


def test_a_retitle_here_to_a_slug_taken_by_a_retitle_elsewhere_gets_a_suffix(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        author = register(apps.here)
        one = create_article(apps.here, author, title="One")["slug"]
        two = create_article(apps.here, author, title="Two")["slug"]
        remembered(apps.here, author)

        apps.notices.hold()
        assert put_article(apps.there, author, one, {}, title="Wanted").status_code == 200
        answer = put_article(apps.here, author, two, {}, title="Wanted")

        assert answer.status_code == 200, answer.get_data()
        assert answer.get_json()["article"]["slug"] == "wanted-2"


# --- favorites, comments and new articles answer the author as stored --------------


def test_favoriting_ones_own_article_answers_the_profile_changed_elsewhere(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        author, slug, _ = an_article_cached_here(apps, title="Liked", username="Kay")

        apps.notices.hold()
        assert change_user(apps.there, author, username="Kai", bio="b").status_code == 200
        answer = apps.here.post(f"/api/articles/{slug}/favorite", headers=auth(author))

        assert answer.status_code == 200, answer.get_data()
        assert answer.get_data() == stored_article(apps, slug, author).get_data()


def test_an_unchanged_favorite_answers_the_count_changed_elsewhere(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        author, fan = register(apps.here), register(apps.here)
        slug = create_article(apps.here, author, title="Liked")["slug"]
        remembered(apps.here, fan)
        assert (
            apps.here.post(f"/api/articles/{slug}/favorite", headers=auth(fan)).status_code == 200
        )
        apps.here.get(f"/api/articles/{slug}", headers=auth(fan))

        apps.notices.hold()
        assert (
            apps.there.post(f"/api/articles/{slug}/favorite", headers=auth(author)).status_code
            == 200
        )
        answer = apps.here.post(f"/api/articles/{slug}/favorite", headers=auth(fan))

        assert answer.status_code == 200, answer.get_data()
        assert answer.get_json()["article"]["favoritesCount"] == 2
        assert answer.get_data() == stored_article(apps, slug, fan).get_data()


def test_a_comment_answers_its_author_as_changed_elsewhere(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        author = register(apps.here, username="Kay")
        slug = create_article(apps.here, author, title="Talked")["slug"]
        remembered(apps.here, author)

        apps.notices.hold()
        assert change_user(apps.there, author, username="Kai", bio="b").status_code == 200
        comment = add_comment(apps.here, author, slug)

        fresh = apps.uncached.get(f"/api/articles/{slug}/comments", headers=auth(author))
        assert [comment] == fresh.get_json()["comments"]


def test_a_new_article_answers_its_author_as_changed_elsewhere(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        author = register(apps.here, username="Kay")
        remembered(apps.here, author)

        apps.notices.hold()
        assert (
            change_user(apps.there, author, username="Kai", image="https://e.x/i").status_code
            == 200
        )
        answer = apps.here.post(
            "/api/articles",
            json={"article": {"title": "Fresh", "description": "d", "body": "b", "tagList": ["t"]}},
            headers=auth(author),
        )

        assert answer.status_code == 201, answer.get_data()
        read = stored_article(apps, "fresh", author)
        assert answer.get_data() == read.get_data()


def test_deleting_ones_comment_after_a_rename_elsewhere_is_204(postgres_url):
    with instances_with_late_notices(postgres_url) as apps:
        author = register(apps.here, username="Kay")
        slug = create_article(apps.here, author, title="Talked")["slug"]
        comment = add_comment(apps.here, author, slug)
        remembered(apps.here, author)

        apps.notices.hold()
        assert change_user(apps.there, author, username="Kai").status_code == 200
        answer = apps.here.delete(
            f"/api/articles/{slug}/comments/{comment['id']}", headers=auth(author)
        )

        assert answer.status_code == 204, answer.get_data()
        assert apps.uncached.get(f"/api/articles/{slug}/comments").get_json()["comments"] == []
