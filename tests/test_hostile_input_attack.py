"""Hostile input on every endpoint, on SQLite and PostgreSQL: a 4xx in the envelope, never a 500.

What a client sends that no honest client would: wrong JSON types at every
level, text no database stores, bodies in other encodings or none, odd query
and path values, malformed and forged tokens, odd conditional headers. Each
rule of docs/api.md checked here: no 500; every error is
``{"errors": {"<field>": ["<message>"]}}`` naming the field at fault; a
refused request writes nothing; the status says why (400 malformed, 401 auth,
404 missing, 415 not JSON, 422 invalid). A few requests go through gunicorn,
where the server's own parser and the custom worker (app/web/worker.py) meet
the bytes first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.config import DEFAULT_SIGNING_KEY_ID
from tests.apps import TEST_SECRET_KEY
from tests.factories import PASSWORD, add_comment, auth, create_article, register
from tests.serving import ServedApp, exchange, http_request, port_of

TABLES = ("users", "articles", "comments", "tags", "favorites", "follows")


# ---------------------------------------------------------------- helpers


def envelope_fields(response: TestResponse) -> list[str]:
    """The fields a 4xx names, after checking it is the one envelope (and JSON, not HTML)."""
    assert response.status_code < 500, (response.status_code, response.data[:300])
    assert response.mimetype == "application/json", response.data[:300]
    body = response.get_json()
    assert set(body) == {"errors"}, body
    errors = body["errors"]
    assert errors, body
    for field, messages in errors.items():
        assert isinstance(field, str) and field
        assert isinstance(messages, list) and messages
        assert all(isinstance(message, str) and message for message in messages), body
    return list(errors)


def snapshot(sql: Callable[..., list[Any]]) -> dict[str, list[Any]]:
    """Every row a request could write, to compare before and after it."""
    return {
        table: sorted(map(tuple, sql(f"SELECT * FROM {table}")), key=repr)  # noqa: S608
        for table in TABLES
    }


@pytest.fixture
def world(client: FlaskClient) -> dict[str, Any]:
    """jake wrote an article (tagged) that anna commented on; anna follows jake."""
    jake = register(client, username="jake")
    anna = register(client, username="anna")
    article = create_article(client, jake, tagList=["kept"])
    comment = add_comment(client, anna, article["slug"])
    client.post("/api/profiles/jake/follow", headers=auth(anna))
    return {"jake": jake, "anna": anna, "slug": article["slug"], "comment": comment}


@pytest.fixture
def unchanged(sql) -> Iterator[None]:
    """The test's requests leave every row as it was."""
    before = snapshot(sql)
    yield
    assert snapshot(sql) == before


# ------------------------------------------------- JSON values of the wrong type

NOT_A_STRING = [None, True, False, 0, -1, 1.5, 10**30, [], ["a"], {}, {"a": "b"}]
NOT_STORABLE = ["\x00", "a\x00b", "\ud800", "a\udfffb", "\ud800\udc00"[::-1]]


def _bodies(world: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any], str]]:
    """(method, path, who, body template, field at fault)."""
    slug = world["slug"]
    new_user = {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD}
    article = {"title": "T", "description": "d", "body": "b"}
    cases = []
    for field in ("username", "email", "password"):
        cases.append(("POST", "/api/users", "", {"user": new_user}, field))
    for field in ("email", "password"):
        cases.append(("POST", "/api/users/login", "", {"user": {**new_user}}, field))
    for field in ("username", "email", "password", "bio", "image"):
        cases.append(("PUT", "/api/user", "jake", {"user": {}}, field))
    for field in ("title", "description", "body", "tagList"):
        cases.append(("POST", "/api/articles", "jake", {"article": article}, field))
        cases.append(("PUT", f"/api/articles/{slug}", "jake", {"article": {}}, field))
    cases.append(("POST", f"/api/articles/{slug}/comments", "anna", {"comment": {}}, "body"))
    return cases


