"""Cache hits answered before Flask's request context: byte for byte what Flask answers.

Each test compares an app with the early lane (the default) against an app on
the same database with ``RESPONSE_CACHE_EARLY_HITS`` off, whose hits go
through Flask's request hooks. Whether Flask dispatched a request is seen by
its ``request_started`` signal. With tracing or metrics on, hits go through
Flask too: tests/test_tracing.py (``test_a_cache_hit_is_a_request_span_…``)
and tests/test_metrics.py count them there.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, request_started
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.web import early_hits
from tests.apps import apps_on
from tests.factories import add_comment, auth, create_article, follow, register, token_subject
from tests.listening import wait_until_listening

REQUEST_ID = "early-hit-1"
READS = (
    "/api/articles",
    "/api/articles?limit=5&tag=dragons&junk=1",
    "/api/articles/feed",
    "/api/articles/{slug}",
    "/api/articles/{slug}/comments",
    "/api/tags",
    "/api/profiles/{author}",
)


@pytest.fixture
def make(database_url: str) -> Iterator[Callable[..., Flask]]:
    with apps_on(database_url) as made:
        yield made


@pytest.fixture
def world(make) -> dict[str, Any]:
    """An early app and a Flask-only app on one database, with an author, a reader, an article."""
    early = make()
    flask_only = make(RESPONSE_CACHE_EARLY_HITS=False)
    client = early.test_client()
    author = register(client)
    reader = register(client)
    follow(client, reader, author["username"])
    article = create_article(client, author, tagList=["dragons"])
    add_comment(client, author, article["slug"])
    wait_until_listening(early)
    wait_until_listening(flask_only)
    return {
        "early": early,
        "flask_only": flask_only,
        "author": author,
        "reader": reader,
        "slug": article["slug"],
    }


@pytest.fixture
def dispatched() -> Iterator[Callable[[Flask], list[str]]]:
    """``dispatched(app)``: the paths Flask dispatched for ``app`` since the call."""
    seen: dict[int, list[str]] = {}

    def record(sender: Flask, **_extra: Any) -> None:
        from flask import request

        seen.setdefault(id(sender), []).append(request.path)

    request_started.connect(record)

    def of(app: Flask) -> list[str]:
        return seen.setdefault(id(app), [])

    yield of
    request_started.disconnect(record)


def _url(template: str, world: dict[str, Any]) -> str:
    return template.format(slug=world["slug"], author=world["author"]["username"])


def _headers(world: dict[str, Any], signed_in: bool, **extra: str) -> dict[str, str]:
    headers = {"X-Request-ID": REQUEST_ID, **extra}
    if signed_in:
        headers.update(auth(world["reader"]))
    return headers


def _comparable(response: TestResponse) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers in order (``Date``'s value aside: it moves each second), body."""
    headers = [(name, "<date>" if name == "Date" else value) for name, value in response.headers]
    return response.status_code, headers, response.get_data()


def _twice(client: FlaskClient, url: str, headers: dict[str, str]) -> TestResponse:
    """The second answer to ``url``: the first fills the cache."""
    client.get(url, headers=headers)
    return client.get(url, headers=headers)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("read", READS)
def test_a_hit_answered_early_is_byte_for_byte_what_flask_answers(
    world, dispatched, read: str, signed_in: bool
) -> None:
    url = _url(read, world)
    headers = _headers(world, signed_in)
    through_flask = _twice(world["flask_only"].test_client(), url, headers)

    early = _twice(world["early"].test_client(), url, headers)

    assert _comparable(early) == _comparable(through_flask)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("read", [read for read in READS if read != "/api/articles/feed"])
def test_a_hit_is_answered_without_flask_dispatching_it(
    world, dispatched, read: str, signed_in: bool
) -> None:
    client = world["early"].test_client()
    url = _url(read, world)
    client.get(url, headers=_headers(world, signed_in))
    before = len(dispatched(world["early"]))

    response = client.get(url, headers=_headers(world, signed_in))

    assert response.headers["X-Cache"] == "hit"
    assert dispatched(world["early"])[before:] == []


def test_the_feed_of_a_signed_in_reader_is_answered_early(world, dispatched) -> None:
    client = world["early"].test_client()
    client.get("/api/articles/feed", headers=_headers(world, True))
    before = len(dispatched(world["early"]))

    response = client.get("/api/articles/feed", headers=_headers(world, True))

    assert response.headers["X-Cache"] == "hit"
    assert dispatched(world["early"])[before:] == []


def test_a_hit_answered_early_writes_flasks_access_line(
    world, caplog: pytest.LogCaptureFixture
) -> None:
    url = _url("/api/articles/{slug}", world)
    headers = _headers(world, True)
    fields = ("request_id", "method", "path", "status", "user_id", "remote_addr")
    lines = {}
    for name in ("flask_only", "early"):
        client = world[name].test_client()
        client.get(url, headers=headers)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="app.request"):
            client.get(url, headers=headers)
        (record,) = [record for record in caplog.records if record.name == "app.request"]
        assert record.duration_ms >= 0  # type: ignore[attr-defined]
        lines[name] = {field: getattr(record, field) for field in fields}

    assert lines["early"] == lines["flask_only"]
    assert lines["early"]["user_id"] == int(token_subject(world["reader"]["token"]))


