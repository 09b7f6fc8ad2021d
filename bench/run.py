"""The benchmark: wrk against gunicorn serving the project, and the ceiling.

``python -m bench.run`` (``make bench``) measures, in one run and with the same
gunicorn settings (gunicorn.conf.py and the environment):

* the project on PostgreSQL and on SQLite, with the response cache on and
  off (``RESPONSE_CACHE``): the article list (anonymous and authenticated),
  the tag filter, the feed, one article, its comments, the tags, a write mix
  (create an article, favorite, comment) and a 95/5 read/write mix (with the
  cache's hit rate, from the ``X-Cache`` header);
* the ceiling: a bare Flask route returning the bytes the list returned.

For each: requests/s, p50 and p99 latency, non-2xx responses, SQL statements
per request on a miss (each request run once in-process with a statement
counter) and the ratio to the ceiling. Results go to ``bench-results/`` as
JSON and a PNG.

``python -m bench.run replicas`` (``make bench-replicas``) serves one
PostgreSQL database with two gunicorn replicas, writes through one and polls
the other: how long until a write is visible on the other replica, idle and
under load.

``python -m bench.run scale`` (``make bench-scale``) seeds 1,000, then 10,000,
then 100,000 articles and measures the list, the feed, the tag filter and the
favorited filter at each size. ``python -m bench.run workers`` (``make
bench-workers``) compares gunicorn worker classes and thread counts.

Every run is bounded: ``BENCH_DURATION`` seconds per endpoint (default 10),
``BENCH_MAX_SECONDS`` for the whole run (default 1,500), and wrk only ever
targets 127.0.0.1. Data is seeded through ``app.seed``; nothing here knows
the business rules.
"""

from __future__ import annotations

import argparse
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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
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
        from app.seed import SeedSizes, seed

        with self.app.app_context():
            return seed(SeedSizes(**sizes), random_seed=42)

    def tokens(self, user_ids: list[int]) -> list[str]:
        from app.extensions import db
        from app.models import User
        from app.security import create_token

        with self.app.app_context():
            return [create_token(db.session.get(User, user_id)) for user_id in user_ids]

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


# --- scenarios ---------------------------------------------------------------

STANDARD_SIZES = {
    "users": 200,
    "articles": 2_000,
    "tags": 20,
    "tags_per_article": 3,
    "comments_per_article": 3,
    "follows_per_user": 10,
    "favorites_per_user": 10,
}


@dataclass
class Endpoint:
    name: str
    path: str
    token: bool = False
    write_mix: bool = False
    script: str | None = None  # a Lua script under bench/lua


@dataclass
class Measurement:
    database: str
    endpoint: str
    path: str
    sql_per_request: float | None
    results: dict[str, Any] = field(default_factory=dict)
    cache: str = "-"


