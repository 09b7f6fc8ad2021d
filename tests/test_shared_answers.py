"""The response cache's second level: answers shared in Redis by the workers of one master.

Two app instances stand for two gunicorn workers when they share the change
feed's stamps (and its origin), as forked workers do; instances that do not
are two masters. Every test uses the test Redis (``redis_url``: skipped when
unreachable, a failure under ``CI=true``) unless it is about Redis being away.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.wrappers import Response

from app.data.change_feed import Stamps
from app.web import shared_answers
from app.web.response_cache import Entry
from tests import databases
from tests.apps import apps_on, served_on
from tests.databases import statements_run
from tests.factories import auth, create_article, register
from tests.listening import feed_of, wait_for, wait_until_listening
from tests.serving import Answer, ServedApp, connections_by_worker, port_of, read_answer


def sibling_of(first: Flask, second: Flask) -> None:
    """Make ``second`` a worker of ``first``'s master: gunicorn's workers fork one feed."""
    feed, sibling = feed_of(first), feed_of(second)
    sibling.stamps = feed.stamps
    sibling.origin = feed.origin  # a worker skips its master's own notifications


def headers(response: Response) -> list[tuple[str, str]]:
    """The response's headers in order, but for its request id (one per request)."""
    return [(name, value) for name, value in response.headers.items() if name != "X-Request-ID"]


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def apps(database_url: str, redis_url: str) -> Iterator[Callable[..., Flask]]:
    """``apps(**settings)``: instances sharing answers in the test Redis; their keys go after."""
    made: list[Flask] = []
    with apps_on(database_url, RESPONSE_CACHE_SHARED_URL=redis_url) as make:

        def tracked(**overrides: Any) -> Flask:
            app = make(**overrides)
            made.append(app)
            return app

        yield tracked
        for app in made:
            identity = feed_of(app).stamps.identity
            databases.remove_redis_keys(f"{shared_answers.PREFIX}{identity}:*")


@pytest.fixture
def workers(apps) -> SimpleNamespace:
    """Two workers of one master, ``filler`` and ``reader``, a user and an article, settled."""
    filler_app, reader_app = apps(), apps()
    sibling_of(filler_app, reader_app)
    filler, reader = filler_app.test_client(), reader_app.test_client()
    jake = register(filler, username="jake")
    article = create_article(filler, jake, tagList=["dragons"])
    settle(filler, reader)
    return SimpleNamespace(filler=filler, reader=reader, jake=jake, article=article)


def settle(*clients: FlaskClient) -> None:
    """Each instance's feed has caught up with the writes so far (SQLite: its data_version)."""
    for client in clients:
        wait_until_listening(client.application)


def test_an_answer_one_worker_filled_is_a_hit_in_the_other_without_sql(workers):
    url = f"/api/articles/{workers.article['slug']}"
    filled = workers.filler.get(url)
    local_hit = workers.filler.get(url)

    with statements_run(workers.reader.application) as statements:
        shared_hit = workers.reader.get(url)

    assert filled.headers["X-Cache"] == "miss"
    assert shared_hit.headers["X-Cache"] == "hit"
    assert statements == []
    assert shared_hit.get_data() == local_hit.get_data() == filled.get_data()
    assert headers(shared_hit) == headers(local_hit)
    with statements_run(workers.reader.application) as statements:  # now kept locally too
        assert workers.reader.get(url).headers["X-Cache"] == "hit"
    assert statements == []


def test_a_write_between_the_fill_and_the_other_workers_read_makes_it_a_miss(workers):
    workers.filler.get("/api/articles")

    create_article(workers.filler, workers.jake)
    answer = workers.reader.get("/api/articles")

    assert answer.headers["X-Cache"] == "miss"
    assert answer.get_json()["articlesCount"] == 2


def test_an_answer_of_another_masters_stamps_is_never_served(apps, redis_client):
    filler, other_master = apps().test_client(), apps().test_client()
    jake = register(filler, username="jake")
    create_article(filler, jake)
    settle(filler, other_master)
    filler.get("/api/articles")
    (filled_key,) = redis_client.keys(f"{shared_answers.PREFIX}{stamps(filler).identity}:*")
    # The other master's sequence number past the fill's, as if it had counted as far.
    while stamps(other_master).seq <= stamps(filler).seq:
        stamps(other_master).bump(keys=["no-such-key"])
    # The value under the other master's key for the same request (a misplaced write).
    misplaced = filled_key.replace(
        stamps(filler).identity.encode(), stamps(other_master).identity.encode()
    )
    redis_client.set(misplaced, redis_client.get(filled_key) or b"")

    with statements_run(other_master.application) as statements:
        answer = other_master.get("/api/articles")

    assert answer.headers["X-Cache"] == "miss"
    assert statements != []  # computed, not taken from the other master's entry
    assert answer.get_json()["articlesCount"] == 1


def stamps(client: FlaskClient) -> Stamps:
    return feed_of(client.application).stamps


def _with(value: bytes, **changes: Any) -> bytes:
    """``value`` (a stored entry) with header fields changed, its body kept."""
    head, _, body = value.partition(b"\n")
    return orjson.dumps({**orjson.loads(head), **changes}) + b"\n" + body


