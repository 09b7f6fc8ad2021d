"""gunicorn's threaded worker, with a thread only for a request that has arrived.

``gunicorn -k app.web.worker.ThreadWorker`` (gunicorn.conf.py's default) is
gunicorn 27's ``gthread`` worker with three changes, all on the worker's main
thread, the one that polls the sockets:

* **A request's head is gathered by the poller, not by a thread.** ``gthread``
  hands every new connection to a pool thread that waits up to 5 s for its
  first bytes (``gthread.DEFAULT_WORKER_DATA_TIMEOUT``, not a setting), then
  reads the request line and headers blocking, for as long as the client
  takes: 32 connections opened and left silent held every thread of two
  workers for rounds of 5 s (a normal request waited 35-40 s), and a client
  that sent half a request line held a thread until it hung up. Here the
  poller reads what a connection sends, without blocking, until the head is
  complete (an empty line), then hands it to a thread with those bytes; a new
  connection whose head is not complete within :data:`FIRST_REQUEST_SECONDS`,
  or a kept-alive one within ``keepalive``, is closed. A body announced by
  ``Content-Length`` (up to :data:`MAX_GATHERED_BODY_BYTES`) is gathered the
  same way, under the same deadline: a client that stops halfway through its
  body holds no thread (eight such clients used to hold every thread of a
  worker for as long as they kept the connection open). A chunked body, one
  that waits for ``100 Continue``, or a larger one still comes in on the
  thread, as in ``gthread`` (nginx, deploy/, buffers whole requests in front).
* **A liveness lane.** A request whose line is ``GET /healthz`` (or
  ``HEAD``) goes to a small pool of its own (:data:`PROBE_THREADS`), so a
  liveness probe answers while every request thread waits on the database (a
  table a migration locks: each waits up to ``DATABASE_LOCK_TIMEOUT``). The
  application serves it as any other request. ``/readyz`` reads the database
  and stays in the request pool.
* **A busy worker leaves new connections to its siblings.** Every worker
  polls the one listening socket, and the one already running wins the race
  to accept: 32 keep-alive connections opened at once (``make bench``'s wrk)
  sometimes all went to one worker, which served them at ~1,000 req/s for
  the whole run while the other idled (~3,000 req/s when shared), as a
  connection never moves. A worker with more requests than threads takes at
  most one new connection per :data:`ACCEPT_PAUSE_SECONDS`, nginx's
  ``accept_disabled`` in spirit (:meth:`ThreadWorker.accepting`); one whose
  threads are not all busy accepts at once. gunicorn's ``reuse_port`` (a
  listening socket per worker) would spread them too, but each worker would
  get a port of its own with ``PORT=0``, a dying worker would reset the
  connections queued on its socket, and a second server could share the port
  unnoticed.

With TLS (``certfile``) the poller cannot read the head and connections go to
a thread as in ``gthread``, after the first bytes arrive. The first two
changes were measured with ``make bench-abuse`` (docs/performance.md, "Under
abuse"); the third with ``make bench`` and tests/test_served_workers.py.
"""

from __future__ import annotations

import re
import selectors
import socket
import struct
import time
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn import glogging
from gunicorn.workers import gthread

FIRST_REQUEST_SECONDS = 10.0  # what gthread allows: 5 s in a thread, then keepalive (5 s)
PROBE_THREADS = 2
PROBE_REQUESTS = (b"GET /healthz ", b"GET /healthz?", b"HEAD /healthz ", b"HEAD /healthz?")
MAX_HEAD_BYTES = 64 * 1024  # past this the head goes to a thread, whose parser refuses it
# A body the poller waits for: the largest the app accepts (MAX_CONTENT_LENGTH, 1 MiB)
# and some; a larger one goes to a thread, where the app answers 413.
MAX_GATHERED_BODY_BYTES = 1024 * 1024 + 64 * 1024
# How long a worker with requests waiting for a thread leaves new connections to
# its siblings before it takes one itself; a liveness probe waits at most this
# long to be accepted by a worker whose every thread is held.
ACCEPT_PAUSE_SECONDS = 0.02
# More connections than this waiting on the listening socket are more than a
# sibling left to them would take (wrk opens 32 at once): a worker drains them
# whatever its load, as gthread does, so a liveness probe among them is not
# left behind hundreds of others at one per pause (4 s behind 400).
ACCEPT_QUEUE_DRAIN = 32
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*(.*?)[ \t]*\r?$")


class Logger(glogging.Logger):
    """gunicorn's logger without its access line (``logger_class``, gunicorn.conf.py).

    The application writes one line per request (``app.request``,
    app/web/request_log.py). gunicorn builds its own access line whenever a
    ``logconfig_dict`` is set, as gunicorn.conf.py's is, even though that
    configuration sends it nowhere: 3% of a worker's time under the write mix.
    """

    @property
    def access_log_enabled(self) -> bool:
        return False


