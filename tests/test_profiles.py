"""Profiles and follows."""

import pytest

from tests.factories import auth, follow


def test_get_profile_anonymously(client, jake):
    response = client.get("/api/profiles/jake")

    assert response.status_code == 200
    assert response.get_json() == {
        "profile": {"username": "jake", "bio": None, "image": None, "following": False}
    }


def test_unknown_profile_is_404(client):
    response = client.get("/api/profiles/nobody")

    assert response.status_code == 404
    assert response.get_json() == {"errors": {"profile": ["not found"]}}


def test_follow_returns_the_followed_profile(client, jake, anna):
    response = client.post("/api/profiles/jake/follow", headers=auth(anna))

    assert response.status_code == 200
    assert response.get_json()["profile"] == {
        "username": "jake",
        "bio": None,
        "image": None,
        "following": True,
    }


def test_profile_shows_following_to_the_follower_only(client, jake, anna):
    follow(client, anna, "jake")

    as_anna = client.get("/api/profiles/jake", headers=auth(anna)).get_json()["profile"]
    anonymous = client.get("/api/profiles/jake").get_json()["profile"]

    assert as_anna["following"] is True
    assert anonymous["following"] is False


def test_following_twice_is_not_an_error(client, jake, anna, sql):
    follow(client, anna, "jake")

    response = client.post("/api/profiles/jake/follow", headers=auth(anna))

    assert response.status_code == 200
    assert sql("SELECT count(*) FROM follows") == [(1,)]


def test_unfollow(client, jake, anna):
    follow(client, anna, "jake")

    response = client.delete("/api/profiles/jake/follow", headers=auth(anna))

    assert response.status_code == 200
    assert response.get_json()["profile"]["following"] is False
    assert (
        client.get("/api/profiles/jake", headers=auth(anna)).get_json()["profile"]["following"]
        is False
    )


def test_unfollowing_someone_not_followed_is_not_an_error(client, jake, anna):
    response = client.delete("/api/profiles/jake/follow", headers=auth(anna))

    assert response.status_code == 200


def test_following_yourself_is_422(client, jake):
    response = client.post("/api/profiles/jake/follow", headers=auth(jake))

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"profile": ["cannot follow yourself"]}}


def test_following_an_unknown_user_is_404(client, anna):
    response = client.post("/api/profiles/nobody/follow", headers=auth(anna))

    assert response.status_code == 404


@pytest.mark.parametrize("method", ["post", "delete"])
def test_follow_and_unfollow_require_a_token(client, jake, method):
    response = getattr(client, method)("/api/profiles/jake/follow")

    assert response.status_code == 401
