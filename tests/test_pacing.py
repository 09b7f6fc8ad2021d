"""A chore asked for often runs at most once per interval, and the last ask is never lost."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from app.data.pacing import Pacer
from tests.listening import wait_for

WITHIN_SECONDS = 5.0  # what "soon" may take on a loaded machine
# A run notes its start a moment after the pacer does (a thread switch: 5 ms each).
SLACK_SECONDS = 0.02


class Work:
    """Records each run: when it started, in which thread; answers ``done`` in turn."""

    def __init__(self, *done: bool) -> None:
        self.runs: list[tuple[float, threading.Thread]] = []
        self._done = list(done)

    def __call__(self) -> bool:
        self.runs.append((time.monotonic(), threading.current_thread()))
        return self._done.pop(0) if self._done else True

    def starts(self) -> list[float]:
        return [started for started, _ in self.runs]

    def threads(self) -> list[threading.Thread]:
        return [thread for _, thread in self.runs]


@pytest.fixture
def pacers() -> Iterator[Callable[..., Pacer]]:
    """``pacers(work, interval)``: a pacer closed after the test (no timer left behind)."""
    made: list[Pacer] = []

    def make(work: Work, interval: float) -> Pacer:
        pacer = Pacer(work, interval, name="test chore")
        made.append(pacer)
        return pacer

    yield make
    for pacer in made:
        pacer.close()


def test_an_interval_of_0_runs_every_ask_at_once_in_the_asking_thread(pacers):
    work = Work()
    pacer = pacers(work, 0)

    for _ in range(3):
        pacer.ask()

    assert work.threads() == [threading.current_thread()] * 3


def test_the_first_ask_runs_at_once_in_the_asking_thread(pacers):
    work = Work()

    pacers(work, 60).ask()

    assert work.threads() == [threading.current_thread()]


def test_asks_within_the_interval_share_one_run_an_interval_after_the_last_start(pacers):
    work = Work()
    pacer = pacers(work, 0.3)

    for _ in range(5):
        pacer.ask()

    wait_for(lambda: len(work.runs) == 2, WITHIN_SECONDS)
    first, second = work.starts()
    assert second - first >= 0.3 - SLACK_SECONDS
    assert work.threads()[1] is not threading.current_thread()
    time.sleep(0.5)  # past another interval: nothing else was asked for
    assert len(work.runs) == 2


def test_runs_start_at_least_an_interval_apart_however_often_asked(pacers):
    work = Work()
    pacer = pacers(work, 0.1)

    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        pacer.ask()
        time.sleep(0.001)

    wait_for(
        lambda: all(t.name != "test chore (deferred)" for t in threading.enumerate()),
        WITHIN_SECONDS,
    )
    starts = work.starts()
    assert 2 <= len(starts) <= 7
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.1 - SLACK_SECONDS


def test_work_left_undone_runs_again_an_interval_later_without_another_ask(pacers):
    work = Work(False, True)  # another process held its lock the first time

    pacers(work, 0.2).ask()

    wait_for(lambda: len(work.runs) == 2, WITHIN_SECONDS)
    first, second = work.starts()
    assert second - first >= 0.2 - SLACK_SECONDS


def test_close_runs_the_deferred_run_at_once_and_later_asks_run_at_once(pacers):
    work = Work()
    pacer = pacers(work, 60)
    pacer.ask()
    pacer.ask()  # deferred a minute
    assert len(work.runs) == 1

    pacer.close()

    assert work.threads() == [threading.current_thread()] * 2
    pacer.ask()
    assert len(work.runs) == 3
    pacer.close()  # twice: nothing left to run
    assert len(work.runs) == 3


def test_close_runs_work_left_undone_again_until_done(pacers):
    work = Work(True, False, False, True)  # the deferred run finds another process's lock twice
    pacer = pacers(work, 60)
    pacer.ask()
    pacer.ask()  # deferred a minute

    pacer.close()

    assert work.threads() == [threading.current_thread()] * 4
    pacer.close()  # twice: nothing left to run
    assert len(work.runs) == 4


def test_close_runs_again_what_the_deferred_run_under_way_left_undone(pacers):
    deferred_running, finish = threading.Event(), threading.Event()
    runs: list[threading.Thread] = []

    def work() -> bool:
        runs.append(threading.current_thread())
        if len(runs) == 2:  # the deferred run: under way when close() comes, then undone
            deferred_running.set()
            finish.wait(WITHIN_SECONDS)
            return False
        return True

    pacer = pacers(work, 0.05)
    pacer.ask()  # runs at once
    pacer.ask()  # deferred: runs in a timer thread
    assert deferred_running.wait(WITHIN_SECONDS)
    threading.Timer(0.1, finish.set).start()

    pacer.close()

    assert len(runs) == 3
    assert runs[2] is threading.current_thread()