def standard_endpoints(seeded: Any) -> list[Endpoint]:
    slug = seeded.slugs[len(seeded.slugs) // 2]
    return [
        Endpoint("articles", "/api/articles"),
        Endpoint("articles (auth)", "/api/articles", token=True),
        Endpoint("articles?tag=", f"/api/articles?tag={seeded.tag_names[3]}"),
        Endpoint("feed", "/api/articles/feed", token=True),
        Endpoint("article", f"/api/articles/{slug}"),
        Endpoint("comments", f"/api/articles/{slug}/comments"),
        Endpoint("tags", "/api/tags"),
        Endpoint("write mix", "/api/articles", token=True, write_mix=True),
        Endpoint("95/5 mix", "/api/articles", write_mix=True, script="read_write_mix.lua"),
    ]


def write_mix_statements(project: Project, tokens: list[str], slug: str) -> float:
    auth = {"Authorization": f"Token {tokens[0]}"}
    article = {"title": f"Counted {secrets.token_hex(4)}", "description": "d", "body": "b"}
    counts = [
        project.statements(
            "POST", "/api/articles", auth, {"article": {**article, "tagList": ["benchmark"]}}
        )[1],
        project.statements("POST", f"/api/articles/{slug}/favorite", auth)[1],
        project.statements(
            "POST", f"/api/articles/{slug}/comments", auth, {"comment": {"body": "counted"}}
        )[1],
    ]
    return round(sum(counts) / len(counts), 2)


def measure_database(kind: str, workdir: Path, run_id: str) -> tuple[list[Measurement], bytes]:
    """Seed one database, serve it with gunicorn, wrk every endpoint."""
    measurements: list[Measurement] = []
    with throwaway_database(kind) as url:
        log(f"{kind}: migrating and seeding {STANDARD_SIZES['articles']:,} articles")
        migrate(url)
        project = Project(url)
        seeded = project.seed(**STANDARD_SIZES)
        tokens = project.tokens(seeded.user_ids[:8])
        auth = {"Authorization": f"Token {tokens[0]}"}
        slugs_file = workdir / f"slugs-{kind}.txt"
        slugs_file.write_text("\n".join(seeded.slugs[:500]) + "\n")

        endpoints = standard_endpoints(seeded)
        counts: dict[str, float] = {}
        list_body = b""
        for endpoint in endpoints:
            if endpoint.write_mix:
                continue
            status, statements, body = project.statements(
                "GET", endpoint.path, auth if endpoint.token else {}
            )
            if status != 200:
                raise BenchError(f"{kind} {endpoint.path} answered {status}")
            counts[endpoint.name] = statements
            if endpoint.name == "articles":
                list_body = body
        counts["write mix"] = write_mix_statements(project, tokens, seeded.slugs[1])
        counts["95/5 mix"] = None
        project.close()

        for cache in CACHE_SETTINGS:
            env_settings = server_env(url, RESPONSE_CACHE=cache)
            with gunicorn("wsgi:app", env_settings, workdir, "/readyz") as server:
                for endpoint in endpoints:
                    headers = auth if endpoint.token and not endpoint.write_mix else {}
                    script = LUA / (endpoint.script or "write_mix.lua")
                    env = {
                        "BENCH_TOKENS": ",".join(tokens),
                        "BENCH_SLUGS": str(slugs_file),
                        "BENCH_TAG": seeded.tag_names[3],
                        "BENCH_RUN_ID": f"{run_id}-{kind}-{cache}",
                    }
                    if WARMUP and not endpoint.write_mix:
                        wrk(server.url + endpoint.path, duration=WARMUP, headers=headers)
                    log(f"{kind}, cache {cache}: {endpoint.name} for {DURATION} s")
                    results = wrk(
                        server.url + endpoint.path,
                        duration=DURATION,
                        headers=headers,
                        script=script if endpoint.write_mix else None,
                        env=env,
                    )
                    measurements.append(
                        Measurement(
                            kind,
                            endpoint.name,
                            endpoint.path,
                            counts[endpoint.name],
                            results,
                            cache=cache,
                        )
                    )
    return measurements, list_body


CACHE_SETTINGS = tuple(
    setting.strip()
    for setting in os.environ.get("BENCH_CACHE", "on,off").split(",")
    if setting.strip()
)


def measure_ceiling(body: bytes, workdir: Path) -> Measurement:
    body_path = workdir / "ceiling-body.json"
    body_path.write_bytes(body)
    env = {**os.environ, "BENCH_CEILING_BODY": str(body_path), "PYTHONPATH": str(ROOT)}
    with gunicorn("bench.ceiling_app:app", env, workdir, "/api/articles") as server:
        if WARMUP:
            wrk(server.url + "/api/articles", duration=WARMUP)
        log(f"ceiling: bare Flask route, {len(body):,} bytes, for {DURATION} s")
        results = wrk(server.url + "/api/articles", duration=DURATION)
    return Measurement("none", "ceiling", "/api/articles", 0, results)


def gunicorn_settings() -> dict[str, Any]:
    """The effective settings, read from gunicorn.conf.py with this environment."""
    namespace: dict[str, Any] = {"__file__": str(ROOT / "gunicorn.conf.py")}
    exec((ROOT / "gunicorn.conf.py").read_text(), namespace)  # noqa: S102
    return {key: namespace[key] for key in ("workers", "worker_class", "threads")}


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "wrk": f"-t{THREADS} -c{CONNECTIONS} -d{DURATION}s",
        "gunicorn": gunicorn_settings(),
    }


