"""Bad input gets a clear 4xx in the one envelope, never a 500, and writes nothing."""

import marshmallow as ma
import pytest

from app.web.fields import String
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


def text_fields(schema: ma.Schema, path: str = "") -> list[tuple[str, ma.fields.Field]]:
    """Every field of ``schema`` (nested schemas and list items included) that loads text."""
    found = []
    for name, field in schema.load_fields.items():
        inner = field.inner if isinstance(field, ma.fields.List) else field
        if isinstance(inner, ma.fields.Nested):
            found += text_fields(inner.schema, f"{path}{name}.")
        elif isinstance(inner, ma.fields.String):
            found.append((f"{path}{name}", inner))
    return found


def request_schemas(app) -> list[tuple[str, ma.Schema]]:
    """The schema of every ``@blp.arguments`` of every route (body, query and path)."""
    schemas = []
    for endpoint, view in app.view_functions.items():
        view_class = getattr(view, "view_class", None)
        for method in getattr(view_class, "methods", None) or ():
            handler = getattr(view_class, method.lower())
            for argument in (
                getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", [])
            ):
                schema = argument["schema"]
                schemas.append(
                    (f"{method} {endpoint}", schema() if isinstance(schema, type) else schema)
                )
    return schemas


def test_every_text_field_a_request_loads_refuses_what_no_database_stores(app):
    """Each one is an ``app.web.fields.String`` (NUL and lone surrogates are 422), whatever
    else it checks: an email's own check once let a lone surrogate in its domain through to
    the database driver, which raised (a 500)."""
    loaded = [
        (f"{operation}: {name}", field)
        for operation, schema in request_schemas(app)
        for name, field in text_fields(schema)
    ]

    assert loaded
    assert [name for name, field in loaded if not isinstance(field, String)] == []


@pytest.mark.parametrize("email", ["a@\ud800.com", "a@\udfff\ud800.com", "a@x\x00.com"])
def test_an_email_no_database_stores_is_422_on_registration(client, email):
    response = client.post(
        "/api/users",
        json={"user": {"username": "newbie", "email": email, "password": "correct-horse"}},
    )

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["email"]


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