def test_garbage_in_redis_is_ignored(workers, redis_client):
    workers.filler.get("/api/articles")
    identity = stamps(workers.filler).identity
    good = redis_client.get(shared_answers.redis_key(identity, (0, "", "/api/articles", "")))
    assert good is not None
    head, _, body = good.partition(b"\n")
    garbage = [
        b"",
        b"garbage",
        good[:-1],  # truncated
        head + b"\n" + body[:-2] + b"X" + body[-1:],  # a body unlike its crc32
        _with(good, etag=1),
        _with(good, v=2),
        _with(good, identity="another"),
        _with(good, read_at=stamps(workers.filler).seq + 1),  # a sequence number not reached
        _with(good, watches=[]),  # watching nothing, not even "everything"
        _with(good, watches=[10**9]),  # no such stamp
        b"\x80\x04\x95" + good,  # a pickle's opening
    ]
    # Each under a request of its own, which the reader has not kept locally.
    urls = [f"/api/articles?limit={limit}" for limit in range(1, len(garbage) + 1)]
    for url, value in zip(urls, garbage, strict=True):
        key = (0, "", "/api/articles", url.partition("?")[2])
        redis_client.set(shared_answers.redis_key(identity, key), value)

    with statements_run(workers.reader.application) as statements:
        answers = [workers.reader.get(url) for url in urls]

    assert [answer.headers["X-Cache"] for answer in answers] == ["miss"] * len(garbage)
    assert all(answer.get_json()["articlesCount"] == 1 for answer in answers)
    assert len(statements) >= len(garbage)  # each computed by the view


def test_an_entry_read_back_is_the_entry_stored():
    stamps = Stamps(["articles"])
    stamps.bump(keys=["list:all"])
    entry = Entry(b'{"x": 1}\n\x00', '"etag"', "application/json", 1, stamps.indexes({"a"}, set()))

    value = shared_answers.encode(stamps.identity, entry)

    assert shared_answers.decode(value, stamps) == entry
    assert shared_answers.decode(value, Stamps(["articles"])) is None  # another identity


@pytest.fixture
def unshared_apps(database_url: str) -> Iterator[Callable[..., Flask]]:
    with apps_on(database_url) as make:
        yield make


def test_a_redis_that_is_down_costs_misses_never_an_error(unshared_apps, closed_port, caplog):
    down = f"redis://127.0.0.1:{closed_port}/0"
    filler_app = unshared_apps(RESPONSE_CACHE_SHARED_URL=down)
    reader_app = unshared_apps(RESPONSE_CACHE_SHARED_URL=down)
    sibling_of(filler_app, reader_app)
    filler, reader = filler_app.test_client(), reader_app.test_client()
    jake = register(filler, username="jake")
    create_article(filler, jake)
    settle(filler, reader)

    with caplog.at_level(logging.WARNING, logger="app.web.shared_answers"):
        answers = [filler.get("/api/articles"), reader.get("/api/articles")]
        answers += [reader.get("/api/articles"), reader.get("/api/tags")]

    assert [answer.status_code for answer in answers] == [200] * 4
    assert [answer.headers["X-Cache"] for answer in answers] == ["miss", "miss", "hit", "miss"]
    assert answers[1].get_json()["articlesCount"] == 1
    assert caplog.text.count("shared answers off") == 2  # once per worker


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_a_redis_that_does_not_answer_is_waited_for_briefly_then_left_alone(
    unshared_apps, silent_port
):
    client = unshared_apps(RESPONSE_CACHE_SHARED_URL=f"redis://127.0.0.1:{silent_port}/0")
    client = client.test_client()
    settle(client)

    waits = []
    for url in ("/api/articles", "/api/tags", "/api/articles?limit=5"):
        started = time.monotonic()
        assert client.get(url).status_code == 200
        waits.append(time.monotonic() - started)

    assert waits[0] >= shared_answers.TIMEOUT_SECONDS
    shared = client.application.extensions[shared_answers.EXTENSION]
    assert not shared._available()  # the next misses do not ask it


# --- gunicorn: two forked workers ---------------------------------------------


def ask(connection: socket.socket, path: str) -> Answer:
    """One request on a kept-alive connection (it stays with the worker that accepted it)."""
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: conduit.test\r\n\r\n".encode())
    return read_answer(connection)


def one_connection_per_worker(served: ServedApp, stack: ExitStack) -> list[socket.socket]:
    """A kept-alive connection held by each of the two workers (which one accepts is chance)."""
    held: dict[int, socket.socket] = {}
    for _ in range(100):
        before = connections_by_worker(served)
        connection = socket.create_connection(("127.0.0.1", port_of(served)), timeout=30)
        ask(connection, "/api/tags")  # accepted: held by one worker now
        after = connections_by_worker(served)
        (pid,) = [pid for pid, count in after.items() if count > before.get(pid, 0)]
        if pid in held:
            connection.close()
            continue
        held[pid] = stack.enter_context(connection)
        if len(held) == 2:
            return list(held.values())
    pytest.fail("one worker accepted every connection")