# --- output ------------------------------------------------------------------


def print_table(rows: list[Measurement], ceiling_rps: float | None) -> None:
    header = (
        f"{'database':<11}{'cache':<6}{'endpoint':<17}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}{'errors':>8}{'SQL/req':>9}{'hits':>7}{'ceiling':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        r = row.results
        ratio = f"{100 * r['rps'] / ceiling_rps:.0f}%" if ceiling_rps else "-"
        sql = "-" if row.sql_per_request is None else f"{row.sql_per_request:g}"
        hits = f"{100 * r['hit_rate']:.0f}%" if r.get("hit_rate") is not None else "-"
        print(
            f"{row.database:<11}{row.cache:<6}{row.endpoint:<17}{r['rps']:>9,.0f}"
            f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['non_2xx']:>9}"
            f"{r['socket_errors'] + r['timeouts']:>8}{sql:>9}{hits:>7}{ratio:>9}"
        )


def write_results(name: str, document: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / f"{name}-latest.json").write_text(json.dumps(document, indent=2) + "\n")
    return path


def run_standard(databases: list[str]) -> None:
    run_id = secrets.token_hex(3)
    measurements: list[Measurement] = []
    ceiling_body = b""
    with tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp:
        workdir = Path(tmp)
        for kind in databases:
            rows, body = measure_database(kind, workdir, run_id)
            measurements += rows
            ceiling_body = ceiling_body or body
        ceiling = measure_ceiling(ceiling_body, workdir)
    ceiling_rps = ceiling.results["rps"]
    rows = [ceiling, *measurements]
    for row in rows:
        row.results["ceiling_ratio"] = round(row.results["rps"] / ceiling_rps, 3)
    document = {
        "kind": "standard",
        "machine": machine(),
        "seed": STANDARD_SIZES,
        "ceiling_rps": ceiling_rps,
        "measurements": [asdict(row) for row in rows],
    }
    path = write_results("bench", document)
    from bench.chart import standard_chart

    chart = standard_chart(document, RESULTS / "bench.png")
    print()
    print_table(rows, ceiling_rps)
    print(f"\nresults: {path.relative_to(ROOT)}, chart: {chart.relative_to(ROOT)}")


# --- scale mode --------------------------------------------------------------

SCALE_STEPS = (1_000, 10_000, 100_000)
ARTICLES_PER_USER = 10


