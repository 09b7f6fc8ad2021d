"""Talking to the app served for real: gunicorn on a free port, on a migrated throwaway database.

Concurrency tests need what the test client cannot give: several requests in
flight at once, each on its own thread and database connection, through the
production server (gunicorn's threaded workers, ``gunicorn.conf.py``). The
``served_app`` fixture (tests/conftest.py) starts one with the throwaway
environment (scripts/throwaway/) and yields a :class:`ServedApp`; tests talk
to it over HTTP, one :class:`HttpClient` per thread, and check the final state
of the database through ``served.app`` (an app on the same database).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psutil
import requests
from flask import Flask
from sqlalchemy import text

from app.extensions import db
from scripts import throwaway
from tests.factories import new_user


class HttpClient:
    """A keep-alive HTTP client for one thread; paths are relative to the served app."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Token {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.session.close()


@dataclass
class ServedApp:
    """A running server: ``base_url``, its ``database_url``, and ``app`` on that database."""

    base_url: str
    database_url: str
    app: Flask
    server: throwaway.Server

    def client(self, user: dict[str, Any] | None = None) -> HttpClient:
        """A new client (one per thread), signed in as ``user`` when given."""
        return HttpClient(self.base_url, None if user is None else user["token"])

    def register(self, username: str) -> dict[str, Any]:
        """Register ``username``; returns the ``user`` object with its token."""
        user = new_user(username=username, email=f"{username}@example.com")
        client = self.client()
        try:
            response = client.post("/api/users", json={"user": user})
        finally:
            client.close()
        assert response.status_code == 201, response.text
        return response.json()["user"]

    def sql(self, statement: str, **params: Any) -> list[Any]:
        """Run SQL on the served database from outside the server (to check final state)."""
        with self.app.app_context():
            try:
                rows = list(db.session.execute(text(statement), params))
                db.session.commit()
                return rows
            finally:
                db.session.remove()


_titles = itertools.count(1)


def post_article(client: HttpClient, title: str | None = None, **fields: Any) -> dict[str, Any]:
    """``POST /api/articles`` through the served app (201 asserted); the ``article`` answered.

    Without a ``title``, one no other call in this process gives; ``fields`` override the
    rest (``tagList`` empty by default).
    """
    article = {
        "title": title or f"Article {next(_titles)}",
        "description": "d",
        "body": "b",
        "tagList": [],
        **fields,
    }
    response = client.post("/api/articles", json={"article": article})
    assert response.status_code == 201, response.text
    return response.json()["article"]


def storm(calls: Iterable[Callable[[], Any]], threads: int = 8) -> list[Any]:
    """Run every call at once on ``threads`` threads; their results, in order.

    An exception in a call is re-raised here, so a broken test cannot pass silently.
    """
    calls = list(calls)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


# Raw HTTP/1.1 over a socket, for requests no HTTP client library will send (a
# body cut short, a broken chunk, a request line past gunicorn's limit).


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


def port_of(served: ServedApp) -> int:
    return served.server.port


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


def connections_by_worker(served: ServedApp) -> dict[int, int]:
    """How many client connections each worker process of ``served`` holds, by its pid."""
    master = psutil.Process(served.server.process.pid)
    return {
        worker.pid: sum(
            connection.status == psutil.CONN_ESTABLISHED
            and connection.laddr.port == port_of(served)
            for connection in worker.net_connections("tcp")
        )
        for worker in master.children()
    }
