"""Waiting for the response cache's change feed in tests (it listens in the background)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from app.data.change_feed import ChangeFeed, PostgresChangeFeed

# How long a test waits for another instance to see a write before failing. A
# bound on "eventually", not a latency promise (make bench-replicas measures
# that, in milliseconds): generous, so a busy machine's stall fails no test.
DEADLINE_SECONDS = 30.0


def wait_for(condition: Callable[[], bool], seconds: float = DEADLINE_SECONDS) -> float:
    """Poll until ``condition()``; returns the seconds it took, fails past the deadline."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not within {seconds} s")
        time.sleep(0.002)
    return time.monotonic() - started


def feed_of(app: Flask) -> ChangeFeed:
    return app.extensions["change_feed"]


def wait_until_listening(app: Flask) -> None:
    """PostgreSQL: the listener connects in the background; the cache is off until then."""
    feed = feed_of(app)
    feed.current()
    if isinstance(feed, PostgresChangeFeed):
        wait_for(lambda: feed.online)


class HeldNotices:
    """What ``app`` hears from other instances, held back from :meth:`hold` to :meth:`release`."""

    def __init__(self, app: Flask) -> None:
        self.feed = feed_of(app)
        self.heard = self.feed.heard
        self.released = threading.Event()

    def hold(self) -> None:
        """From now on each notice waits for :meth:`release`: a replica whose listener is slow."""
        released, heard = self.released, self.heard

        def slow(payload: str) -> None:
            released.wait(DEADLINE_SECONDS)
            heard(payload)

        self.feed.heard = slow  # type: ignore[method-assign]

    def release(self) -> None:
        self.released.set()


@contextlib.contextmanager
def late_notices(app: Flask) -> Iterator[HeldNotices]:
    """``app``'s notices, to hold back (:class:`HeldNotices`); released and restored at the end."""
    notices = HeldNotices(app)
    try:
        yield notices
    finally:
        notices.release()
        notices.feed.heard = notices.heard  # type: ignore[method-assign]
