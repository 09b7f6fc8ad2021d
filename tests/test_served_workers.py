"""The served app's worker processes share bursts of keep-alive connections (app/web/worker.py).

gunicorn.conf.py as deployed: 2 worker processes of 4 threads each, polling
one listening socket. A connection stays with the worker that accepted it, so
a worker that took every connection of a burst served all of their requests
while its sibling idled (``make bench``: one endpoint at a third of its rate).
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from contextlib import ExitStack

import pytest

from tests.serving import ServedApp, connections_by_worker, port_of, read_answer

pytestmark = pytest.mark.served  # gunicorn in a subprocess

BURST = 32  # connections opened at once, as make bench's wrk -c32
BURSTS = 3  # one right after another, as make bench's warm-up and measured runs
SENDING_SECONDS = 1.0
REQUEST = b"GET /api/tags HTTP/1.1\r\nHost: conduit.test\r\n\r\n"


def burst(served: ServedApp, statuses: Counter[int]) -> dict[int, int]:
    """Open :data:`BURST` connections at once, keep a request in flight on each for a while.

    Returns how many of them each worker process held (by pid); ``statuses`` counts the answers.
    """
    with ExitStack() as stack:
        connections = []
        for _ in range(BURST):  # all connect first, then each sends, as wrk does
            connection = stack.enter_context(socket.socket())
            connection.setblocking(False)
            connection.connect_ex(("127.0.0.1", port_of(served)))
            connections.append(connection)
        for connection in connections:
            connection.settimeout(30)
            connection.sendall(REQUEST)
        deadline = time.monotonic() + SENDING_SECONDS
        while time.monotonic() < deadline:
            for connection in connections:
                statuses[read_answer(connection).status] += 1
                connection.sendall(REQUEST)
        held = connections_by_worker(served)
        for connection in connections:
            statuses[read_answer(connection).status] += 1
    return held


def both_workers_started(served: ServedApp, seconds: float = 30.0) -> None:
    """Bursts until each worker has held a connection: one still starting up holds none.

    The server answers its readiness probe as soon as one worker does; on a
    loaded machine its sibling may still be booting when the first burst comes.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        held = burst(served, Counter())
        if len(held) == 2 and min(held.values()) > 0:
            return
    pytest.fail(f"a worker held no connection of any burst for {seconds} s")


def test_bursts_of_keep_alive_connections_are_served_by_both_workers(
    served_app: ServedApp,
) -> None:
    both_workers_started(served_app)
    statuses: Counter[int] = Counter()
    held = [burst(served_app, statuses) for _ in range(BURSTS)]

    assert set(statuses) == {200}
    # Each worker answered the requests of some connections of every burst.
    assert [len(counts) for counts in held] == [2] * BURSTS
    assert [min(counts.values()) > 0 for counts in held] == [True] * BURSTS, held
