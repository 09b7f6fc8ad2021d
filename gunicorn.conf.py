"""gunicorn settings: ``gunicorn -c gunicorn.conf.py wsgi:app`` (``make serve``).

Read like every other entry point's (app/config.py): the environment, then
``.env``, then these defaults. A bad value stops startup with one line.

| variable                    | default                 |
| --------------------------- | ----------------------- |
| HOST / PORT                 | 127.0.0.1 / 5000        |
| WEB_CONCURRENCY             | worker processes: CPUs  |
| GUNICORN_WORKER_CLASS       | app.web.worker.ThreadWorker |
| GUNICORN_THREADS            | 4 (threaded workers)    |
| GUNICORN_TIMEOUT            | 30 s                    |
| GUNICORN_GRACEFUL_TIMEOUT   | 20 s                    |
| GUNICORN_CONTROL_SOCKET     | none                    |
| LOG_LEVEL / LOG_FORMAT      | INFO / json (text in development) |
| METRICS_PORT                | none: no metrics server |
| METRICS_DIRECTORY           | a temporary folder      |

Worker class and threads were chosen by measurement (``make bench-workers``:
wrk -t2 -c32 -d10s on GET /api/articles, PostgreSQL with 2,000 seeded
articles, on the 2-core machine that also runs PostgreSQL and wrk; a bare
Flask route returning the same bytes under the same settings alongside).
Requests/s, project / ceiling:

    sync    -w 2          147 / 3,657
    sync    -w 3          262 / 3,056
    sync    -w 4          192 / 3,092
    gthread -w 2 -t 1     176 / 4,883
    gthread -w 2 -t 2     335 / 5,740
    gthread -w 2 -t 4     343 / 5,526
    gthread -w 2 -t 8     359 / 6,697
    gthread -w 3 -t 4     264 / 8,087

(The machine was shared with other jobs: treat differences under ~15% as
noise.) gthread beats sync at every worker count: a thread waiting on
PostgreSQL or on a slow client no longer idles its process, and keep-alive
connections do not pin a worker. Past one process per core, extra processes
only compete with PostgreSQL for the same cores; past 2-4 threads the gain
is within noise while each thread may hold a database connection (the pool
keeps 5 per process). Hence one worker per CPU, 4 threads each.

The worker class is gthread with three changes (app/web/worker.py). Two
were measured with ``make bench-abuse`` on the same machine
(docs/performance.md, "Under abuse"): a new connection waits in the poller,
not in a thread, until it has sent a whole request head, and ``/healthz``
has a pool of its own.

    GET /api/articles, 32 silent connections open         34.8 s -> 0.005 s
    GET /api/articles, 32 connections sent half a request  3 of 5: none in 45 s -> 0.02 s
    /healthz while 16 requests wait on a locked table      14.6 s -> 0.008 s

The third: a worker with requests waiting for a thread takes at most one new
connection per 20 ms, so an idle sibling takes the rest (nginx's
``accept_disabled`` in spirit). Every worker polls the one listening socket
and the one already running won the race: wrk's 32 keep-alive connections
all went to one worker in some ``make bench`` runs, and that endpoint ran at
~1,000 req/s instead of ~3,000. Standard bench, PostgreSQL, cache on, on the
machine shared with other jobs (load 10-13): the seven read endpoints
1,279-2,443 req/s before, 2,325-2,656 after. gunicorn's ``reuse_port`` was
not taken: with ``PORT=0`` each worker would listen on a port of its own.
"""

import gc
import os

from gunicorn import util

from app.config import ConfigurationError, server_settings
from app.web import http_edges, metrics
from app.web.request_log import gunicorn_logconfig

try:
    settings = server_settings()
except ConfigurationError as error:
    raise SystemExit(f"configuration error: {error}") from None

bind = settings.bind
workers = settings.workers
worker_class = settings.worker_class
threads = settings.threads

