"""Prometheus metrics on a port of their own (``METRICS_PORT``), never on the API's.

What an operator graphs and alerts on (docs/operations.md lists every series
and what it means): requests by route template, method and status, their
latency, requests in flight, the database pool, the response cache, the
change feed, throttled answers (429), the read replicas (which serve, and
which database each safe request read from), the running totals' drift found
by ``flask counters verify`` and whether the schema is at this release's head.

Off unless ``METRICS_PORT`` is set: then nothing is hooked into a request and
``prometheus_client`` is not even imported.

Several processes (gunicorn.conf.py): ``prometheus_client``'s multiprocess
mode. Each worker writes its samples to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (:func:`prepare_multiprocess`, before the app is
imported); the master serves their sum on ``METRICS_PORT``
(:func:`serve_multiprocess`) and forgets a worker's live gauges when it exits.
One process (``make run``): :func:`serve` reads the app's own registry.

A request costs a few memory-mapped writes: label children are made once per
(route, method, status) and kept in a dict; routes are the URL rules (the
templates, never the raw path), methods outside HTTP's usual ones count as
``OTHER``, so the series stay bounded.

Read when scraped, in the scraping process (:class:`ScrapeCollector`): the
schema against the migrations' head (one query, on a connection opened for
it), the change feed's last move (shared memory), and what ``flask counters
verify`` last found (a file it writes in ``METRICS_DIRECTORY``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.data import change_feed, counters
from app.extensions import REPLICAS_EXTENSION, db
from app.web import database_errors

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

EXTENSION = "metrics"
SCRAPE_EXTENSION = "metrics_schema_at_head"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # the route of a request no URL rule matched (404, 405)
THROTTLED = 429
# Seconds. A cache hit answers in well under a millisecond; a request past 10 s is a timeout.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CACHE_HEADER = "X-Cache"  # hit, miss or off (app/web/response_cache.py)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The app's instruments, registered in ``registry`` (one process) or written to the
    multiprocess files (gunicorn)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        self.requests = Counter(
            "conduit_http_requests",
            "Requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "conduit_http_request_duration_seconds",
            "Time from the first request hook to the last response hook, by route and method.",
            ("route", "method"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "conduit_http_requests_in_flight",
            "Requests being answered now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.throttled = Counter(
            "conduit_http_throttled",
            "Requests answered 429 Too Many Requests, by route template.",
            ("route",),
            registry=registry,
        )
        self.cache_lookups = Counter(
            "conduit_response_cache_lookups",
            "Hot reads by what the response cache did: hit, miss, or off (the change feed "
            "could not vouch, so the database answered).",
            ("result",),
            registry=registry,
        )
        self.cache_evictions = Counter(
            "conduit_response_cache_evictions",
            "Entries dropped to make room (least recently used first).",
            registry=registry,
        )
        self.cache_entries = Gauge(
            "conduit_response_cache_entries",
            "Answers held by the response caches of the live processes.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.cache_bytes = Gauge(
            "conduit_response_cache_bytes",
            "Bytes held by the response caches of the live processes (bodies and overhead).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_checked_out = Gauge(
            "conduit_db_pool_checked_out",
            "Database connections lent to requests now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_overflow = Gauge(
            "conduit_db_pool_overflow",
            "Connections open beyond the pools' size (above 0: the pools are exhausted and "
            "borrow from max_overflow; requests may wait).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge(
            "conduit_db_pool_size",
            "Connections the pools keep (pool_size, per process, summed).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_timeouts = Counter(
            "conduit_db_pool_timeouts",
            "Requests that waited pool_timeout for a connection in vain (answered 503).",
            registry=registry,
        )
        self.feed_online = Gauge(
            "conduit_change_feed_online_processes",
            "Processes whose change feed vouches for the stamps (listening, or "
            "SQLite's data_version readable).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.feed_offline = Gauge(
            "conduit_change_feed_offline_processes",
            "Processes whose change feed cannot vouch now: their response cache is off.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.replica_serving = Gauge(
            "conduit_db_replica_serving",
            "1 while a read replica (DATABASE_REPLICA_URLS) is in rotation: reachable, "
            "replicating, within DATABASE_REPLICA_MAX_LAG_BYTES; 0 while it is not. The "
            "lowest verdict of the live processes.",
            ["replica"],
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.reads = Counter(
            "conduit_db_reads",
            "Safe requests (GET, HEAD) by the database they read from: 'primary' or a "
            "replica's host:port. Only with read replicas configured.",
            ["database"],
            registry=registry,
        )
        self._routes: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}
        self._throttled: dict[str, Any] = {}
        self._lookups = {
            result: self.cache_lookups.labels(result) for result in ("hit", "miss", "off")
        }
        self._evictions_seen = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (route, method, status)
        counter = self._routes.get(key)
        if counter is None:
            counter = self._routes.setdefault(key, self.requests.labels(route, method, str(status)))
        counter.inc()
        histogram = self._durations.get(key[:2])
        if histogram is None:
            histogram = self._durations.setdefault(key[:2], self.duration.labels(route, method))
        histogram.observe(seconds)
        if status == THROTTLED:
            throttled = self._throttled.get(route)
            if throttled is None:
                throttled = self._throttled.setdefault(route, self.throttled.labels(route))
            throttled.inc()

    def cache_lookup(self, result: str, cache: Any) -> None:
        """Count a hot read's cache result; after a miss (an answer stored), the cache's size."""
        child = self._lookups.get(result)
        if child is not None:
            child.inc()
        if result == "miss" and cache is not None:
            self.cache_entries.set(len(cache))
            self.cache_bytes.set(cache.size_bytes)
            evictions = cache.evictions
            if evictions > self._evictions_seen:
                self.cache_evictions.inc(evictions - self._evictions_seen)
                self._evictions_seen = evictions

    def replica_checked(self, name: str, serving: bool) -> None:
        """A replica's health check found it serving (``True``) or out of rotation."""
        self.replica_serving.labels(name).set(1 if serving else 0)

    def read_from(self, database: str) -> None:
        """A safe request was routed to ``database`` (a replica's name or ``primary``)."""
        self.reads.labels(database).inc()

    def feed_vouching(self, online: bool) -> None:
        """The change feed of this process started (``True``) or stopped vouching."""
        self.feed_online.set(1 if online else 0)
        self.feed_offline.set(0 if online else 1)