def _with(template: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    ((envelope, inner),) = template.items()
    return {envelope: {**inner, field: value}}


NULLABLE = {("PUT", "bio"), ("PUT", "image")}  # null clears them (docs/api.md)


WRONG_VALUES = NOT_A_STRING + NOT_STORABLE


def test_a_field_of_the_wrong_type_or_unstorable_text_is_422_naming_it_and_writes_nothing(
    client, world, sql
):
    for value in WRONG_VALUES:
        before = snapshot(sql)
        failures = []
        for method, path, who, template, field in _bodies(world):
            if value is None and (method, field) in NULLABLE:
                continue
            if field == "tagList" and value in ([], ["a"]):
                continue  # a list of strings (or none) is what tagList takes
            headers = auth(world[who]) if who else {}
            response = client.open(
                path, method=method, json=_with(template, field, value), headers=headers
            )
            fields = envelope_fields(response) if response.status_code >= 400 else []
            if response.status_code != 422 or fields != [field]:
                failures.append((method, path, field, response.status_code, response.data[:120]))
        assert failures == []
        assert snapshot(sql) == before


BAD_TAGS = [None, 1, True, [], ["x"], {}, "", " ", "\u200b", "\x00", "\ud800", "x" * 101]


def test_a_tag_list_with_one_bad_item_is_422_and_writes_nothing(client, world, sql):
    for item in BAD_TAGS:
        before = snapshot(sql)
        for method, path in (("POST", "/api/articles"), ("PUT", f"/api/articles/{world['slug']}")):
            body = {
                "article": {"title": "T", "description": "d", "body": "b", "tagList": ["ok", item]}
            }

            response = client.open(path, method=method, json=body, headers=auth(world["jake"]))

            assert response.status_code == 422, response.data
            assert envelope_fields(response) == ["tagList"]
        assert snapshot(sql) == before


WRAPPED = [
    ("POST", "/api/users", "user"),
    ("POST", "/api/users/login", "user"),
    ("PUT", "/api/user", "user"),
    ("POST", "/api/articles", "article"),
    ("PUT", "/api/articles/{slug}", "article"),
    ("POST", "/api/articles/{slug}/comments", "comment"),
]


WRONG_SHAPES = [
    None,
    [],
    [{}],
    "x",
    0,
    True,
    {"wrong": {}},
    "ENV:null",
    "ENV:[]",
    'ENV:"x"',
    "ENV:1",
    "ENV:[{}]",
]


def test_a_body_of_the_wrong_shape_is_422_naming_the_envelope_and_writes_nothing(
    client, world, sql
):
    for body in WRONG_SHAPES:
        before = snapshot(sql)
        for method, path, envelope in WRAPPED:
            sent = body
            if isinstance(body, str) and body.startswith("ENV:"):
                sent = {envelope: json.loads(body[4:])}

            response = client.open(
                path.format(slug=world["slug"]),
                method=method,
                json=sent,
                headers=auth(world["jake"]),
            )

            assert response.status_code == 422, (method, path, response.data)
            fields = envelope_fields(response)
            assert fields in ([envelope], ["body"]), (method, path, fields)
        assert snapshot(sql) == before


# ------------------------------------------------------ bodies that are not JSON

BAD_BYTES = [
    (b"", None),
    (b"\xef\xbb\xbf{}", 400),  # a BOM: RFC 8259 §8.1 says MUST NOT add; may ignore
    (b'{"user": {"bio": "\xe9"}}', 400),  # latin-1, not UTF-8
    (b'{"user": {"bio": "\xed\xa0\x80"}}', 400),  # an encoded surrogate: not UTF-8
    (b'{"user": {"bio": "\xc0\xaf"}}', 400),  # an overlong encoding
    (b"\xff\xfe{\x00}\x00", 400),  # UTF-16
    (b"{", 400),
    (b'{"user": {"bio": "a"}} x', 400),
    (b"[" * 5000 + b"]" * 5000, None),  # deep but parseable: a 4xx either way
    (b'{"user": {"bio": 1e999}}', None),
]


def test_bytes_that_are_not_one_json_text_are_4xx_and_write_nothing(client, world, sql):
    for data, status in BAD_BYTES:
        before = snapshot(sql)
        for method, path, _ in WRAPPED:
            response = client.open(
                path.format(slug=world["slug"]),
                method=method,
                data=data,
                content_type="application/json",
                headers=auth(world["jake"]),
            )

            envelope_fields(response)
            assert 400 <= response.status_code < 500, (method, path)
            if status is not None:
                assert response.status_code == status, (method, path)
        assert snapshot(sql) == before


OTHER_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "text/json",
    "application/jsonx",
]


def test_a_json_body_under_another_content_type_is_415_and_writes_nothing(client, world, sql):
    for content_type in OTHER_TYPES:
        before = snapshot(sql)
        body = json.dumps({"article": {"title": "T", "description": "d", "body": "b"}})

        response = client.post(
            "/api/articles", data=body, content_type=content_type, headers=auth(world["jake"])
        )

        assert response.status_code == 415, response.data
        assert envelope_fields(response) == ["body"]
        assert snapshot(sql) == before


JSON_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/json; charset=latin-1",
    "application/vnd.api+json",
]


def test_ascii_json_is_read_whatever_the_json_media_types_parameters(client, world):
    for content_type in JSON_TYPES:
        body = json.dumps({"article": {"title": "T", "description": "d", "body": "b"}})

        response = client.post(
            "/api/articles", data=body, content_type=content_type, headers=auth(world["jake"])
        )

        assert response.status_code == 201, response.data


