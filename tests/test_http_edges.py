"""HTTP at the edges, in-process: what real clients send that no route expects.

The socket-level cases (bodies cut short, broken chunks, uploads past the
limit, request lines past gunicorn's limit) run against gunicorn in
tests/test_served_edges.py.
"""

import flask
import pytest
from flask.sessions import NullSession
from werkzeug.test import EnvironBuilder, run_wsgi_app

from app.web.api import MAX_JSON_NESTING
from app.web.http_edges import MAX_URL_LENGTH
from tests.factories import PASSWORD, auth, create_article, minted_token_set_aside, register

ARTICLE = {"article": {"title": "Slash", "description": "d", "body": "b", "tagList": ["x"]}}


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/user", {}),
        ("GET", "/api/user", {"Authorization": "Token not.a.jwt"}),
        ("GET", "/api/user", {"Authorization": "Basic dXNlcjpwYXNz"}),
        ("POST", "/api/articles", {}),
        ("GET", "/api/articles/feed", {}),
    ],
    ids=["no token", "bad token", "other scheme", "create article", "feed"],
)
def test_every_401_names_the_token_scheme(client, method, path, headers):
    response = client.open(path, method=method, headers=headers, json=ARTICLE)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


def test_a_failed_login_names_the_token_scheme_too(client):
    response = client.post(
        "/api/users/login", json={"user": {"email": "nobody@example.com", "password": PASSWORD}}
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000, '{"user": ' * 100_000, '{"user": {"username": ' + "[" * 50_000],
    ids=["arrays", "objects", "inside the envelope"],
)
def test_json_nested_too_deeply_is_400(client, body):
    response = client.post("/api/users", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.get_json() == {"errors": {"body": ["is nested too deeply"]}}


def test_json_nesting_is_refused_past_its_limit_before_it_is_parsed(client):
    """64 levels are parsed (and then judged by the schema); 65 are refused unread, so the
    decoder never recurses near Python's limit."""
    at_limit = '{"user": ' + "[" * (MAX_JSON_NESTING - 1) + "]" * (MAX_JSON_NESTING - 1) + "}"
    past = '{"user": ' + "[" * MAX_JSON_NESTING + "]" * MAX_JSON_NESTING + "}"

    parsed = client.post("/api/users", data=at_limit, content_type="application/json")
    refused = client.post("/api/users", data=past, content_type="application/json")

    assert parsed.status_code == 422
    assert refused.status_code == 400
    assert refused.get_json() == {"errors": {"body": ["is nested too deeply"]}}


def test_brackets_inside_strings_are_no_nesting(client):
    body = {"user": {"username": "[" * 500, "email": "{" * 500, "password": "x"}}

    response = client.post("/api/users/login", json=body)

    assert response.status_code == 401, response.get_json()  # read, then no such account


def test_a_frontend_can_publish_through_a_trailing_slash(client, jake):
    response = client.post("/api/articles/", json=ARTICLE, headers=auth(jake))

    assert response.status_code == 201
    assert client.get("/api/articles").get_json()["articlesCount"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/articles/",
        "/api/articles/feed/",
        "/api/articles/{slug}/",
        "/api/articles/{slug}/comments/",
        "/api/profiles/jake/",
        "/api/tags/",
        "/api/user/",
    ],
)
def test_a_trailing_slash_answers_as_the_path_without_it(client, jake, path):
    slug = create_article(client, jake)["slug"]
    path = path.format(slug=slug)

    with_slash = client.get(path, headers=auth(jake))
    without = client.get(path.rstrip("/"), headers=auth(jake))

    assert with_slash.status_code == without.status_code == 200
    assert comparable(with_slash.get_json()) == comparable(without.get_json())


def comparable(body: dict) -> dict:
    """An answer as it compares: /api/user's token is minted afresh for each request."""
    return minted_token_set_aside(body) if "user" in body else body


def test_a_trailing_slash_deletes_as_without(client, jake):
    slug = create_article(client, jake)["slug"]

    response = client.delete(f"/api/articles/{slug}/", headers=auth(jake))

    assert response.status_code == 204
    assert client.get(f"/api/articles/{slug}").status_code == 404


def settings_form(user: dict, **fields: str | None) -> dict:
    """What public frontends' settings page sends: every field, blank ones included."""
    form = {
        "image": "",
        "username": user["username"],
        "bio": "",
        "email": user["email"],
        "password": "",
    }
    return {"user": {**form, **fields}}


def test_the_settings_form_with_a_blank_password_keeps_the_password(client, jake):
    response = client.put("/api/user", json=settings_form(jake, bio="Hi"), headers=auth(jake))

    assert response.status_code == 200
    login = {"user": {"email": jake["email"], "password": PASSWORD}}
    assert client.post("/api/users/login", json=login).status_code == 200


def test_the_settings_form_with_a_blank_image_clears_it(client, jake):
    client.put("/api/user", json={"user": {"image": "https://x.test/a.png"}}, headers=auth(jake))

    response = client.put("/api/user", json=settings_form(jake), headers=auth(jake))

    assert response.status_code == 200
    assert response.get_json()["user"]["image"] is None
    assert response.get_json()["user"]["bio"] is None


def test_the_settings_form_with_a_new_password_changes_it(client, jake):
    response = client.put(
        "/api/user", json=settings_form(jake, password="a-new-password"), headers=auth(jake)
    )

    assert response.status_code == 200
    login = {"user": {"email": jake["email"], "password": "a-new-password"}}
    assert client.post("/api/users/login", json=login).status_code == 200