def init_app(app: Flask, schema_at_head: Callable[[Connection], bool] | None = None) -> None:
    """Count requests when ``METRICS_PORT`` is set; otherwise do nothing at all.

    Call last in ``create_app``: the hooks are put first in Flask's lists, so
    the timing starts before any other ``before_request`` (a cache hit
    answers there) and ends after every ``after_request`` (the final status,
    a 304, the ``X-Cache`` header). ``schema_at_head`` answers, on a
    connection, whether the schema is at this code's migration head.
    """
    if app.config.get("METRICS_PORT") is None:
        return
    from prometheus_client import CollectorRegistry, disable_created_metrics

    disable_created_metrics()  # the *_created series: noise on a dashboard
    metrics = Metrics(CollectorRegistry(auto_describe=True))
    metrics.registry.register(ScrapeCollector(app, schema_at_head))
    app.extensions[EXTENSION] = metrics
    app.extensions[SCRAPE_EXTENSION] = schema_at_head
    cache = app.extensions.get("response_cache")
    perf_counter = time.perf_counter

    def start() -> None:
        g.metrics_started = perf_counter()
        metrics.in_flight.inc()

    def finish(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is None:
            return response
        rule = request.url_rule
        method = request.method
        metrics.observe(
            rule.rule if rule is not None else UNMATCHED,
            method if method in METHODS else "OTHER",
            response.status_code,
            perf_counter() - started,
        )
        result = response.headers.get(CACHE_HEADER)
        if result is not None:
            metrics.cache_lookup(result, cache)
        return response

    def done(_exception: BaseException | None) -> None:
        if g.pop("metrics_started", None) is not None:
            metrics.in_flight.dec()

    def pool_timeout(error: PoolTimeoutError) -> Response:
        metrics.pool_timeouts.inc()
        return database_errors.database_error(error)

    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request_funcs.setdefault(None, []).insert(0, finish)
    app.teardown_request_funcs.setdefault(None, []).insert(0, done)
    app.register_error_handler(PoolTimeoutError, pool_timeout)
    with app.app_context():
        _watch_pool(db.engine, metrics)
    feed = app.extensions.get(change_feed.EXTENSION)
    if feed is not None:
        feed.watchers.append(metrics.feed_vouching)
    router = app.extensions.get(REPLICAS_EXTENSION)
    if router is not None:
        router.health_watchers.append(metrics.replica_checked)
        router.read_watchers.append(metrics.read_from)


def _watch_pool(engine: Engine, metrics: Metrics) -> None:
    """The pool's gauges, set as connections are checked out and in (QueuePool only)."""
    if not hasattr(engine.pool, "checkedout"):
        return  # SQLite in memory: one connection, nothing to watch

    def update(returning: int) -> None:
        pool: Any = engine.pool  # a new one after engine.dispose(); events carry over
        metrics.pool_checked_out.set(max(pool.checkedout() - returning, 0))
        metrics.pool_overflow.set(max(pool.overflow(), 0))
        metrics.pool_size.set(pool.size())

    def checked_out(*_: Any) -> None:
        update(0)

    def checked_in(*_: Any) -> None:
        update(1)  # the event comes before the pool takes the connection back

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)


def exposition(app: Flask) -> bytes:
    """This process's metrics in Prometheus' text format (what :func:`serve` answers)."""
    from prometheus_client import generate_latest

    return generate_latest(app.extensions[EXTENSION].registry)