def test_a_latin_1_body_labelled_latin_1_is_refused_not_misread(client, world, sql):
    """RFC 8259 §8.1: JSON is UTF-8; a charset parameter changes nothing, so é is no 'Ã©'."""
    before = snapshot(sql)
    body = '{"user": {"bio": "café"}}'.encode("latin-1")

    response = client.put(
        "/api/user",
        data=body,
        content_type="application/json; charset=latin-1",
        headers=auth(world["jake"]),
    )

    assert response.status_code == 400
    assert envelope_fields(response) == ["body"]
    assert snapshot(sql) == before


def test_a_missing_content_type_with_a_json_body_is_415(client, world, sql):
    before = snapshot(sql)

    response = client.put("/api/user", data=b'{"user": {"bio": "x"}}', headers=auth(world["jake"]))

    assert response.status_code == 415
    assert envelope_fields(response) == ["body"]
    assert snapshot(sql) == before


# ---------------------------------------------------------------- long strings

LIMITS = [
    ("POST", "/api/users", "user", "username", 64),
    ("PUT", "/api/user", "user", "username", 64),
    ("PUT", "/api/user", "user", "bio", 10_000),
    ("PUT", "/api/user", "user", "image", 2048),
    ("POST", "/api/articles", "article", "title", 255),
    ("POST", "/api/articles", "article", "description", 10_000),
    ("PUT", "/api/articles/{slug}", "article", "title", 255),
    ("POST", "/api/articles/{slug}/comments", "comment", "body", 10_000),
]


@pytest.mark.parametrize(("method", "path", "envelope", "field", "limit"), LIMITS)
def test_a_string_one_past_its_limit_is_422_and_at_it_is_accepted(
    client, world, sql, method, path, envelope, field, limit
):
    base = (
        {
            "user": {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD},
            "article": {"title": "T", "description": "d", "body": "b"},
            "comment": {},
        }[envelope]
        if method == "POST"
        else {}
    )
    path = path.format(slug=world["slug"])
    who = auth(world["anna"] if "comments" in path else world["jake"])
    before = snapshot(sql)

    over = client.open(
        path, method=method, headers=who, json={envelope: {**base, field: "x" * (limit + 1)}}
    )
    far_over = client.open(
        path, method=method, headers=who, json={envelope: {**base, field: "x" * (100 * limit)}}
    )

    for response in (over, far_over):
        assert response.status_code == 422, response.data[:200]
        assert envelope_fields(response) == [field]
    assert snapshot(sql) == before
    at = client.open(
        path, method=method, headers=who, json={envelope: {**base, field: "x" * limit}}
    )
    assert at.status_code in (200, 201), at.data[:200]


LONG_PASSWORD_LENGTHS = [257, 1000, 500_000]


def test_a_password_past_256_characters_is_422_at_registration_and_change(client, world, sql):
    for length in LONG_PASSWORD_LENGTHS:
        before = snapshot(sql)
        new_user = {"username": "newbie", "email": "newbie@example.com", "password": "p" * length}

        registered = client.post("/api/users", json={"user": new_user})
        changed = client.put(
            "/api/user", json={"user": {"password": "p" * length}}, headers=auth(world["jake"])
        )

        for response in (registered, changed):
            assert response.status_code == 422
            assert envelope_fields(response) == ["password"]
        assert snapshot(sql) == before


ABSURD_PASSWORDS = ["p" * 500_000, "pass\x00word-long", "\ud800" * 10]


def test_a_login_with_an_absurd_password_is_a_4xx_naming_credentials(client, world):
    for password in ABSURD_PASSWORDS:
        response = client.post(
            "/api/users/login",
            json={"user": {"email": world["jake"]["email"], "password": password}},
        )

        assert response.status_code in (401, 422)
        assert envelope_fields(response)


# --------------------------------------------- usernames and emails in odd Unicode


BAD_USERNAMES = [
    "jake\u200b",  # zero-width space
    "\u200fjake",  # right-to-left mark
    "ja\u202eke",  # right-to-left override
    "jake\ufeff",  # BOM / zero-width no-break space
    "\u0301jake",  # starts with a combining mark
    "jake\n",
    "ja ke",
    "ja/ke",
    "ja%ke",
    "ja?ke",
    "ja#ke",
    ".",
    "..",
    "\U0001d423ake",  # mathematical bold j: outside the BMP
    "jake\U000e0001",  # a tag character (Cf) outside the BMP
    "x" * 65,
]


def test_a_username_outside_the_published_characters_is_422_and_writes_nothing(client, sql):
    for username in BAD_USERNAMES:
        before = snapshot(sql)
        response = client.post(
            "/api/users",
            json={"user": {"username": username, "email": "odd@example.com", "password": PASSWORD}},
        )

        assert response.status_code == 422, response.data
        assert envelope_fields(response) == ["username"]
        assert snapshot(sql) == before