@pytest.mark.parametrize(
    "extra",
    [
        {"Origin": "https://elsewhere.example"},
        {"If-None-Match": "*"},
        {"If-Modified-Since": "Thu, 01 Jan 2026 00:00:00 GMT"},
        {"X-Database-Position": "0/0"},
        {"Access-Control-Request-Private-Network": "true"},
        {"Host": "not a host"},
        {"Authorization": "Token not-a-token"},
    ],
    ids=lambda extra: next(iter(extra)),
)
def test_a_request_whose_answer_flasks_hooks_shape_goes_to_flask(
    world, dispatched, extra: dict[str, str]
) -> None:
    url = _url("/api/articles/{slug}", world)
    early = world["early"].test_client()
    early.get(url, headers=_headers(world, False))  # the plain read is cached
    through_flask = _twice(world["flask_only"].test_client(), url, _headers(world, False, **extra))
    before = len(dispatched(world["early"]))

    answer = early.get(url, headers=_headers(world, False, **extra))

    assert dispatched(world["early"])[before:] == [answer.request.path]
    assert _comparable(answer) == _comparable(through_flask)


def test_a_read_with_a_body_goes_to_flask(world, dispatched) -> None:
    url = _url("/api/articles/{slug}", world)
    early = world["early"].test_client()
    early.get(url)
    before = len(dispatched(world["early"]))

    answer = early.get(url, data=b"{}", content_type="application/json")

    assert answer.status_code == 200
    assert len(dispatched(world["early"])[before:]) == 1


def test_a_head_request_goes_to_flask(world, dispatched) -> None:
    url = _url("/api/articles/{slug}", world)
    early = world["early"].test_client()
    early.get(url)
    before = len(dispatched(world["early"]))

    answer = early.head(url)

    assert answer.status_code == 200
    assert len(dispatched(world["early"])[before:]) == 1


def test_a_url_routed_elsewhere_goes_to_flask(world, dispatched) -> None:
    early = world["early"].test_client()
    before = len(dispatched(world["early"]))

    answers = [early.get("/api/user"), early.get("/api/nowhere")]

    assert [answer.status_code for answer in answers] == [401, 404]
    assert len(dispatched(world["early"])[before:]) == 2


def test_after_a_write_the_next_read_goes_to_flask_and_shows_it(world, dispatched) -> None:
    early = world["early"].test_client()
    url = _url("/api/articles/{slug}/comments", world)
    early.get(url)
    add_comment(early, world["reader"], world["slug"], body="a second thought")
    before = len(dispatched(world["early"]))

    answer = early.get(url)

    assert answer.headers["X-Cache"] == "miss"
    assert "a second thought" in answer.get_data(as_text=True)
    assert len(dispatched(world["early"])[before:]) == 1


def test_with_the_setting_off_every_hit_goes_through_flask(world, dispatched) -> None:
    client = world["flask_only"].test_client()
    client.get("/api/tags")
    before = len(dispatched(world["flask_only"]))

    response = client.get("/api/tags")

    assert response.headers["X-Cache"] == "hit"
    assert dispatched(world["flask_only"])[before:] == ["/api/tags"]


def test_a_failure_in_the_lane_leaves_the_request_to_flask(
    world, dispatched, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = world["early"].test_client()
    client.get("/api/tags")

    def broken(*_arguments: Any) -> None:
        raise RuntimeError("a bug in the lane")

    monkeypatch.setattr(early_hits, "_answer", broken)
    response = client.get("/api/tags")

    assert response.status_code == 200
    assert response.headers["X-Cache"] == "hit"
    assert dispatched(world["early"])[-1:] == ["/api/tags"]


def _routes_remembered(app: Flask) -> dict[tuple[str, str], Any]:
    """The hosts and paths whose routing ``app``'s early lane remembers (its WSGI chain)."""
    layer: Any = app.wsgi_app
    while not isinstance(layer, early_hits.EarlyHits):
        layer = layer.app
    assert layer._lane is not None
    return dict(layer._lane.routes._known.items())


def test_the_routes_remembered_take_at_most_their_bytes_whatever_the_urls_asked(world) -> None:
    client = world["early"].test_client()
    client.get("/api/tags")  # the lane opens
    long_path = "/api/nowhere/" + "n" * 7000  # within MAX_URL_LENGTH (as the Host, gunicorn's)
    asked = early_hits.ROUTES_BYTES // len(long_path) + 64

    for n in range(asked):
        client.get(f"{long_path}{n}", headers={"Host": f"h{n}." + "x" * 900})

    held = sum(
        sys.getsizeof(place) + sys.getsizeof(place[0]) + sys.getsizeof(place[1])
        for place in _routes_remembered(world["early"])
    )
    assert held <= early_hits.ROUTES_BYTES
