"""HTTP validators: every API read carries an ETag; If-None-Match earns a 304."""

import time

import pytest
from werkzeug.http import http_date
from werkzeug.wrappers import Response

from tests.factories import add_comment, auth, create_article, register

READS = [
    "/api/articles",
    "/api/articles?tag=dragons",
    "/api/articles/{slug}",
    "/api/articles/{slug}/comments",
    "/api/tags",
    "/api/profiles/jake",
]


@pytest.fixture
def world(client):
    jake = register(client, username="jake")
    article = create_article(client, jake, tagList=["dragons"])
    add_comment(client, jake, article["slug"])
    return {"jake": jake, "slug": article["slug"]}


@pytest.mark.parametrize("path", READS)
def test_a_read_carries_an_etag_and_a_matching_if_none_match_gets_304(client, world, path):
    url = path.format(slug=world["slug"])
    first = client.get(url)
    etag = first.headers["ETag"]

    again = client.get(url, headers={"If-None-Match": etag})

    assert first.status_code == 200
    assert etag.startswith('"') and etag.endswith('"')  # strong
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag


def test_a_stale_etag_gets_the_new_body(client, world):
    etag = client.get("/api/articles").headers["ETag"]
    create_article(client, world["jake"])

    response = client.get("/api/articles", headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response.headers["ETag"] != etag
    assert response.get_json()["articlesCount"] == 2


def test_the_etag_is_the_same_for_the_same_body(client, world):
    assert client.get("/api/tags").headers["ETag"] == client.get("/api/tags").headers["ETag"]


def test_anonymous_reads_may_be_kept_but_must_be_revalidated(client, world):
    response = client.get("/api/articles")

    assert response.cache_control.no_cache
    assert not response.cache_control.private
    assert "Authorization" in response.vary


def test_reads_for_a_signed_in_viewer_are_private(client, world):
    for url in ("/api/articles", "/api/articles/feed", "/api/user"):
        response = client.get(url, headers=auth(world["jake"]))

        assert response.status_code == 200
        assert response.cache_control.private, url
        assert response.cache_control.no_cache, url
        assert "Authorization" in response.vary, url


def test_errors_and_writes_carry_no_etag(client, world):
    missing = client.get("/api/articles/no-such-article")
    written = client.post(f"/api/articles/{world['slug']}/favorite", headers=auth(world["jake"]))

    assert missing.status_code == 404
    assert "ETag" not in missing.headers
    assert written.status_code == 200
    assert "ETag" not in written.headers


def test_the_304_keeps_the_request_id_and_cors_headers(client, world):
    etag = client.get("/api/tags").headers["ETag"]

    response = client.get(
        "/api/tags", headers={"If-None-Match": etag, "Origin": "https://example.com"}
    )

    assert response.status_code == 304
    assert response.headers["X-Request-ID"]
    assert response.headers["Access-Control-Allow-Origin"] == "https://example.com"


@pytest.mark.parametrize("path", READS)
def test_a_failed_if_match_is_a_412_in_the_envelope(client, world, path):
    url = path.format(slug=world["slug"])
    client.get(url)  # warm the response cache: a hit answers the same

    response = client.get(url, headers={"If-Match": '"not-the-current-etag"'})

    assert response.status_code == 412
    assert response.get_json() == {
        "errors": {"If-Match": ["does not match the current representation"]}
    }


def test_a_matching_if_match_gets_the_body(client, world):
    etag = client.get("/api/tags").headers["ETag"]

    response = client.get("/api/tags", headers={"If-Match": etag})

    assert response.status_code == 200
    assert response.get_json() == {"tags": ["dragons"]}


@pytest.mark.parametrize("path", READS)
def test_if_match_star_matches_any_current_representation(client, world, path):
    url = path.format(slug=world["slug"])
    expected = client.get(url).get_json()

    response = client.get(url, headers={"If-Match": "*"})

    assert response.status_code == 200  # RFC 9110 §13.1.1: "*" matches any current one
    assert response.get_json() == expected


def test_a_read_carries_the_date_it_was_answered(client, world):
    started = int(time.time())
    response = client.get("/api/tags")
    finished = int(time.time())

    assert response.headers["Date"] in {http_date(s) for s in range(started, finished + 1)}


def test_a_read_without_a_conditional_header_is_not_compared(client, world, monkeypatch):
    client.get("/api/tags")  # a response cache hit next: the commonest read there is
    compared = []
    make_conditional = Response.make_conditional

    def counted(self, *args, **kwargs):
        compared.append(self)
        return make_conditional(self, *args, **kwargs)

    monkeypatch.setattr(Response, "make_conditional", counted)

    plain = client.get("/api/tags")
    conditional = client.get("/api/tags", headers={"If-None-Match": plain.headers["ETag"]})

    assert plain.status_code == 200
    assert plain.headers["ETag"] and plain.headers["Date"]
    assert conditional.status_code == 304
    assert len(compared) == 1  # the If-None-Match only