# Graceful: a worker that stops answering is replaced after ``timeout``; on
# SIGTERM (a deploy, a scale-down) workers finish the requests in flight for up
# to ``graceful_timeout`` before they are killed.
timeout = settings.timeout
graceful_timeout = settings.graceful_timeout
keepalive = 5  # above nginx's upstream keepalive_timeout would be wasted; 5 s is enough
# The workers' heartbeat files live in memory, not on a disk that may stall.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

# Requests gunicorn refuses itself. The request line's limit is gunicorn's
# maximum, above the application's own URL limit (app/web/http_edges.py:
# MAX_URL_LENGTH), so URLs up to that limit reach the application and longer
# ones get its 414; gunicorn's own refusals (longer request lines, headers past
# limit_request_field_size) are written in the API's error envelope, not HTML.
limit_request_line = 8190


# Metrics (app/web/metrics.py): every worker writes its samples to files in one
# folder, set up here, before the app (and so prometheus_client) is imported;
# the master serves their sum on METRICS_PORT, never on the API's port.
if settings.metrics_port is not None:
    metrics.prepare_multiprocess(settings.metrics_directory)


def when_ready(server):
    """The master, listening: serve every worker's metrics on ``METRICS_PORT``."""
    if settings.metrics_port is not None:
        port = metrics.serve_multiprocess(server.app.wsgi(), settings.host, settings.metrics_port)
        server.log.info("Metrics at: http://%s:%s/metrics", settings.host, port)


def pre_fork(server, worker):
    """Freeze what the master built (the preloaded app): a worker's full collections skip it.

    Python's cyclic garbage collector walks every tracked object in a full
    (oldest generation) collection, with the GIL held: in a worker that was
    the whole preloaded app, about 140,000 objects, 95-125 ms during which
    none of its requests ran, twice in a 10 s write mix (most of that mix's
    p99, docs/performance.md). ``gc.freeze()`` moves them into a permanent
    generation no collection visits, as the gc module's documentation advises
    before ``fork()``; what a worker creates is collected as before.
    """
    gc.collect()
    gc.freeze()


def post_fork(server, worker):
    """A worker never answers on the master's metrics port."""
    metrics.close_inherited_listener()


def child_exit(server, worker):
    """A worker is gone: its live gauges (in flight, pool, cache size) stop counting."""
    if settings.metrics_port is not None:
        metrics.process_exited(worker.pid)


def worker_exit(server, worker):
    """A worker stops: it folds the running totals its pending timer would have.

    Without it the last deltas of a burst wait for another write (the totals
    read the same; the previous release's stored values lag): app/data/counters.py.
    """
    from app.data import counters

    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        counters.close(app)


def on_exit(server):
    if settings.metrics_port is not None:
        metrics.remove_temporary_directory()


def on_starting(server):
    """Before the workers fork: gunicorn's refusals in the envelope (app/web/http_edges.py)."""
    util.write_error = http_edges.write_gunicorn_error


# gunicorn's control socket (gunicornc) defaults to one path in the user's
# home, shared by every gunicorn they run: each server gets its own, or none.
if settings.control_socket:
    control_socket = settings.control_socket
else:
    control_socket_disable = True

# gunicorn's own lines (start, workers, errors) in the application's format;
# no access log: the application logs one line per request. gunicorn's logger
# does not build its access line (app.web.worker.Logger), and gunicorn_logconfig
# discards gunicorn.access, which a logconfig_dict would otherwise turn on.
logger_class = "app.web.worker.Logger"
loglevel = settings.log_level.lower()
accesslog = None
errorlog = "-"
logconfig_dict = gunicorn_logconfig(settings.log_format)

# Build the app once in the master: a bad configuration stops startup with one
# line (wsgi.py turns ConfigurationError into SystemExit) instead of a crash
# loop of workers, and workers fork with the code already imported. Nothing
# connects to the database at import, so no connection crosses the fork.
preload_app = True
