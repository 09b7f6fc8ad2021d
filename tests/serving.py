"""The app served for real: gunicorn on a free port, on a migrated throwaway database.

Concurrency tests need what the test client cannot give: several requests in
flight at once, each on its own thread and database connection, through the
production server (gunicorn's threaded workers, ``gunicorn.conf.py``). The
``served_app`` fixture (tests/conftest.py) yields a :class:`ServedApp`; tests
talk to it over HTTP, one :class:`HttpClient` per thread, and check the final
state of the database through ``served.app`` (an app on the same database).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from app.extensions import db

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
STARTUP_SECONDS = 30
_LISTENING = re.compile(r"Listening at: http://([\d.]+):(\d+)")


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
    log_path: Path

    def client(self, user: dict[str, Any] | None = None) -> HttpClient:
        """A new client (one per thread), signed in as ``user`` when given."""
        return HttpClient(self.base_url, None if user is None else user["token"])

    def register(self, username: str) -> dict[str, Any]:
        """Register ``username``; returns the ``user`` object with its token."""
        client = self.client()
        try:
            response = client.post(
                "/api/users",
                json={
                    "user": {
                        "username": username,
                        "email": f"{username}@example.com",
                        "password": "correct-horse-battery",
                    }
                },
            )
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

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def storm(calls: Iterable[Callable[[], Any]], threads: int = 8) -> list[Any]:
    """Run every call at once on ``threads`` threads; their results, in order.

    An exception in a call is re-raised here, so a broken test cannot pass silently.
    """
    calls = list(calls)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def migrate_to_head(app: Flask) -> None:
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


@contextmanager
def serve(app: Flask, database_url: str, workdir: Path, **env: str) -> Iterator[ServedApp]:
    """Serve ``wsgi:app`` on ``database_url`` with gunicorn until the block ends.

    Two worker processes with four threads each by default (``env`` overrides
    gunicorn.conf.py's variables). The port is the one gunicorn picked
    (``PORT=0``), read back from its log, so parallel test runs never collide.
    """
    log_path = workdir / "gunicorn.log"
    environment = {
        **{key: value for key, value in os.environ.items() if key not in ("DATABASE_URL",)},
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "testing",
        "SECRET_KEY": app.config["SECRET_KEY"],
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": "0",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "LOG_LEVEL": "warning",
        **env,
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(GUNICORN),
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                "--no-control-socket",
                "--log-level",
                "info",
                "wsgi:app",
            ],
            cwd=workdir,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = _wait_until_listening(process, log_path)
        yield ServedApp(base_url=base_url, database_url=database_url, app=app, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited at startup:\n{log_path.read_text()}")
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            base_url = f"http://{match[1]}:{match[2]}"
            try:
                if requests.get(base_url + "/healthz", timeout=2).status_code == 200:
                    return base_url
            except requests.ConnectionError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer in {STARTUP_SECONDS} s:\n{log_path.read_text()}")