# --- read when scraped ----------------------------------------------------------


class ScrapeCollector:
    """What is read at scrape time rather than counted: see the module's docstring."""

    def __init__(self, app: Flask, schema_at_head: Callable[[Connection], bool] | None) -> None:
        self.app = app
        self.schema_at_head = schema_at_head
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        return []  # read when collected: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        at_head = self._schema_at_head()
        if at_head is not None:
            yield GaugeMetricFamily(
                "conduit_schema_at_head",
                "1 when the database's applied migration revision is this release's head, "
                "0 when it is not (behind, ahead, or branched); absent when unreachable.",
                value=1 if at_head else 0,
            )
        feed = self.app.extensions.get(change_feed.EXTENSION)
        if feed is not None and feed.stamps.changed_at:
            yield GaugeMetricFamily(
                "conduit_change_feed_last_change_timestamp_seconds",
                "Unix time the change feed last moved a stamp (a write committed here, "
                "a notification from another process or replica, a reconnection).",
                value=feed.stamps.changed_at,
            )
        yield from self._counters_findings()

    def _schema_at_head(self) -> bool | None:
        if self.schema_at_head is None:
            return None
        from sqlalchemy import create_engine
        from sqlalchemy.exc import SQLAlchemyError
        from sqlalchemy.pool import NullPool

        with self.app.app_context():
            with self._lock:
                if self._engine is None:
                    # Its own connection, closed after each scrape: the gunicorn
                    # master pools none that a worker forked later would inherit.
                    self._engine = create_engine(db.engine.url, poolclass=NullPool)
            try:
                with self._engine.connect() as connection:
                    return self.schema_at_head(connection)
            except SQLAlchemyError:
                return None

    def _counters_findings(self) -> Iterator[Metric]:
        directory = self.app.config.get("METRICS_DIRECTORY")
        if not directory:
            return
        try:
            text = (Path(directory) / counters.METRICS_FILE).read_text()
        except OSError:
            return
        from prometheus_client.parser import text_string_to_metric_families

        yield from text_string_to_metric_families(text)


# --- serving --------------------------------------------------------------------

_served: list[Any] = []  # the metrics server(s) this process started
_PREPARED_BY = "CONDUIT_METRICS_PREPARED_BY"  # the process that set PROMETHEUS_MULTIPROC_DIR
_TEMPORARY = "CONDUIT_METRICS_TEMPORARY_DIRECTORY"  # set when that folder is ours to remove


def serve(app: Flask, host: str, port: int) -> int:
    """Serve this process's metrics on ``host:port`` from a thread (``make run``).

    Returns the port listened on (``port``, or the one the kernel picked for ``0``).
    """
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, host, registry=app.extensions[EXTENSION].registry)
    _served.append(server)
    return int(server.server_port)


def prepare_multiprocess(directory: str | None) -> str:
    """Point ``prometheus_client`` at the folder the worker processes write their samples to.

    Call before ``prometheus_client`` is first imported (gunicorn.conf.py, before
    the app loads). ``directory`` (``METRICS_DIRECTORY``) is emptied of the
    previous run's samples (``*.db``); unset, a new temporary folder is made.
    Once per process: gunicorn reads its configuration again on ``HUP``, and
    the running workers keep writing where they were.
    """
    current = os.environ.get(MULTIPROC_ENV)
    if current and os.environ.get(_PREPARED_BY) == str(os.getpid()):
        return current
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (memory, not disk)
        directory = tempfile.mkdtemp(prefix="conduit-metrics-", dir=base)
        os.environ[_TEMPORARY] = directory
    os.environ[MULTIPROC_ENV] = directory
    os.environ[_PREPARED_BY] = str(os.getpid())
    return directory


def serve_multiprocess(app: Flask, host: str, port: int) -> int:
    """Serve every worker's samples, summed, on ``host:port`` (the gunicorn master).

    Returns the port listened on (``port``, or the one the kernel picked for ``0``).
    """
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(ScrapeCollector(app, app.extensions.get(SCRAPE_EXTENSION)))
    server, _thread = start_http_server(port, host, registry=registry)
    _served.append(server)
    return int(server.server_port)


def close_inherited_listener() -> None:
    """In a forked worker: close the master's metrics socket (only the master answers on it)."""
    for server in _served:
        server.socket.close()
    _served.clear()


def stop() -> None:
    """Stop the metrics server(s) this process started (tests)."""
    for server in _served:
        server.shutdown()
        server.server_close()
    _served.clear()


def process_exited(pid: int) -> None:
    """A worker exited: its live gauges (in flight, pool, cache size) no longer count."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid)


def remove_temporary_directory() -> None:
    """At the master's exit: remove the samples folder :func:`prepare_multiprocess` made."""
    directory = os.environ.get(_TEMPORARY)
    if directory and os.environ.get(_PREPARED_BY) == str(os.getpid()):
        shutil.rmtree(directory, ignore_errors=True)
