"""The served app under abuse: silent connections, a locked table (gunicorn.conf.py, as deployed).

Behaviour, not performance: the bounds are generous (seconds), and what they
guard against took tens of seconds (docs/performance.md, "Under abuse").
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from tests import databases
from tests.apps import served_on
from tests.listening import wait_for
from tests.serving import ServedApp, port_of

pytestmark = pytest.mark.served  # gunicorn in a subprocess

STALLED_CONNECTIONS = 40  # more than the served app's 2 workers x 4 threads, many times over
SERVED_THREADS = 8


def timed_get(served: ServedApp, path: str) -> tuple[int, float]:
    client = served.client()
    try:
        started = time.monotonic()
        response = client.get(path, timeout=30)
        return response.status_code, time.monotonic() - started
    finally:
        client.close()


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"GET /api/articles HTTP/1.1\r\nHost: conduit.test\r\n",
        b"POST /api/users/login HTTP/1.1\r\nHost: conduit.test\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    ],
    ids=["silent", "half a request", "half a body"],
)
def test_a_request_is_answered_while_stalled_connections_are_open(
    served_app: ServedApp, sent: bytes
) -> None:
    with ExitStack() as stack:
        for _ in range(STALLED_CONNECTIONS):
            stalled = stack.enter_context(
                socket.create_connection(("127.0.0.1", port_of(served_app)))
            )
            stalled.sendall(sent)
        time.sleep(0.5)  # the workers have taken them

        answers = [timed_get(served_app, "/api/articles") for _ in range(3)]

    assert [status for status, _ in answers] == [200, 200, 200]
    assert max(seconds for _, seconds in answers) < 3


def test_a_silent_connection_that_speaks_late_is_answered(served_app: ServedApp) -> None:
    with socket.create_connection(("127.0.0.1", port_of(served_app)), timeout=10) as connection:
        time.sleep(1)
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: conduit.test\r\n\r\n")

        assert connection.recv(64).startswith(b"HTTP/1.1 200 ")


def test_a_body_sent_in_pieces_is_read_whole(served_app: ServedApp) -> None:
    body = b'{"user": {"email": "nobody@example.com", "password": "wrong"}}'
    head = (
        b"POST /api/users/login HTTP/1.1\r\nHost: conduit.test\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(("127.0.0.1", port_of(served_app)), timeout=10) as connection:
        connection.sendall(head + body[:10])
        time.sleep(0.5)
        connection.sendall(body[10:])

        assert connection.recv(64).startswith(b"HTTP/1.1 401 ")


@pytest.mark.parametrize("served_app", [databases.POSTGRESQL], indirect=True)
def test_liveness_answers_while_every_request_thread_waits_on_a_locked_table(
    served_app: ServedApp,
) -> None:
    url = make_url(served_app.database_url).set(drivername="postgresql")
    waiting_count = 2 * SERVED_THREADS
    conninfo = url.render_as_string(hide_password=False)
    with (
        psycopg.connect(conninfo) as locker,
        psycopg.connect(conninfo, autocommit=True) as watch,
        ThreadPoolExecutor(waiting_count) as pool,
    ):
        locker.execute("LOCK TABLE articles IN ACCESS EXCLUSIVE MODE")
        waiting = [
            pool.submit(timed_get, served_app, f"/api/articles?limit={n + 1}")
            for n in range(waiting_count)
        ]
        # every request thread is held
        wait_for(lambda: databases.lock_waiters(watch) >= SERVED_THREADS)

        liveness = timed_get(served_app, "/healthz")
        still_waiting = sum(not request.done() for request in waiting)
        locker.rollback()
        statuses = {request.result()[0] for request in waiting}

    assert still_waiting > 0  # the liveness probe really came while requests waited
    assert liveness[0] == 200
    assert liveness[1] < 1
    assert statuses <= {200, 503}


QUEUED_CONNECTIONS = 400  # one request each, behind the held threads (short-lived clients)


@pytest.mark.parametrize("served_app", [databases.POSTGRESQL], indirect=True)
def test_liveness_answers_while_connections_queue_behind_a_locked_table(
    served_app: ServedApp,
) -> None:
    url = make_url(served_app.database_url).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    request = b"GET /api/articles?limit=%d HTTP/1.1\r\nHost: conduit.test\r\n\r\n"
    with (
        psycopg.connect(conninfo) as locker,
        psycopg.connect(conninfo, autocommit=True) as watch,
        ExitStack() as stack,
    ):
        locker.execute("LOCK TABLE articles IN ACCESS EXCLUSIVE MODE")
        for n in range(2 * SERVED_THREADS + QUEUED_CONNECTIONS):
            connection = stack.enter_context(
                socket.create_connection(("127.0.0.1", port_of(served_app)))
            )
            connection.sendall(request % (n + 1))
            if n == 2 * SERVED_THREADS:  # the request threads are all held
                wait_for(lambda: databases.lock_waiters(watch) >= SERVED_THREADS)

        liveness = timed_get(served_app, "/healthz")
        locker.rollback()

    assert liveness[0] == 200
    assert liveness[1] < 1


def worker_rss_mib(served: ServedApp) -> float:
    """The resident memory of the served app's one worker process, MiB."""
    pid = served.server.process.pid
    (worker,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for line in Path(f"/proc/{worker}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(params=databases.PARAMS)
def one_worker_small_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServedApp]:
    """One worker process whose response cache may hold 1 MiB."""
    with served_on(
        request.param,
        tmp_path,
        "served_abuse",
        WEB_CONCURRENCY="1",
        RESPONSE_CACHE_MAX_BYTES=str(CACHE_BYTES),
    ) as served:
        yield served


CACHE_BYTES = 1024 * 1024


def test_a_flood_of_long_distinct_urls_stays_within_the_cache_bound(
    one_worker_small_cache: ServedApp,
) -> None:
    served = one_worker_small_cache
    client = served.client()
    for _ in range(50):  # the worker's own start-up allocations, first
        client.get("/api/articles?tag=warm-up")
    before = worker_rss_mib(served)

    for n in range(FLOOD_URLS):  # keys of ~7 KB each: 10 MiB if the bound forgot them
        assert client.get(f"/api/articles?tag={n}-{'x' * 7_000}").status_code == 200
    client.close()

    # Measured: 4.4 MiB (the cache's 1 MiB and the allocator's slack); 21 MiB when
    # an entry was counted as its body plus 256 bytes.
    assert worker_rss_mib(served) - before < CACHE_BYTES / 2**20 + 8


FLOOD_URLS = 1_500
