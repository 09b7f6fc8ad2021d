"""The app served by gunicorn (gunicorn.conf.py, as deployed) for socket-level tests.

``served_gunicorn(database_url)`` creates the schema, starts gunicorn on a free
loopback port (gunicorn binds port 0 and says which port it got: no race with
other processes), waits until ``/healthz`` answers, and stops it afterwards.
``exchange`` speaks raw HTTP/1.1 over a socket, for requests no HTTP client
library will send (a body cut short, a broken chunk).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.extensions import db
from tests.conftest import TEST_SECRET_KEY, make_app

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
_LISTENING = re.compile(rb"Listening at: http://127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class Served:
    port: int
    database_url: str


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _gunicorn_options() -> list[str]:
    help_text = subprocess.run(
        [str(GUNICORN), "--help"], capture_output=True, text=True, check=False
    ).stdout
    # Parallel gunicorns must not share a control socket.
    return ["--no-control-socket"] if "--no-control-socket" in help_text else []


@contextmanager
def served_gunicorn(database_url: str, log_path: Path) -> Iterator[Served]:
    app = make_app(database_url)
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.engine.dispose()
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "testing",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": "0",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
        "LOG_LEVEL": "info",
    }
    command = [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), *_gunicorn_options()]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "wsgi:app"], cwd=ROOT, env=environment, stdout=log, stderr=log
        )
    try:
        port = _wait_for_port(process, log_path)
        _wait_until_healthy(port, process, log_path)
        yield Served(port, database_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_port(process: subprocess.Popen[bytes], log_path: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = _LISTENING.search(log_path.read_bytes())
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text(errors='replace')}")


def _wait_until_healthy(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn never answered:\n{log_path.read_text(errors='replace')}")


def exchange(port: int, request: bytes, *, half_close: bool = True, timeout: float = 30) -> Answer:
    """Send ``request`` (bytes as they go on the wire), then read the one response.

    ``half_close`` shuts the sending side after the request, as a client that
    has nothing more to send (or gave up) does; the response is still read.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        return read_answer(connection)


def read_answer(connection: socket.socket) -> Answer:
    """Read one response (headers, then ``Content-Length`` bytes or until close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


def http_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """A well-formed HTTP/1.1 request with ``Connection: close``."""
    lines = [f"{method} {path} HTTP/1.1", "Host: conduit.test", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body and not any(name.lower() == "content-length" for name in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