def queued_connections(listener: socket.socket) -> int | None:
    """How many connections wait in ``listener``'s accept queue; ``None``: not known here.

    Linux reports it in ``TCP_INFO`` of a listening socket as ``tcpi_unacked``
    (``ss -lnt``'s Recv-Q); a Unix socket or another system says nothing.
    """
    try:
        info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES)
    except (AttributeError, OSError):
        return None
    if len(info) < _TCP_INFO_BYTES:
        return None
    return int(struct.unpack_from("=I", info, _TCPI_UNACKED)[0])


# struct tcp_info (linux/tcp.h): eight one-byte fields, then rto, ato, snd_mss,
# rcv_mss, unacked (a listening socket: its accept queue), ... as 32-bit words.
_TCPI_UNACKED = 24
_TCP_INFO_BYTES = 32


def is_probe(head: bytes) -> bool:
    """Whether a request's first bytes are a liveness probe's request line."""
    return head.startswith(PROBE_REQUESTS)


class Connection(gthread.TConn):
    """gthread's connection, with the bytes the poller gathered before a thread takes it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.head = b""

    def init(self) -> None:
        super().init()
        self.hand_over_head()

    def hand_over_head(self) -> None:
        """Put the gathered bytes where the parser reads first (its unreader's buffer)."""
        unreader = getattr(self.parser, "unreader", None)
        if self.head and unreader is not None:
            unreader.unread(self.head)
            self.head = b""

    def gather(self) -> bool:
        """Read what the client sent so far, without blocking; whether a thread should take over.

        True once the head and the body it announces are complete
        (:meth:`arrived`), or the client closed or reset the connection (the
        thread's parser says so).
        """
        try:
            data = self.sock.recv(MAX_HEAD_BYTES)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        if not data:
            return True
        self.head += data
        return self.arrived()

    def arrived(self) -> bool:
        """Whether the gathered bytes hold a whole head and the body it announces."""
        end = _END_OF_HEAD.search(self.head)
        if end is None:
            return len(self.head) >= MAX_HEAD_BYTES
        expected = body_to_gather(self.head[: end.start()])
        return expected is None or len(self.head) - end.end() >= expected


def body_to_gather(head: bytes) -> int | None:
    """The body length the poller waits for after ``head``; ``None``: hand over now.

    Only a single, well-formed ``Content-Length`` up to
    :data:`MAX_GATHERED_BODY_BYTES` is waited for. ``Transfer-Encoding`` (its
    end is the parser's to find), ``Expect: 100-continue`` (the client waits
    for the interim answer a thread sends) and anything unclear go to a thread
    at once, whose parser answers as ``gthread`` always did.
    """
    lengths: list[bytes] = []
    for line in head.split(b"\n")[1:]:
        field = _FIELD.match(line)
        if field is None:
            continue
        name = field.group(1).lower()
        if name in (b"transfer-encoding", b"expect"):
            return None
        if name == b"content-length":
            lengths.append(field.group(2))
    if len(lengths) != 1 or not lengths[0].isdigit() or len(lengths[0]) > 9:
        return None
    length = int(lengths[0])
    return length if length <= MAX_GATHERED_BODY_BYTES else None


class ThreadWorker(gthread.ThreadWorker):
    """``gthread``, request heads gathered by the poller; ``/healthz`` on a pool of its own.

    A worker with requests waiting for a thread accepts at most one new
    connection per :data:`ACCEPT_PAUSE_SECONDS` (:meth:`accepting`).
    """

    probe_pool: futures.ThreadPoolExecutor
    # gunicorn's say: accept while under worker_connections and not stopping.
    accept_allowed = False
    # Requests handed to the request pool (running or queued) and not finished.
    requests_in_pool = 0
    # While requests wait for a thread, no connection is accepted before this (monotonic s).
    accept_paused_until = 0.0

    def init_process(self) -> None:
        self.probe_pool = futures.ThreadPoolExecutor(
            max_workers=PROBE_THREADS, thread_name_prefix="probe"
        )
        super().init_process()

    def overloaded(self, now: float) -> bool:
        """Whether requests wait for a thread, counting those on their way.

        The requests in the request pool (running or queued), and the new
        connections accepted in the last :data:`ACCEPT_PAUSE_SECONDS` whose
        first request has not arrived yet (a burst of connections is accepted
        before any of them has sent its request): more than threads. A
        connection still silent after that stops counting, so connections
        that never speak do not slow the accepting of others.
        """
        arriving_since = now + FIRST_REQUEST_SECONDS - ACCEPT_PAUSE_SECONDS
        load = self.requests_in_pool
        for conn in reversed(self.pending_conns):  # newest last: sorted by accept time
            if load > self.cfg.threads or conn.timeout <= arriving_since:
                break
            load += 1
        return load > self.cfg.threads

    def accepting(self, now: float) -> bool:
        """Whether to take new connections now (``now``: ``time.monotonic()``).

        The rule is nginx's ``accept_disabled`` (a worker whose connections
        are nearly all used leaves the accept mutex to the others for a
        while), counted in requests: a worker whose threads are not all
        taken (:meth:`overloaded`) accepts at once, so a client that opens
        one connection per request is never slowed; one with requests
        waiting for a thread takes at most one connection per
        :data:`ACCEPT_PAUSE_SECONDS` (:attr:`accept_paused_until`, set by
        each connection it takes while overloaded). An idle sibling, whose
        poller sleeps on the same listening socket, takes them instead; when
        every worker is that busy, each still takes one per pause, so a
        liveness probe is answered (its own threads, :data:`PROBE_THREADS`)
        while every request thread waits on a locked table; and past
        :data:`ACCEPT_QUEUE_DRAIN` connections waiting on the listening
        socket (more than a sibling left to them would take) it takes them
        all, as ``gthread`` did (:meth:`queue_to_drain`): one per pause left a
        probe behind 400 queued connections for 4 s.

        Measured with ``make bench`` (wrk -t2 -c32, 2 workers of 4 threads):
        the 32 connections all landed on one worker in some runs, and that
        endpoint ran at ~1,000 req/s instead of ~3,000 for the whole 10 s;
        with this rule no read endpoint did (gunicorn.conf.py has the run).
        tests/test_served_workers.py opens such bursts: with ``gthread``'s
        accepting, one worker took a whole burst in 9 runs of 12. Asked on
        every wake-up of the poller, whose wait ends with the pause.
        """
        if not self.accept_allowed:
            return False
        if now >= self.accept_paused_until or not self.overloaded(now):
            return True
        return self.queue_to_drain()

    def queue_to_drain(self) -> bool:
        """Whether more connections wait than a sibling would take (:data:`ACCEPT_QUEUE_DRAIN`).

        Not known (not Linux, not TCP): drain, as ``gthread`` would.
        """
        for listener in self.sockets:
            queued = queued_connections(listener.sock if hasattr(listener, "sock") else listener)
            if queued is None or queued > ACCEPT_QUEUE_DRAIN:
                return True
        return False

    def pause_accepting(self) -> None:
        self.accept_paused_until = time.monotonic() + ACCEPT_PAUSE_SECONDS

    def set_accept_enabled(self, enabled: bool) -> None:
        """gunicorn's switch (its connection cap, a stop), subject to :meth:`accepting`."""
        self.accept_allowed = enabled
        super().set_accept_enabled(self.accepting(time.monotonic()))

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """Poll once, listening only while :meth:`accepting`; a pause ends the wait."""
        now = time.monotonic()
        listening = self.accepting(now)
        super().set_accept_enabled(listening)
        if self.accept_allowed and not listening:
            timeout = min(timeout, max(self.accept_paused_until - now, 0.0))
        super().wait_for_and_dispatch_events(timeout)

    def accept(self, listener: socket.socket) -> None:
        """Take a new connection and poll it until its first request's head has arrived."""
        try:
            client, address = listener.accept()
        except (BlockingIOError, ConnectionAbortedError, InterruptedError):
            return  # another worker took it, or the client gave up
        self.nr_conns += 1
        client.setblocking(False)
        conn = Connection(self.cfg, client, address, listener.getsockname())
        conn.timeout = time.monotonic() + FIRST_REQUEST_SECONDS
        self.pending_conns.append(conn)  # the deque stays sorted: one timeout for all
        self.poller.register(
            client, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )
        if self.overloaded(time.monotonic()):
            self.pause_accepting()

    def on_pending_socket_readable(self, conn: Connection, client: socket.socket) -> None:
        if self.cfg.is_ssl or conn.gather():
            super().on_pending_socket_readable(conn, client)

    def on_client_socket_readable(self, conn: Connection, client: socket.socket) -> None:
        if self.cfg.is_ssl or conn.gather():
            super().on_client_socket_readable(conn, client)

    def enqueue_req(self, conn: Connection) -> None:
        """A request to a thread: the probe pool for ``/healthz``, else the request pool."""
        probe = is_probe(conn.head)
        if conn.initialized:  # kept alive: its parser is there to take the bytes
            conn.hand_over_head()
        if probe:
            done = self.probe_pool.submit(self.handle, conn)
            done.add_done_callback(
                lambda result: self.method_queue.defer(self.finish_request, conn, result)
            )
            return
        self.requests_in_pool += 1
        done = self.tpool.submit(self.handle, conn)
        done.add_done_callback(
            lambda result: self.method_queue.defer(self.finish_pooled_request, conn, result)
        )

    def finish_pooled_request(self, conn: Connection, result: futures.Future[Any]) -> None:
        """A request of the request pool is done (on the poller's thread, as ``finish_request``)."""
        self.requests_in_pool -= 1
        self.finish_request(conn, result)

    def run(self) -> None:
        super().run()
        self.probe_pool.shutdown(wait=False)

    def _cap_keepalive(self, deadline: float) -> None:
        """On stop, connections still sending their first head are closed by ``deadline`` too."""
        super()._cap_keepalive(deadline)
        for conn in self.pending_conns:
            conn.timeout = min(conn.timeout, deadline)

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.probe_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)