@pytest.mark.served
def test_gunicorns_two_workers_compute_an_answer_once(tmp_path, worker_id, redis_url):
    with (
        served_on(
            "postgresql", tmp_path, f"shared_{worker_id}", RESPONSE_CACHE_SHARED_URL=redis_url
        ) as served,
        ExitStack() as stack,
    ):
        served.register("jake")
        one, other = one_connection_per_worker(served, stack)
        for connection in (one, other):  # each worker's change feed listening (else "off")
            wait_for(lambda c=connection: ask(c, "/api/tags").headers["x-cache"] != "off")

        first, second = ask(one, "/api/articles"), ask(other, "/api/articles")

    assert (first.status, second.status) == (200, 200)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.body == first.body


# --- attack: what else a "Redis" may answer ----------------------------------


@contextmanager
def answering_port(reply: bytes) -> Iterator[int]:
    """A loopback port whose server answers ``reply`` to whatever it is sent."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def serve(connection: socket.socket) -> None:
        with connection:
            while not stop.is_set():
                try:
                    if not connection.recv(65536):
                        return
                    connection.sendall(reply)
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()


@pytest.mark.parametrize(
    "reply",
    [
        b":not a number\r\n",  # an integer reply that is not one
        b"$nope\r\n",  # a bulk string of no length
        b"*x\r\n",  # an array of no length
        b"HTTP/1.1 400 Bad Request\r\n\r\n",  # not Redis at all
        b"+OK\r\n",  # a reply of the wrong type
        b"-ERR wrong\r\n",
    ],
)
def test_a_server_answering_what_redis_never_would_costs_misses_never_an_error(
    unshared_apps, reply
):
    with answering_port(reply) as port:
        client = unshared_apps(RESPONSE_CACHE_SHARED_URL=f"redis://127.0.0.1:{port}/0")
        client = client.test_client()
        settle(client)

        answers = [client.get(url) for url in ("/api/articles", "/api/tags", "/api/articles")]

    assert [answer.status_code for answer in answers] == [200] * 3
    assert answers[0].get_json()["articlesCount"] == 0


@pytest.mark.parametrize(
    "field, value",
    [
        ("etag", '"abc"\r\nSet-Cookie: session=stolen'),
        ("etag", "caf\u00e9 \u2603"),
        ("content_type", "application/json\nX-Evil: 1"),
        ("content_type", "\x00"),
    ],
)
def test_a_header_no_worker_could_have_written_is_ignored(workers, redis_client, field, value):
    workers.filler.get("/api/articles")
    identity = stamps(workers.filler).identity
    key = shared_answers.redis_key(identity, (0, "", "/api/articles", ""))
    redis_client.set(key, _with(redis_client.get(key), **{field: value}))

    answer = workers.reader.get("/api/articles")

    assert answer.status_code == 200
    assert answer.headers["X-Cache"] == "miss"
    assert answer.get_json()["articlesCount"] == 1


def shared_bytes(redis_client: redis.Redis, identity: str) -> int:
    """The bytes of the values kept in Redis for ``identity``'s answers."""
    keys = list(redis_client.scan_iter(f"{shared_answers.PREFIX}{identity}:*", count=1000))
    return sum(redis_client.strlen(key) for key in keys)


def test_a_flood_of_distinct_urls_keeps_no_more_in_redis_than_a_worker_keeps(apps, redis_client):
    max_bytes = 64 * 1024
    client = apps(RESPONSE_CACHE_MAX_BYTES=str(max_bytes)).test_client()
    jake = register(client, username="jake")
    for _ in range(20):
        create_article(client, jake, body="x" * 200, tagList=["dragons"])
    settle(client)

    for offset in range(20):  # each answer read once: only the probation segment churns here
        for limit in range(1, 21):
            assert client.get(f"/api/articles?limit={limit}&offset={offset}").status_code == 200

    assert client.application.extensions["response_cache"].size_bytes <= max_bytes
    assert shared_bytes(redis_client, stamps(client).identity) <= max_bytes


def test_a_hot_answer_filled_again_is_shared_after_a_flood_spent_the_budget(apps):
    filler_app, reader_app = apps(RESPONSE_CACHE_MAX_BYTES=str(64 * 1024)), apps()
    sibling_of(filler_app, reader_app)
    filler, reader = filler_app.test_client(), reader_app.test_client()
    jake = register(filler, username="jake")
    article = create_article(filler, jake, body="x" * 200, tagList=["dragons"])
    settle(filler, reader)
    url = f"/api/articles/{article['slug']}"
    assert filler.get(url).headers["X-Cache"] == "miss"  # shared while the budget lasts
    for offset in range(20):  # the flood spends the rest of the filler's budget
        for limit in range(1, 21):
            filler.get(f"/api/articles?limit={limit}&offset={offset}")

    filler.put(url, json={"article": {"body": "Changed"}}, headers=auth(jake))
    settle(filler, reader)
    assert filler.get(url).headers["X-Cache"] == "miss"  # filled again: its key is the filler's
    answer = reader.get(url)

    assert answer.headers["X-Cache"] == "hit"
    assert answer.get_json()["article"]["body"] == "Changed"
