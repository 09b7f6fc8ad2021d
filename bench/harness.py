"""The benchmark's harness: throwaway databases, the project in-process, gunicorn, wrk.

Databases and servers come from the throwaway environment (scripts/throwaway/)
that the tests and the other scripts use too.

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
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psutil

from scripts import throwaway
from scripts.throwaway import Server

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "lua"
RESULTS = ROOT / "bench-results"
HOST = throwaway.HOST  # load only ever goes to loopback

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
MAX_SECONDS = int(os.environ.get("BENCH_MAX_SECONDS", "1500"))
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
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


def ensure_pgbench() -> str:
    """pgbench (Debian ships it with the server: postgresql); apt-get only when it is missing."""
    from bench.write_ceiling import find_pgbench

    found = find_pgbench()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError(
            "pgbench is missing: install it (Debian/Ubuntu: apt-get install postgresql)"
        )
    log("installing pgbench (postgresql) with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt_get = str(shutil.which("apt-get"))
    subprocess.run([apt_get, "update", "-qq"], check=True, env=env, timeout=300)  # noqa: S603
    subprocess.run(  # noqa: S603
        [apt_get, "install", "-y", "-qq", "postgresql"], check=True, env=env, timeout=300
    )
    found = find_pgbench()
    if not found:
        raise BenchError("apt-get did not install pgbench")
    return found


# --- the machine -------------------------------------------------------------


@contextlib.contextmanager
def stolen_share() -> Iterator[dict[str, float]]:
    """``{"steal": share}``, filled when the block ends: the machine's CPU time stolen meanwhile.

    On a virtual machine the hypervisor runs other guests on "our" cores: Linux
    counts that time as *steal* (``/proc/stat``, read through psutil). A run
    that lost a tenth of its CPU time that way measures a slower machine than
    its neighbours in the table; the share is printed beside each figure so
    such a run can be told apart (0 on bare metal, or where it is not counted).
    """
    measured: dict[str, float] = {}
    before = psutil.cpu_times()
    yield measured
    after = psutil.cpu_times()
    elapsed = sum(after) - sum(before)
    stolen = getattr(after, "steal", 0.0) - getattr(before, "steal", 0.0)
    measured["steal"] = round(stolen / elapsed, 3) if elapsed > 0 else 0.0


# --- databases ---------------------------------------------------------------


def deployed_settings(**extra: str) -> dict[str, str | None]:
    """The app's settings for a measured server: production, as deployed.

    ``None`` leaves gunicorn.conf.py's and the app's defaults in force (one
    worker process per CPU; JSON log lines), not the throwaway environment's.
    """
    return {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "info"),
        "LOG_FORMAT": None,
        "WEB_CONCURRENCY": None,
        # Throttling on, as deployed (the measured requests sign no one up or in),
        # counting in Redis as deployed (docs/deployment.md), which also gives the
        # response cache its shared second level (app/web/shared_answers.py).
        "RATELIMIT_ENABLED": None,
        "RATELIMIT_STORAGE_URI": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        # Prometheus metrics (app/web/metrics.py) as an operator turns them on:
        # BENCH_METRICS_PORT=<port> measures what they cost; unset, none are kept.
        "METRICS_PORT": os.environ.get("BENCH_METRICS_PORT") or None,
        **extra,
    }


@contextlib.contextmanager
def migrated_database(kind: str) -> Iterator[str]:
    """A new ``sqlite`` or ``postgresql`` database at head (the throwaway environment's)."""
    with throwaway.database(kind, label="bench", server_url=POSTGRES_ADMIN_URL) as url:
        throwaway.migrate(url, deployed_settings())
        yield url


# --- the application, in-process (seeding, tokens, statement counts) ---------


class Project:
    """The app on one database, in this process: seeds it and counts statements."""

    def __init__(self, database_url: str, *, response_cache: bool = False):
        """``response_cache``: as served (its change feed also lets the app remember tokens'
        users, app/data/known_users.py); off by default, so statements counted are a miss's."""
        from app import create_app

        self.app = create_app(
            {
                "APP_ENV": "production",
                "SECRET_KEY": SECRET_KEY,
                "DATABASE_URL": database_url,
                "RESPONSE_CACHE": response_cache,
                "RATELIMIT_ENABLED": False,  # serves no one: no warning about its counts
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
        from app.tokens import create_token

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
        from app import close_app

        close_app(self.app)


# --- gunicorn and wrk --------------------------------------------------------


def gunicorn(
    database_url: str,
    workdir: Path,
    *,
    app: str = "wsgi:app",
    probe: str = "/readyz",
    **settings: str,
) -> AbstractContextManager[Server]:
    """gunicorn -c gunicorn.conf.py APP on a free loopback port, with :func:`deployed_settings`.

    Stopped (SIGTERM) when the block ends; ``settings`` override the deployed ones.
    """
    return throwaway.serve(
        database_url,
        settings=deployed_settings(**settings),
        app=app,
        probe=probe,
        workdir=workdir,
    )


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
    with stolen_share() as stolen:
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
        **stolen,
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