def run_scale(databases: list[str]) -> None:
    """Grow one database to 1k, 10k, 100k articles; measure four reads at each size."""
    duration = int(os.environ.get("BENCH_SCALE_DURATION", "5"))
    connections = int(os.environ.get("BENCH_SCALE_CONNECTIONS", "8"))
    steps = [int(s) for s in os.environ.get("BENCH_SCALE_STEPS", "").split(",") if s]
    steps = steps or list(SCALE_STEPS)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp:
        workdir = Path(tmp)
        for kind in databases:
            with throwaway_database(kind) as url:
                migrate(url)
                project = Project(url)
                total, first = 0, None
                for target in steps:
                    check_deadline()
                    added = target - total
                    log(f"{kind}: seeding {added:,} more articles (to {target:,})")
                    seeded = project.seed(
                        users=max(added // ARTICLES_PER_USER, 20),
                        articles=added,
                        tags=20,
                        tags_per_article=3,
                        comments_per_article=1,
                        follows_per_user=10,
                        favorites_per_user=10,
                    )
                    total = target
                    # The viewer and the names asked for stay the same at every size.
                    first = first or {
                        "token": project.tokens(seeded.user_ids[:1])[0],
                        "favoriter": seeded.usernames[0],
                        "tag": seeded.tag_names[3],
                    }
                    auth = {"Authorization": f"Token {first['token']}"}
                    endpoints = [
                        Endpoint("list", "/api/articles"),
                        Endpoint("feed", "/api/articles/feed", token=True),
                        Endpoint("tag filter", f"/api/articles?tag={first['tag']}"),
                        Endpoint("favorited", f"/api/articles?favorited={first['favoriter']}"),
                    ]
                    with gunicorn("wsgi:app", server_env(url), workdir, "/readyz") as server:
                        for endpoint in endpoints:
                            headers = auth if endpoint.token else {}
                            status, statements, body = project.statements(
                                "GET", endpoint.path, headers
                            )
                            matches = json.loads(body)["articlesCount"] if status == 200 else None
                            alone_ms = project.median_ms(endpoint.path, headers)
                            wrk(server.url + endpoint.path, duration=1, headers=headers)
                            log(f"{kind} {target:,}: {endpoint.name}")
                            results = wrk(
                                server.url + endpoint.path,
                                duration=duration,
                                headers=headers,
                                connections=connections,
                            )
                            rows.append(
                                {
                                    "database": kind,
                                    "articles": target,
                                    "endpoint": endpoint.name,
                                    "matches": matches,
                                    "sql_per_request": statements,
                                    "alone_ms": alone_ms,
                                    **results,
                                }
                            )
                project.close()
    document = {
        "kind": "scale",
        "machine": {**machine(), "wrk": f"-t{THREADS} -c{connections} -d{duration}s"},
        "rows": rows,
    }
    path = write_results("bench-scale", document)
    from bench.chart import scale_chart

    chart = scale_chart(document, RESULTS / "bench-scale.png")
    print()
    header = (
        f"{'database':<11}{'articles':>9}  {'endpoint':<11}{'matches':>8}{'alone ms':>10}"
        f"{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['database']:<11}{row['articles']:>9,}  {row['endpoint']:<11}"
            f"{row['matches'] or 0:>8,}{row['alone_ms']:>10.2f}{row['rps']:>8,.0f}"
            f"{row['p50_ms']:>8.1f}{row['p99_ms']:>8.1f}{row['non_2xx']:>8}"
        )
    print(f"\nresults: {path.relative_to(ROOT)}, chart: {chart.relative_to(ROOT)}")


# --- replicas mode -----------------------------------------------------------

REPLICA_WRITES = int(os.environ.get("BENCH_REPLICA_WRITES", "200"))
POLL_SECONDS = 5.0  # a write not visible after this long counts as lost


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _visibility_delays(writer: Server, reader: Server, token: str, label: str) -> list[float]:
    """Write through ``writer``; poll ``reader`` until it shows the write (ms each)."""
    import http.client

    write = http.client.HTTPConnection(HOST, writer.port, timeout=10)
    read = http.client.HTTPConnection(HOST, reader.port, timeout=10)

    def newest_title() -> str:
        read.request("GET", "/api/articles?limit=1")
        response = read.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            raise BenchError(f"reader answered {response.status}")
        return body["articles"][0]["title"] if body["articles"] else ""

    delays: list[float] = []
    for n in range(REPLICA_WRITES):
        check_deadline()
        newest_title()  # the reader's cache holds the list before the write
        title = f"Replica {label} {n} {secrets.token_hex(3)}"
        payload = {"article": {"title": title, "description": "d", "body": "b"}}
        write.request(
            "POST",
            "/api/articles",
            body=json.dumps(payload),
            headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        )
        response = write.getresponse()
        response.read()
        if response.status != 201:
            raise BenchError(f"writer answered {response.status}")
        written = time.perf_counter()
        while newest_title() != title:
            if time.perf_counter() - written > POLL_SECONDS:
                raise BenchError(f"write {n} not visible on the other replica after 5 s")
        delays.append((time.perf_counter() - written) * 1000)
    write.close()
    read.close()
    return delays


def run_replicas() -> None:
    """Two replicas on one PostgreSQL database: how soon one sees the other's writes."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp:
        workdir = Path(tmp)
        with throwaway_database("postgresql") as url:
            migrate(url)
            project = Project(url)
            seeded = project.seed(**STANDARD_SIZES)
            token = project.tokens(seeded.user_ids[:1])[0]
            project.close()
            env = server_env(url, RESPONSE_CACHE="on")
            with (
                gunicorn("wsgi:app", env, workdir, "/readyz") as one,
                gunicorn("wsgi:app", env, workdir, "/readyz") as two,
            ):
                for load in ("idle", "under load"):
                    log(f"replicas, {load}: {REPLICA_WRITES} writes on one, polled on two")
                    background = None
                    if load == "under load":
                        background = subprocess.Popen(  # noqa: S603
                            [
                                ensure_wrk(),
                                "-t1",
                                f"-c{CONNECTIONS // 2}",
                                f"-d{POLL_SECONDS * REPLICA_WRITES:.0f}s",
                                two.url + "/api/articles",
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                        time.sleep(1)
                    try:
                        delays = _visibility_delays(one, two, token, load)
                    finally:
                        if background is not None:
                            background.terminate()
                            background.wait(timeout=10)
                    rows.append(
                        {
                            "load": load,
                            "writes": len(delays),
                            "p50_ms": round(_percentile(delays, 0.50), 2),
                            "p99_ms": round(_percentile(delays, 0.99), 2),
                            "max_ms": round(max(delays), 2),
                        }
                    )
    document = {"kind": "replicas", "machine": machine(), "rows": rows}
    path = write_results("bench-replicas", document)
    print()
    print("Cross-replica visibility: write on replica one, first answer showing it on two")
    header = f"{'load':<12}{'writes':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['load']:<12}{row['writes']:>8}{row['p50_ms']:>9.2f}"
            f"{row['p99_ms']:>9.2f}{row['max_ms']:>9.2f}"
        )
    print(f"\nresults: {path.relative_to(ROOT)}")


# --- worker settings ---------------------------------------------------------

WORKER_SETTINGS = (
    ("sync", 2, 1),
    ("sync", 3, 1),
    ("sync", 4, 1),
    ("gthread", 2, 1),
    ("gthread", 2, 2),
    ("gthread", 2, 4),
    ("gthread", 2, 8),
    ("gthread", 3, 4),
)


def run_workers() -> None:
    """GET /api/articles on PostgreSQL and the ceiling under several gunicorn settings."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp:
        workdir = Path(tmp)
        with throwaway_database("postgresql") as url:
            migrate(url)
            project = Project(url)
            project.seed(**STANDARD_SIZES)
            _, _, body = project.statements("GET", "/api/articles", {})
            project.close()
            body_path = workdir / "ceiling-body.json"
            body_path.write_bytes(body)
            for worker_class, workers, threads in WORKER_SETTINGS:
                settings = {
                    "GUNICORN_WORKER_CLASS": worker_class,
                    "WEB_CONCURRENCY": str(workers),
                    "GUNICORN_THREADS": str(threads),
                }
                label = f"{worker_class} -w {workers}" + (
                    f" -t {threads}" if worker_class == "gthread" else ""
                )
                for target, spec, env, probe in (
                    ("project", "wsgi:app", server_env(url, **settings), "/readyz"),
                    (
                        "ceiling",
                        "bench.ceiling_app:app",
                        {**os.environ, **settings, "BENCH_CEILING_BODY": str(body_path)},
                        "/api/articles",
                    ),
                ):
                    with gunicorn(spec, env, workdir, probe) as server:
                        wrk(server.url + "/api/articles", duration=WARMUP or 1)
                        log(f"{label}: {target}")
                        results = wrk(server.url + "/api/articles", duration=DURATION)
                    rows.append({"settings": label, "target": target, **results})
    document = {"kind": "workers", "machine": machine(), "rows": rows}
    path = write_results("bench-workers", document)
    print()
    print(f"{'settings':<20}{'target':<9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for row in rows:
        print(
            f"{row['settings']:<20}{row['target']:<9}{row['rps']:>9,.0f}"
            f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['non_2xx']:>9}"
        )
    print(f"\nresults: {path.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "mode",
        nargs="?",
        default="standard",
        choices=("standard", "scale", "workers", "replicas"),
    )
    parser.add_argument(
        "--databases",
        default=os.environ.get("BENCH_DATABASES", "postgresql,sqlite"),
        help="comma-separated: postgresql, sqlite",
    )
    args = parser.parse_args(argv)
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    ensure_wrk()
    try:
        if args.mode == "standard":
            run_standard(databases)
        elif args.mode == "scale":
            run_scale(databases)
        elif args.mode == "replicas":
            run_replicas()
        else:
            run_workers()
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