def test_a_short_new_password_is_still_refused(client, jake):
    response = client.put("/api/user", json={"user": {"password": "short"}}, headers=auth(jake))

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["password"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/articles?tag=" + "x" * MAX_URL_LENGTH,
        "/api/profiles/" + "x" * MAX_URL_LENGTH,
        "/api/nothing/" + "x" * MAX_URL_LENGTH,
    ],
    ids=["query", "path", "unknown path"],
)
def test_a_url_over_the_limit_is_414(client, url):
    response = client.get(url)

    assert response.status_code == 414
    assert response.get_json() == {
        "errors": {"url": [f"is too long (maximum is {MAX_URL_LENGTH} bytes)"]}
    }


def test_a_url_at_the_limit_is_answered(client):
    url = "/api/articles?tag="
    response = client.get(url + "x" * (MAX_URL_LENGTH - len(url)))

    assert response.status_code == 200


def test_a_body_shorter_than_its_content_length_is_400_and_writes_nothing(client, sql):
    body = b'{"user": {"username": "kay", "email": "kay@example.com", "password": "%s"}}' % (
        PASSWORD.encode()
    )

    response = client.post(
        "/api/users",
        data=body,
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 10)},
    )

    assert response.status_code == 400
    assert sql("SELECT count(*) FROM users") == [(0,)]


def test_register_still_answers_201_at_the_exact_content_length(client):
    assert register(client, username="kay")["username"] == "kay"


def test_doubled_slashes_are_one(client, jake):
    response = client.post("/api/articles//", json=ARTICLE, headers=auth(jake))

    assert response.status_code == 201
    assert client.get("/api//articles").get_json()["articlesCount"] == 1


def test_no_route_is_declared_with_a_trailing_slash(app):
    # Paths lose their trailing slash before routing (all but the root itself):
    # such a route could never match.
    rules = [rule.rule for rule in app.url_map.iter_rules()]
    assert [rule for rule in rules if rule.endswith("/") and rule != "/"] == []


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate, gzip", "x-unknown"])
def test_a_content_coded_body_is_415_and_writes_nothing(client, sql, coding):
    body = {"user": {"username": "jake", "email": "jake@example.com", "password": PASSWORD}}

    response = client.post("/api/users", json=body, headers={"Content-Encoding": coding})

    assert response.status_code == 415
    assert response.get_json() == {
        "errors": {"body": [f"must not be encoded (Content-Encoding: {coding} is not supported)"]}
    }
    assert sql("SELECT count(*) FROM users") == [(0,)]


def test_an_identity_coded_body_is_read_as_sent(client):
    body = {"user": {"username": "jake", "email": "jake@example.com", "password": PASSWORD}}

    response = client.post("/api/users", json=body, headers={"Content-Encoding": "identity"})

    assert response.status_code == 201


HUGE_INTEGER = "9" * 5_000  # past CPython's 4,300-digit limit for int()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/users/login", '{"user": {"email": "a@b.c", "password": %s}}'),
        ("PUT", "/api/user", '{"user": {"bio": %s}}'),
        ("POST", "/api/articles", '{"article": {"title": "t", "description": "d", "body": %s}}'),
        ("POST", "/api/users", '{"user": {"username": "u", "email": "e@x.io", "password": %s}}'),
    ],
    ids=["login", "update user", "create article", "register"],
)
@pytest.mark.parametrize("value", [HUGE_INTEGER, "NaN", "-Infinity"], ids=["digits", "nan", "inf"])
def test_a_value_the_decoder_refuses_is_400_and_writes_nothing(
    client, jake, method, path, body, value
):
    response = client.open(
        path, method=method, data=body % value, content_type="application/json", headers=auth(jake)
    )

    assert response.status_code == 400
    assert response.get_json() == {"errors": {"body": ["is not valid JSON"]}}
    assert client.get("/api/articles").get_json()["articlesCount"] == 0
    assert client.get("/api/user", headers=auth(jake)).get_json()["user"]["bio"] is None


@pytest.mark.parametrize(
    "body",
    [
        '{"user": {"email": "a@b.c", "email": "d@e.f", "password": "x"}}',
        '{"user": {"email": "a@b.c", "password": "x"}, "user": {}}',
    ],
    ids=["inside the envelope", "the envelope itself"],
)
def test_a_member_named_twice_is_400_naming_it(client, body):
    response = client.post("/api/users/login", data=body, content_type="application/json")

    assert response.status_code == 400
    (message,) = response.get_json()["errors"]["body"]
    assert message.startswith("names the member '")
    assert ("'email'" in message) if '"email": "d' in body else ("'user'" in message)


@pytest.mark.parametrize("host", ["bad host", "a/b", "", "exa mple.com:80", "[::1", "x:y"])
def test_an_invalid_host_header_is_400(client, host):
    response = client.get("/api/tags", environ_overrides={"HTTP_HOST": host})

    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == ["Host"]


@pytest.mark.parametrize(
    "host", ["conduit.test", "conduit.test:8080", "127.0.0.1:5000", "[::1]:80"]
)
def test_a_valid_host_header_is_served(client, host):
    assert client.get("/api/tags", environ_overrides={"HTTP_HOST": host}).status_code == 200


@pytest.mark.parametrize(("protocol", "status"), [("HTTP/1.1", 400), ("HTTP/1.0", 200)])
def test_a_missing_host_header_is_400_in_http_1_1_only(app, protocol, status):
    environ = EnvironBuilder(path="/api/tags").get_environ()
    del environ["HTTP_HOST"]
    environ["SERVER_PROTOCOL"] = protocol

    _, answered, _ = run_wsgi_app(app.wsgi_app, environ, buffered=True)

    assert int(answered.split()[0]) == status


def test_requests_get_flasks_null_session(app):
    """The API is stateless (a token per request): Flask's cookie session is never opened."""
    with app.test_request_context("/api/articles"):
        assert isinstance(flask.session, NullSession)
