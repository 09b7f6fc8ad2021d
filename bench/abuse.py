"""The server under abuse (``make bench-abuse``): cache floods, silent clients, a locked table.

Each scenario serves a seeded database with gunicorn as deployed
(gunicorn.conf.py, :func:`bench.harness.deployed_settings`) and prints one
line of figures:

* **cache flood**: the resident memory (``VmRSS``) of every worker before and
  after ``BENCH_FLOOD_URLS`` (24,000) distinct URLs, half with a parameter no
  view reads (``/api/articles?junk=N``), half with distinct valid values
  (``?offset=N``); and whether a hot URL, read twice before the flood, is
  still a hit after it (``X-Cache``);
* **stalled clients**: ``BENCH_SILENT`` (32) connections opened and left
  silent, then as many that send half a request and stall; the time a normal
  ``GET /api/articles`` takes meanwhile, five times each;
* **locked table** (PostgreSQL only): an ``ACCESS EXCLUSIVE`` lock on
  ``articles`` held by another connection, twice as many concurrent
  ``GET /api/articles`` as the server has threads, then the time ``/healthz``
  takes; then the statuses the waiting requests got once the lock is gone.

``BENCH_ABUSE=flood,stalled,lock`` picks the scenarios. Load only goes to
127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import os
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.harness import HOST, Project, gunicorn, log, migrated_database
from scripts.throwaway import Server

FLOOD_URLS = int(os.environ.get("BENCH_FLOOD_URLS", "24000"))
SILENT = int(os.environ.get("BENCH_SILENT", "32"))
SCENARIOS = os.environ.get("BENCH_ABUSE", "flood,stalled,lock").split(",")
SIZES = {"users": 50, "articles": 200}
REQUEST_SECONDS = 60


def worker_pids(server: Server) -> list[int]:
    """The gunicorn master's children: its worker processes."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def rss_mib(pid: int) -> float:
    """A process's resident set (``VmRSS``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def get(port: int, path: str, timeout: float = REQUEST_SECONDS) -> tuple[int, str, float]:
    """One ``GET`` on a new connection: (status, ``X-Cache``, seconds)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("X-Cache", ""), time.monotonic() - started
    finally:
        connection.close()


def _flood(port: int, paths: list[str], threads: int = 4) -> Counter[int]:
    """GET every path on ``threads`` keep-alive connections; the statuses counted."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + 900

    def run(share: list[str]) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_SECONDS)
        try:
            for path in share:
                if time.monotonic() > deadline:
                    return
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                with lock:
                    statuses[response.status] += 1
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_SECONDS)
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, [paths[i::threads] for i in range(threads)]))
    return statuses


def cache_flood(kind: str, url: str, workdir: Path) -> dict[str, object]:
    hot = "/api/articles?limit=5"
    with gunicorn(url, workdir) as server:
        port = server.port
        for _ in range(20):  # every worker reads the hot URL twice (or more)
            get(port, hot)
        pids = worker_pids(server)
        before = {pid: rss_mib(pid) for pid in pids}
        half = FLOOD_URLS // 2
        started = time.monotonic()
        statuses = _flood(
            port,
            [f"/api/articles?junk={n}" for n in range(half)]
            + [f"/api/articles?offset={n}" for n in range(FLOOD_URLS - half)],
        )
        seconds = time.monotonic() - started
        after = {pid: rss_mib(pid) for pid in pids}
        hot_states = Counter(get(port, hot)[1] for _ in range(10))
    growth = [after[pid] - before[pid] for pid in pids]
    row = {
        "database": kind,
        "urls": FLOOD_URLS,
        "seconds": round(seconds, 1),
        "statuses": dict(statuses),
        "rss_before_mib": [round(before[pid], 1) for pid in pids],
        "rss_growth_mib": [round(g, 1) for g in growth],
        "hot_after_flood": dict(hot_states),
    }
    log(f"cache flood {kind}: {row}")
    return row


HALF_A_REQUEST = b"GET /api/articles HTTP/1.1\r\nHost: bench\r\n"  # and never the rest


@contextmanager
def stalled_connections(port: int, count: int, sent: bytes) -> Iterator[list[socket.socket]]:
    """``count`` connections that send ``sent`` (perhaps nothing), then stall till the end."""
    with ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.create_connection((HOST, port), timeout=10))
            for _ in range(count)
        ]
        for stalled in sockets:
            stalled.sendall(sent)
        yield sockets


def silent_clients(kind: str, url: str, workdir: Path) -> dict[str, object]:
    row: dict[str, object] = {"database": kind, "connections": SILENT}
    with gunicorn(url, workdir) as server:
        port = server.port
        get(port, "/api/articles")
        idle = sorted(get(port, "/api/articles")[2] for _ in range(5))
        row["idle_median_s"] = round(idle[2], 3)
        for label, sent in (("silent", b""), ("half_a_request", HALF_A_REQUEST)):
            with stalled_connections(port, SILENT, sent):
                time.sleep(0.2)  # the workers have accepted them
                timings = []
                for _ in range(5):
                    try:
                        status, _, seconds = get(port, "/api/articles", timeout=45)
                    except TimeoutError:
                        status, seconds = 0, float("inf")
                    timings.append(seconds if status == 200 else float("inf"))
            row[f"{label}_s"] = [round(t, 3) for t in timings]
    log(f"stalled clients {kind}: {row}")
    return row


def locked_table(url: str, workdir: Path) -> dict[str, object]:
    import psycopg

    from app.config import server_settings

    settings = server_settings()
    threads = settings.workers * settings.threads
    with gunicorn(url, workdir) as server:
        port = server.port
        get(port, "/api/articles")
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as locker:
            locker.execute("LOCK TABLE articles IN ACCESS EXCLUSIVE MODE")
            with ThreadPoolExecutor(2 * threads) as pool:
                waiting = [
                    pool.submit(get, port, f"/api/articles?limit={n % 20 + 1}&tag=t{n}")
                    for n in range(2 * threads)
                ]
                time.sleep(0.5)  # they reach the database and wait on the lock
                status, _, healthz_seconds = get(port, "/healthz", timeout=30)
                locker.rollback()
                statuses = Counter(future.result()[0] for future in waiting)
    row = {
        "waiting_requests": 2 * threads,
        "healthz_status": status,
        "healthz_s": round(healthz_seconds, 3),
        "waiting_statuses": dict(statuses),
    }
    log(f"locked table: {row}")
    return row


def run_abuse(databases: list[str]) -> None:
    """The three scenarios on each database; a table of figures at the end."""
    rows: list[tuple[str, dict[str, object]]] = []
    with tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp:
        workdir = Path(tmp)
        for kind in databases:
            with migrated_database(kind) as url:
                project = Project(url)
                project.seed(**SIZES)
                project.close()
                if "flood" in SCENARIOS:
                    rows.append(("cache flood", cache_flood(kind, url, workdir)))
                if "stalled" in SCENARIOS:
                    rows.append(("stalled clients", silent_clients(kind, url, workdir)))
                if kind == "postgresql" and "lock" in SCENARIOS:
                    rows.append(("locked table", locked_table(url, workdir)))
    print()
    for name, row in rows:
        print(f"{name}: {row}")