JAKE_SPELLINGS = ["JAKE", "\uff4a\uff41\uff4b\uff45", "\uff2aake", "jaKe"]


def test_another_spelling_of_a_taken_username_is_taken_at_registration(client, world, sql):
    for spelling in JAKE_SPELLINGS:
        before = snapshot(sql)
        response = client.post(
            "/api/users",
            json={
                "user": {"username": spelling, "email": "other@example.com", "password": PASSWORD}
            },
        )

        assert response.status_code == 422
        assert envelope_fields(response) == ["username"]
        assert snapshot(sql) == before


@pytest.mark.parametrize(
    "email",
    [
        "JAKE@EXAMPLE.COM",  # registered as user<n>@example.com: see below
        "\uff4a\uff41\uff4b\uff45\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
    ],
    ids=ascii,
)
def test_another_spelling_of_a_taken_email_is_taken(client, sql, email):
    register(client, username="jake", email="jake@example.com")
    before = snapshot(sql)

    response = client.post(
        "/api/users",
        json={"user": {"username": "other", "email": email, "password": PASSWORD}},
    )

    assert response.status_code == 422, response.data
    assert envelope_fields(response) == ["email"]
    assert snapshot(sql) == before


BAD_EMAILS = [
    "not-an-email",
    "a@",
    "@b.c",
    "a@b@c.d",
    "a @b.c",
    "a@b.c\n",
    "a\x00@b.c",
    "\ud800@b.c",
    "a@b.\ud800",
    "a@b\x00.com",
    "a@" + "b" * 250 + ".com",
    '"\x00"@b.c',
    "a@b..c",
    "",
]


def test_an_email_that_is_not_one_is_422_at_registration_and_change(client, world, sql):
    for email in BAD_EMAILS:
        before = snapshot(sql)

        registered = client.post(
            "/api/users",
            json={"user": {"username": "newbie", "email": email, "password": PASSWORD}},
        )
        changed = client.put(
            "/api/user", json={"user": {"email": email}}, headers=auth(world["jake"])
        )

        for response in (registered, changed):
            assert response.status_code == 422, response.data
            assert envelope_fields(response) == ["email"]
        assert snapshot(sql) == before


@pytest.mark.parametrize(
    "email", ["a@\ud800.com", "a@\udfff\ud800.com", "a@\ud800.\ud800.io"], ids=ascii
)
@pytest.mark.parametrize("how", ["registration", "settings"])
def test_an_email_whose_domain_holds_a_lone_surrogate_is_422_not_500(
    client, world, sql, email, how
):
    before = snapshot(sql)

    if how == "registration":
        response = client.post(
            "/api/users",
            json={"user": {"username": "newbie", "email": email, "password": PASSWORD}},
        )
    else:
        response = client.put(
            "/api/user", json={"user": {"email": email}}, headers=auth(world["jake"])
        )

    assert snapshot(sql) == before
    assert response.status_code == 422, response.data
    assert envelope_fields(response) == ["email"]


# ------------------------------------------------------------- query parameters

LIST_PATHS = ["/api/articles", "/api/articles/feed"]


NOT_PAGE_INTEGERS = [
    "-1",
    "abc",
    "1.5",
    "1e2",
    "1e309",
    str(2**63),
    str(2**31),
    "9" * 5000,
    "٣",
    "\uff15",
    "+5",
    " 5",
    "5 ",
    "5_0",
    "0x10",
    "",
    "%00",
    "5%00",
    "%ff",
    "%",
    "NaN",
    "Infinity",
    "true",
]


def test_a_page_argument_that_is_no_integer_in_range_is_422_naming_it(client, world):
    for value in NOT_PAGE_INTEGERS:
        for name in ("limit", "offset"):
            for path in LIST_PATHS:
                response = client.get(f"{path}?{name}={value}", headers=auth(world["anna"]))

                assert response.status_code == 422, (name, path, response.data)
                assert envelope_fields(response) == [name]


BAD_PAGE_SIZES = [("limit", "0"), ("limit", "101")]


def test_a_page_size_outside_1_to_100_is_422(client, world):
    for name, value in BAD_PAGE_SIZES:
        for path in LIST_PATHS:
            response = client.get(f"{path}?{name}={value}", headers=auth(world["anna"]))

            assert response.status_code == 422
            assert envelope_fields(response) == [name]


GOOD_PAGES = [
    ("limit=1", 1),
    ("limit=100", 1),
    ("offset=0", 1),
    ("offset=1", 0),
    (f"offset={2**31 - 1}", 0),
    ("limit=0001", 1),
    ("limit=1&limit=500", 1),
    ("junk=%ff", 1),
]


