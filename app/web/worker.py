"""gunicorn's threaded worker, with a thread only for a connection that has something to say.

``gunicorn -k app.web.worker.ThreadWorker`` (gunicorn.conf.py's default) is
gunicorn 27's ``gthread`` worker with two changes, both on the worker's main
thread, the one that polls the sockets:

* **Silent connections wait in the poller, not in a thread.** ``gthread``
  hands every new connection to a pool thread that waits up to 5 s for its
  first bytes (``gthread.DEFAULT_WORKER_DATA_TIMEOUT``, not a setting): 32
  connections opened and left silent held every thread of two workers for
  rounds of 5 s, and a normal request waited 35-40 s behind them. Here a new
  connection is polled like a kept-alive one and reaches a thread once it is
  readable; one that says nothing for :data:`FIRST_REQUEST_SECONDS` is closed.
* **A liveness lane.** A request that starts ``GET /healthz`` (or ``HEAD``)
  goes to a small pool of its own (:data:`PROBE_THREADS`), so a liveness
  probe answers while every request thread waits on the database (a table a
  migration locks: each waits up to ``DATABASE_LOCK_TIMEOUT``). The bytes are
  peeked (``MSG_PEEK``), not read: the request is parsed and served by the
  application as any other. ``/readyz`` reads the database and stays in the
  request pool.

Both were measured with ``make bench-abuse`` (docs/performance.md has the
figures).
"""

from __future__ import annotations

import selectors
import socket
import time
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn.workers import gthread

FIRST_REQUEST_SECONDS = 10.0  # what gthread allows: 5 s in a thread, then keepalive (5 s)
PROBE_THREADS = 2
PROBE_REQUESTS = (b"GET /healthz ", b"GET /healthz?", b"HEAD /healthz ", b"HEAD /healthz?")
_PEEK_BYTES = max(map(len, PROBE_REQUESTS))


def is_probe(head: bytes) -> bool:
    """Whether a request's first bytes are a liveness probe's request line."""
    return head.startswith(PROBE_REQUESTS)


class ThreadWorker(gthread.ThreadWorker):
    """``gthread``, polling new connections until readable; liveness probes on their own pool."""

    probe_pool: futures.ThreadPoolExecutor

    def init_process(self) -> None:
        self.probe_pool = futures.ThreadPoolExecutor(
            max_workers=PROBE_THREADS, thread_name_prefix="probe"
        )
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        """Take a new connection and poll it until it has bytes to read."""
        try:
            client, address = listener.accept()
        except (BlockingIOError, ConnectionAbortedError, InterruptedError):
            return  # another worker took it, or the client gave up
        self.nr_conns += 1
        client.setblocking(False)
        conn = gthread.TConn(self.cfg, client, address, listener.getsockname())
        conn.timeout = time.monotonic() + FIRST_REQUEST_SECONDS
        self.pending_conns.append(conn)  # the deque stays sorted: one timeout for all
        self.poller.register(
            client, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def enqueue_req(self, conn: Any) -> None:
        """A readable connection to a thread: the probe pool for ``/healthz``."""
        if not _starts_with_probe(conn):
            super().enqueue_req(conn)
            return
        done = self.probe_pool.submit(self.handle, conn)
        done.add_done_callback(
            lambda result: self.method_queue.defer(self.finish_request, conn, result)
        )

    def run(self) -> None:
        super().run()
        self.probe_pool.shutdown(wait=False)

    def _cap_keepalive(self, deadline: float) -> None:
        """On stop, connections that have not spoken yet are closed by ``deadline`` too."""
        super()._cap_keepalive(deadline)
        for conn in self.pending_conns:
            conn.timeout = min(conn.timeout, deadline)

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.probe_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)


def _starts_with_probe(conn: Any) -> bool:
    """Whether the next request on ``conn`` is a liveness probe, judged by peeking at it.

    Bytes the parser already read ahead are not on the socket: such a request
    goes to the request pool, as does anything on TLS.
    """
    if conn.parser is not None and conn.parser.unreader.buf.getvalue():
        return False
    try:
        head = conn.sock.recv(_PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (OSError, ValueError):  # ValueError: a TLS socket takes no flags
        return False
    return is_probe(head)
