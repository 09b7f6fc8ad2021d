"""Bad input gets a clear 4xx in the one envelope, never a 500, and writes nothing."""

import pytest

from tests.factories import auth, create_article, register


def assert_envelope(response):
    body = response.get_json()
    assert set(body) == {"errors"}
    assert all(
        isinstance(messages, list) and all(isinstance(m, str) for m in messages)
        for messages in body["errors"].values()
    )


def test_malformed_json_is_400(client):
    response = client.post("/api/users", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.get_json() == {"errors": {"body": ["is not valid JSON"]}}


def test_body_that_is_not_json_is_415(client):
    response = client.post("/api/users", data="user=jake", content_type="text/plain")

    assert response.status_code == 415
    assert_envelope(response)


def test_missing_body_is_422_naming_the_envelope(client):
    response = client.post("/api/users")

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"user": ["can't be blank"]}}


@pytest.mark.parametrize("payload", [[], "text", 1, None, {"user": "jake"}, {"user": []}])
def test_wrong_shaped_json_is_422(client, payload):
    response = client.post("/api/users", json=payload)

    assert response.status_code == 422
    assert_envelope(response)


def test_unknown_route_is_404_in_the_envelope(client):
    response = client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.get_json() == {"errors": {"body": ["not found"]}}


def test_wrong_method_is_405_with_allow_header(client):
    response = client.delete("/api/tags")

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD", "OPTIONS"}
    assert_envelope(response)


def test_body_over_one_mebibyte_is_413(client):
    user = register(client)

    response = client.post(
        "/api/articles",
        json={"article": {"title": "t", "description": "d", "body": "x" * (1024 * 1024)}},
        headers=auth(user),
    )

    assert response.status_code == 413
    assert_envelope(response)


@pytest.mark.parametrize(
    "header",
    ["Token", "Token ", "Token not.a.jwt", "Basic dXNlcjpwYXNz", "Token a.b.c.d", "garbage"],
)
def test_malformed_authorization_is_401(client, header):
    response = client.get("/api/user", headers={"Authorization": header})

    assert response.status_code == 401
    assert list(response.get_json()["errors"]) == ["token"]


def test_invalid_token_on_optional_auth_endpoint_is_401(client):
    response = client.get("/api/articles", headers={"Authorization": "Token nope"})

    assert response.status_code == 401


@pytest.mark.parametrize("text", ["nul\x00byte", "lone \ud800 surrogate"])
def test_text_the_database_cannot_store_is_422(client, text):
    user = register(client)

    response = client.post(
        "/api/articles",
        json={"article": {"title": text, "description": "d", "body": "b"}},
        headers=auth(user),
    )

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["title"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/articles/a%00b",
        "/api/profiles/a%00b",
        "/api/articles?tag=a%00b",
        "/api/articles?author=a%00b",
        "/api/articles/a%00b/comments",
    ],
)
def test_nul_in_path_or_query_is_a_4xx(client, url):
    response = client.get(url)

    assert 400 <= response.status_code < 500
    assert_envelope(response)


def test_overlong_title_is_422(client):
    user = register(client)

    response = client.post(
        "/api/articles",
        json={"article": {"title": "t" * 1000, "description": "d", "body": "b"}},
        headers=auth(user),
    )

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["title"]


def test_failed_create_writes_nothing(client, sql):
    user = register(client)

    client.post(
        "/api/articles",
        json={"article": {"title": "t", "description": "d", "body": "b", "tagList": ["ok", ""]}},
        headers=auth(user),
    )

    assert sql("SELECT count(*) FROM articles") == [(0,)]
    assert sql("SELECT count(*) FROM tags") == [(0,)]


def test_failed_update_changes_nothing(client):
    user = register(client, username="jake")
    register(client, username="taken")

    client.put(
        "/api/user", json={"user": {"bio": "new bio", "username": "taken"}}, headers=auth(user)
    )

    assert client.get("/api/user", headers=auth(user)).get_json()["user"]["bio"] is None


def test_unexpected_errors_answer_a_generic_500(app, client, monkeypatch):
    from app.tags import service

    def explode():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "popular_tags", explode)

    response = client.get("/api/tags")

    assert response.status_code == 500
    assert response.get_json() == {"errors": {"body": ["internal server error"]}}
    assert b"secret internals" not in response.data


def test_update_of_an_article_rolls_back_on_invalid_tags(client, sql):
    user = register(client)
    article = create_article(client, user, tagList=["kept"])

    response = client.put(
        f"/api/articles/{article['slug']}",
        json={"article": {"title": "Changed", "tagList": [""]}},
        headers=auth(user),
    )

    assert response.status_code == 422
    assert client.get(f"/api/articles/{article['slug']}").get_json()["article"]["tagList"] == [
        "kept"
    ]