def test_page_arguments_in_range_page_the_one_article(client, world):
    for query, count in GOOD_PAGES:
        for path in LIST_PATHS:
            response = client.get(f"{path}?{query}", headers=auth(world["anna"]))

            assert response.status_code == 200, response.data
            body = response.get_json()
            assert len(body["articles"]) == count
            assert body["articlesCount"] == 1


ODD_FILTERS = [
    "%00",
    "a%00",
    "%ff",
    "%",
    "%zz",
    "%ed%a0%80",
    "%c0%af",
    "x" * 7000,
    "%E2%80%AE",
    "\u202e",
    "..",
    "%2F",
    "a&b",
    "%0a",
]


def test_a_filter_with_odd_bytes_matches_nothing_or_is_a_4xx_in_the_envelope(client, world):
    for value in ODD_FILTERS:
        # (The feed takes no filters: it is the followed authors' articles.)
        for name in ("tag", "author", "favorited"):
            response = client.get(f"/api/articles?{name}={value}", headers=auth(world["anna"]))

            if response.status_code == 200:
                assert response.get_json() == {"articles": [], "articlesCount": 0}
            else:
                assert 400 <= response.status_code < 500
                assert envelope_fields(response) == [name]


FILTER_SPELLINGS = [
    ("author", "JAKE"),
    ("author", "\uff4a\uff41\uff4b\uff45"),
    ("tag", "\uff4b\uff45\uff50\uff54"),
    ("tag", " kept "),
    ("tag", "kept\u200b"),
]


def test_a_filter_in_another_spelling_finds_the_article(client, world):
    for name, value in FILTER_SPELLINGS:
        response = client.get("/api/articles", query_string={name: value})

        assert response.status_code == 200
        assert response.get_json()["articlesCount"] == 1


# ------------------------------------------------------------------ path values

# (A lone "%2F" is decoded before routing: /api/articles/%2F is /api/articles.)
SEGMENTS = [
    "%00",
    "a%00b",
    "a%2Fb",
    "%2e",
    "%2e%2e",
    "%ff",
    "%ed%a0%80",
    "%c0%af",
    "x" * 7000,
    "%E2%80%AE",
    "~",
    "%25",
    "a;b",
    "%20",
    "%0a",
    "%3F",
]


def test_an_odd_slug_or_username_is_404_and_writes_nothing(client, world, sql):
    for segment in SEGMENTS:
        before = snapshot(sql)
        requests = [
            ("GET", f"/api/profiles/{segment}"),
            ("POST", f"/api/profiles/{segment}/follow"),
            ("DELETE", f"/api/profiles/{segment}/follow"),
            ("GET", f"/api/articles/{segment}"),
            ("PUT", f"/api/articles/{segment}"),
            ("DELETE", f"/api/articles/{segment}"),
            ("POST", f"/api/articles/{segment}/favorite"),
            ("DELETE", f"/api/articles/{segment}/favorite"),
            ("GET", f"/api/articles/{segment}/comments"),
            ("POST", f"/api/articles/{segment}/comments"),
            ("DELETE", f"/api/articles/{segment}/comments/{world['comment']['id']}"),
        ]
        failures = []
        for method, path in requests:
            response = client.open(
                path,
                method=method,
                headers=auth(world["anna"]),
                json={"article": {"body": "x"}, "comment": {"body": "x"}},
            )
            envelope_fields(response)
            if response.status_code != 404:
                failures.append((method, path[:60], response.status_code, response.data[:100]))
        assert failures == []
        assert snapshot(sql) == before


ODD_COMMENT_IDS = [
    "0",
    "-1",
    str(2**31 - 1),
    str(2**31),
    str(2**63),
    str(2**64),
    "9" * 5000,
    "1.0",
    "٣",
    "\uff11",
    "01",
    "1e0",
    "%31",
    "0x1",
]


def test_an_odd_comment_id_is_404_and_deletes_nothing(client, world, sql):
    for comment_id in ODD_COMMENT_IDS:
        before = snapshot(sql)

        response = client.delete(
            f"/api/articles/{world['slug']}/comments/{comment_id}", headers=auth(world["anna"])
        )

        if comment_id in ("01", "%31"):  # the same number, in ASCII digits
            assert response.status_code in (204, 404)
            continue
        assert response.status_code == 404, response.data
        envelope_fields(response)
        assert snapshot(sql) == before


PROFILE_SPELLINGS = ["%6Aake", "JAKE", "\uff4a\uff41\uff4b\uff45"]


def test_a_profile_is_found_by_percent_encoded_and_other_spellings(client, world):
    for spelling in PROFILE_SPELLINGS:
        response = client.get(f"/api/profiles/{spelling}")

        assert response.status_code == 200
        assert response.get_json()["profile"]["username"] == "jake"


