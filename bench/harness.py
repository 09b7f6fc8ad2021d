"""The benchmark's harness: throwaway databases, the project in-process, gunicorn, wrk.

Nothing here decides what is measured (``bench.scenarios``) or how it is
reported (``bench.report``). Load only ever goes to 127.0.0.1; every run is
bounded by ``BENCH_MAX_SECONDS``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LUA = ROOT / "bench" / "lua"
RESULTS = ROOT / "bench-results"
HOST = "127.0.0.1"  # load only ever goes to loopback

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
MAX_SECONDS = int(os.environ.get("BENCH_MAX_SECONDS", "1500"))
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
)
SECRET_KEY = "benchmark-secret-key-" + secrets.token_hex(16)
STARTED = time.monotonic()


class BenchError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:6.0f}s] {message}", file=sys.stderr, flush=True)


def check_deadline() -> None:
    if time.monotonic() - STARTED > MAX_SECONDS:
        raise BenchError(f"stopped: the run exceeded BENCH_MAX_SECONDS={MAX_SECONDS}")


# --- tools -------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk from Debian; installed with apt-get only when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError("wrk is missing: install it (Debian/Ubuntu: apt-get install wrk)")
    log("installing wrk with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt_get = str(shutil.which("apt-get"))
    subprocess.run([apt_get, "update", "-qq"], check=True, env=env, timeout=300)  # noqa: S603
    subprocess.run([apt_get, "install", "-y", "-qq", "wrk"], check=True, env=env, timeout=300)  # noqa: S603
    found = shutil.which("wrk")
    if not found:
        raise BenchError("apt-get did not install wrk")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# --- databases ---------------------------------------------------------------


@contextlib.contextmanager
def throwaway_database(kind: str) -> Iterator[str]:
    """A new, empty database: a PostgreSQL database or a SQLite file."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="conduit-bench-") as directory:
            yield f"sqlite:///{directory}/bench.db"
        return
    name = f"conduit_bench_{secrets.token_hex(4)}"
    info = psycopg.conninfo.conninfo_to_dict(POSTGRES_ADMIN_URL)
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    try:
        password = f":{info['password']}" if info.get("password") else ""
        yield (
            f"postgresql://{info.get('user', 'postgres')}{password}@"
            f"{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{name}"
        )
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name))
            )


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "FLASK_APP": "wsgi",
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "info"),
        **extra,
    }


def migrate(database_url: str) -> None:
    """The release step: ``flask db upgrade``."""
    subprocess.run(  # noqa: S603
        [str(BIN / "flask"), "db", "upgrade"],
        cwd=ROOT,
        env=server_env(database_url),
        check=True,
        timeout=300,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# --- the application, in-process (seeding, tokens, statement counts) ---------


class Project:
    """The app on one database, in this process: seeds it and counts statements."""

    def __init__(self, database_url: str):
        from app import create_app

        self.app = create_app(
            {
                "APP_ENV": "production",
                "SECRET_KEY": SECRET_KEY,
                "DATABASE_URL": database_url,
                "RESPONSE_CACHE": False,  # statements counted are those of a miss
            }
        )
        self.app.logger.disabled = True
        import logging

        logging.getLogger("app.request").disabled = True

    def seed(self, **sizes: int) -> Any:
        from app.data.seed import SeedSizes, seed

        with self.app.app_context():
            return seed(SeedSizes(**sizes), random_seed=42)

    def tokens(self, user_ids: list[int]) -> list[str]:
        from app.extensions import db
        from app.models import User
        from app.security import create_token

        with self.app.app_context():
            return [create_token(db.session.get_one(User, user_id)) for user_id in user_ids]

    def statements(self, method: str, path: str, headers: dict[str, str], body: Any = None):
        """Run one request in-process; returns (status, SQL statements, response bytes)."""
        from sqlalchemy import event

        from app.extensions import db

        with self.app.app_context():
            engine = db.engine
        counted: list[str] = []

        def count(*_args: Any) -> None:
            counted.append("")

        event.listen(engine, "before_cursor_execute", count)
        try:
            response = self.app.test_client().open(path, method=method, headers=headers, json=body)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return response.status_code, len(counted), response.get_data()

    def median_ms(self, path: str, headers: dict[str, str], repeat: int = 31) -> float:
        """One request at a time, in-process: the median wall time (no queueing)."""
        client = self.app.test_client()
        client.get(path, headers=headers)
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(path, headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
        return round(sorted(timings)[len(timings) // 2], 2)

    def close(self) -> None:
        from app.extensions import db

        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- gunicorn and wrk --------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@contextlib.contextmanager
def gunicorn(app_spec: str, env: dict[str, str], workdir: Path, probe: str) -> Iterator[Server]:
    """gunicorn -c gunicorn.conf.py APP on a free loopback port; stopped (SIGTERM) after."""
    port = free_port()
    log_path = workdir / f"gunicorn-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603
            [
                str(BIN / "gunicorn"),
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                # Several servers run at once (replicas, other benchmarks on this machine):
                # none may take the default control socket from another.
                "--no-control-socket",
                app_spec,
            ],
            cwd=ROOT,
            env={**env, "HOST": HOST, "PORT": str(port)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, port, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise BenchError(f"gunicorn exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(server.url + probe, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"gunicorn did not become ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wrk(
    url: str,
    *,
    duration: int,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
    env: dict[str, str] | None = None,
    connections: int = CONNECTIONS,
    threads: int = THREADS,
) -> dict[str, Any]:
    """One bounded wrk run; returns its numbers (latencies in ms)."""
    check_deadline()
    command = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(script or LUA / "report.lua"),
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    completed = subprocess.run(  # noqa: S603
        command,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        env={**os.environ, "BENCH_LUA_DIR": str(LUA), **(env or {})},
        check=False,
    )
    line = next(
        (line for line in completed.stdout.splitlines() if line.startswith("BENCH_JSON ")), None
    )
    if completed.returncode != 0 or line is None:
        raise BenchError(f"wrk failed: {completed.stdout[-1000:]} {completed.stderr[-1000:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    socket_errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors"))
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "non_2xx": raw["non_2xx"],
        "socket_errors": socket_errors,
        "timeouts": raw["timeouts"],
        "bytes_per_response": round(raw["bytes"] / max(raw["requests"], 1)),
        **_cache_counts(raw),
    }


def _cache_counts(raw: dict[str, Any]) -> dict[str, Any]:
    """The X-Cache tally a mix script reports, and the hit rate among the hot reads."""
    if "cache_hits" not in raw:
        return {}
    counted = raw["cache_hits"] + raw["cache_misses"] + raw["cache_off"]
    return {
        "cache_hits": raw["cache_hits"],
        "cache_misses": raw["cache_misses"],
        "cache_off": raw["cache_off"],
        "hit_rate": round(raw["cache_hits"] / counted, 3) if counted else None,
    }