# ------------------------------------------------------------------------ tokens


def forged(header: dict[str, Any], claims: dict[str, Any], secret: str | None) -> str:
    """A JWT with this header and these claims, signed with ``secret`` (or unsigned)."""

    def part(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signed = f"{part({'alg': 'HS256', 'typ': 'JWT', **header})}.{part(claims)}"
    if secret is None:
        return f"{part(header)}.{part(claims)}."
    mac = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def sid_of(user: dict[str, Any]) -> str:
    return jwt.decode(user["token"], options={"verify_signature": False})["sid"]


def _claims(user: dict[str, Any], **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {
        "sub": "1",
        "sid": sid_of(user),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    return {key: value for key, value in {**claims, **changes}.items() if value is not ...}


KID = {"kid": DEFAULT_SIGNING_KEY_ID}

# (description, a function of jake's user object giving the Authorization header)
BAD_AUTHORIZATIONS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("scheme only", lambda user: "Token"),
    ("two spaces then nothing", lambda user: "Token  "),
    ("two tokens", lambda user: f"Token {user['token']} {user['token']}"),
    ("bearer garbage", lambda user: "Bearer x"),
    ("unknown scheme", lambda user: f"JWT {user['token']}"),
    ("no scheme", lambda user: user["token"]),
    ("alg none", lambda user: "Token " + forged({"alg": "none", **KID}, _claims(user), None)),
    ("alg none, no kid", lambda user: "Token " + forged({"alg": "none"}, _claims(user), None)),
    (
        "changed signature",
        lambda user: (
            "Token "
            + user["token"][:-4]
            + ("AAAA" if not user["token"].endswith("AAAA") else "BBBB")
        ),
    ),
    ("no signature", lambda user: "Token " + user["token"].rsplit(".", 1)[0] + "."),
    ("other secret", lambda user: "Token " + forged(KID, _claims(user), "x" * 40)),
    ("expired", lambda user: "Token " + forged(KID, _claims(user, exp=1, iat=0), TEST_SECRET_KEY)),
    ("deleted user", lambda user: "Token " + forged(KID, _claims(user, sub="99"), TEST_SECRET_KEY)),
    ("sub as int", lambda user: "Token " + forged(KID, _claims(user, sub=1), TEST_SECRET_KEY)),
    ("sub as list", lambda user: "Token " + forged(KID, _claims(user, sub=["1"]), TEST_SECRET_KEY)),
    ("sid as int", lambda user: "Token " + forged(KID, _claims(user, sid=1), TEST_SECRET_KEY)),
    (
        "sid as list",
        lambda user: "Token " + forged(KID, _claims(user, sid=[sid_of(user)]), TEST_SECRET_KEY),
    ),
    ("sid non-ascii", lambda user: "Token " + forged(KID, _claims(user, sid="é"), TEST_SECRET_KEY)),
    ("no sid", lambda user: "Token " + forged(KID, _claims(user, sid=...), TEST_SECRET_KEY)),
    ("no exp", lambda user: "Token " + forged(KID, _claims(user, exp=...), TEST_SECRET_KEY)),
    (
        "exp as string",
        lambda user: "Token " + forged(KID, _claims(user, exp="soon"), TEST_SECRET_KEY),
    ),
    ("exp as list", lambda user: "Token " + forged(KID, _claims(user, exp=[1]), TEST_SECRET_KEY)),
    ("exp float", lambda user: "Token " + forged(KID, _claims(user, exp=1.5), TEST_SECRET_KEY)),
    (
        "iat in future",
        lambda user: (
            "Token "
            + forged(
                KID, _claims(user, iat=int(datetime.now(UTC).timestamp()) + 3600), TEST_SECRET_KEY
            )
        ),
    ),
    (
        "nbf in future",
        lambda user: (
            "Token "
            + forged(
                KID, _claims(user, nbf=int(datetime.now(UTC).timestamp()) + 3600), TEST_SECRET_KEY
            )
        ),
    ),
    (
        "kid as list",
        lambda user: (
            "Token " + forged({"kid": [DEFAULT_SIGNING_KEY_ID]}, _claims(user), TEST_SECRET_KEY)
        ),
    ),
    ("kid as object", lambda user: "Token " + forged({"kid": {}}, _claims(user), "x" * 40)),
    ("header not an object", lambda user: "Token WzFd.e30.c2ln"),
    ("header null", lambda user: "Token bnVsbA.e30.c2ln"),
    ("payload not an object", lambda user: "Token " + user["token"].split(".")[0] + ".WzFd.c2ln"),
    ("bad base64", lambda user: "Token !!!.???.***"),
    ("non-ascii", lambda user: "Token " + user["token"] + "\u00e9"),
    ("latin-1 bytes", lambda user: "Token \u00ff\u00fe\u00fd"),
    ("huge", lambda user: "Token " + "a" * 6000),
]


AUTHORIZATION_KINDS = {
    "malformed header": BAD_AUTHORIZATIONS[:6],
    "forged signature": BAD_AUTHORIZATIONS[6:11],
    "odd claims or header": BAD_AUTHORIZATIONS[11:],
}


@pytest.mark.parametrize("kind", AUTHORIZATION_KINDS)
def test_a_malformed_or_forged_authorization_is_401_on_every_endpoint_and_writes_nothing(
    client, world, sql, kind
):
    slug = world["slug"]
    requests = [
        ("GET", "/api/user", None),
        ("PUT", "/api/user", {"user": {"bio": "forged"}}),
        ("GET", "/api/articles", None),
        ("GET", "/api/articles/feed", None),
        ("GET", f"/api/articles/{slug}", None),
        ("GET", "/api/profiles/anna", None),
        ("POST", "/api/articles", {"article": {"title": "T", "description": "d", "body": "b"}}),
        ("DELETE", f"/api/articles/{slug}", None),
        ("POST", f"/api/articles/{slug}/favorite", None),
        ("POST", "/api/profiles/anna/follow", None),
        ("DELETE", "/api/user/sessions", None),
    ]
    before = snapshot(sql)
    failures = []
    for name, make_header in AUTHORIZATION_KINDS[kind]:
        header = make_header(world["jake"])
        for method, path, body in requests:
            response = client.open(
                path, method=method, json=body, headers={"Authorization": header}
            )
            fields = envelope_fields(response) if response.status_code >= 400 else []
            if (
                response.status_code != 401
                or fields != ["token"]
                or response.headers.get("WWW-Authenticate") != "Token"
            ):
                failures.append((name, method, path, response.status_code, response.data[:120]))
    assert failures == []
    assert snapshot(sql) == before


def test_a_token_for_a_renamed_user_still_names_them(client, world):
    client.put("/api/user", json={"user": {"username": "jacob"}}, headers=auth(world["jake"]))

    response = client.get("/api/user", headers=auth(world["jake"]))

    assert response.status_code == 200
    assert response.get_json()["user"]["username"] == "jacob"


# -------------------------------------------------------- conditional and odd headers


ODD_IF_MATCH = [
    "",
    "abc",
    '"',
    '"abc',
    'W/"abc"',
    "W/*",
    '"a", ',
    ",,,",
    '*, "x"',
    "\u00e9",
    "x" * 6000,
]


def test_an_if_match_naming_no_current_tag_is_412_and_writes_nothing(client, world, sql):
    for value in ODD_IF_MATCH:
        before = snapshot(sql)
        writes = [
            ("PUT", f"/api/articles/{world['slug']}", {"article": {"body": "changed"}}, "jake"),
            ("DELETE", f"/api/articles/{world['slug']}", None, "jake"),
            ("PUT", "/api/user", {"user": {"bio": "changed"}}, "jake"),
            (
                "DELETE",
                f"/api/articles/{world['slug']}/comments/{world['comment']['id']}",
                None,
                "anna",
            ),
        ]
        for method, path, body, who in writes:
            response = client.open(
                path, method=method, json=body, headers={**auth(world[who]), "If-Match": value}
            )

            assert response.status_code == 412, (method, path, response.status_code, response.data)
            assert envelope_fields(response) == ["If-Match"]
        assert snapshot(sql) == before


ODD_HEADERS = [
    ("If-None-Match", ""),
    ("If-None-Match", "\u00e9"),
    ("If-None-Match", "W/"),
    ("If-Modified-Since", "not a date"),
    ("If-Modified-Since", "Sat, 32 Dec 9999 99:99:99 GMT"),
    ("If-Unmodified-Since", "0"),
    ("Range", "bytes=0-1"),
    ("X-Request-ID", "\u00ff" * 300),
    ("X-Request-ID", ""),
    ("Accept", "text/html"),
    ("Accept-Encoding", "\u00e9"),
]


def test_odd_request_headers_do_not_change_a_read(client, world):
    for name, value in ODD_HEADERS:
        plain = client.get(f"/api/articles/{world['slug']}")

        response = client.get(f"/api/articles/{world['slug']}", headers={name: value})

        assert response.status_code == 200, response.data
        assert response.get_json() == plain.get_json()


# ----------------------------------------------------------- through gunicorn


def _raw(served: ServedApp, request: bytes):
    return exchange(port_of(served), request)


def test_served_hostile_bytes_get_a_4xx_envelope_or_an_answer(served_app: ServedApp) -> None:
    user = served_app.register("jake")
    token = user["token"].encode()
    requests = {
        "non-utf-8 path": b"GET /api/profiles/\xff\xfe HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n",
        "non-utf-8 query": b"GET /api/articles?tag=\xff HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n",
        "latin-1 auth": b"GET /api/user HTTP/1.1\r\nHost: x\r\nAuthorization: Token \xe9"
        + token
        + b"\r\nConnection: close\r\n\r\n",
        "nul in header": b"GET /api/user HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\x00b"
        b"\r\nConnection: close\r\n\r\n",
        "latin-1 json": http_request(
            "PUT",
            "/api/user",
            '{"user": {"bio": "caf\u00e9"}}'.encode("latin-1"),
            {
                "Content-Type": "application/json; charset=latin-1",
                "Authorization": f"Token {user['token']}",
            },
        ),
        "json with bom": http_request(
            "PUT",
            "/api/user",
            b'\xef\xbb\xbf{"user": {"bio": "x"}}',
            {"Content-Type": "application/json", "Authorization": f"Token {user['token']}"},
        ),
        "two content-lengths": b"PUT /api/user HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 23\r\nContent-Length: 2\r\n"
        b"Authorization: Token " + token + b'\r\nConnection: close\r\n\r\n{"user": {"bio": "x"}}',
        "negative content-length": b"PUT /api/user HTTP/1.1\r\nHost: x\r\nContent-Length: -1"
        b"\r\nConnection: close\r\n\r\n",
        "chunked and content-length": b"PUT /api/user HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nAuthorization: "
        b"Token "
        + token
        + b'\r\nConnection: close\r\n\r\n16\r\n{"user": {"bio": "x"}}\r\n0\r\n\r\n',
        "plus content-length": b"PUT /api/user HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"application/json\r\nContent-Length: +22\r\nAuthorization: Token "
        + token
        + b'\r\nConnection: close\r\n\r\n{"user": {"bio": "x"}}',
        "space before colon": b"PUT /api/user HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"application/json\r\nContent-Length : 22\r\nAuthorization: Token "
        + token
        + b'\r\nConnection: close\r\n\r\n{"user": {"bio": "x"}}',
        "bare lf": b"GET /api/tags HTTP/1.1\nHost: x\nConnection: close\n\n",
        "obs-fold": b"GET /api/user HTTP/1.1\r\nHost: x\r\nAuthorization: Token\r\n "
        + token
        + b"\r\nConnection: close\r\n\r\n",
        "http/0.9": b"GET /api/tags\r\n\r\n",
        "http/2.0 line": b"GET /api/tags HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n",
        "absolute-form": b"GET http://x/api/tags HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "asterisk-form": b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "lowercase method": b"get /api/tags HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "empty json body": http_request(
            "PUT",
            "/api/user",
            b"",
            {
                "Content-Type": "application/json",
                "Content-Length": "0",
                "Authorization": f"Token {user['token']}",
            },
        ),
    }
    statuses = {}
    for name, raw in requests.items():
        answer = _raw(served_app, raw)
        statuses[name] = answer.status
        assert answer.status < 500, (name, answer)
        if answer.status >= 400:
            body = json.loads(answer.body)
            assert set(body) == {"errors"} and body["errors"], (name, body)
    # RFC 9112: a request-target is ASCII, one Content-Length of digits, never beside
    # chunked (request smuggling), no space before the colon, no obs-fold: gunicorn says 400.
    answered = {"latin-1 auth": 401, "absolute-form": 200, "asterisk-form": 200}
    assert statuses == {name: answered.get(name, 400) for name in requests}
    assert served_app.sql("SELECT bio FROM users") == [(None,)]


def test_served_pipelined_requests_are_each_answered(served_app: ServedApp) -> None:
    """RFC 9112 §9.3.2: a server answers pipelined requests in order, none left waiting."""
    one = b"GET /api/tags HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /api/tags HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port_of(served_app)), timeout=5) as connection:
        connection.sendall(one + one + last)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except TimeoutError:
            pass

    assert received.count(b"HTTP/1.1 200") == 3, received[:500]


def test_served_a_url_past_8000_bytes_is_414_even_when_its_answer_is_cached(
    served_app: ServedApp,
) -> None:
    """Arguments no view reads share the cached answer; the URL limit still comes first."""
    client = served_app.client()
    try:
        for path in ("/api/tags", "/api/articles"):
            for _ in range(3):  # cached, then answered from the cache
                assert client.get(path).status_code == 200

            response = client.get(f"{path}?junk=" + "x" * (8100 - len(path)))

            assert response.status_code == 414, response.text[:200]
            assert response.json() == {"errors": {"url": ["is too long (maximum is 8000 bytes)"]}}
    finally:
        client.close()
