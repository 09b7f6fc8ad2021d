"""What the benchmark measures: the standard endpoints and the ceiling, scale, replicas, workers.

Each ``run_*`` is one mode of ``python -m bench.run``; the harness serves
and loads, the report prints and writes.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    CONNECTIONS,
    DURATION,
    HOST,
    LUA,
    RESULTS,
    ROOT,
    THREADS,
    WARMUP,
    BenchError,
    Project,
    Server,
    check_deadline,
    ensure_pgbench,
    ensure_wrk,
    gunicorn,
    log,
    migrated_database,
    wrk,
)
from bench.read_replicas import run_read_replicas
from bench.report import Measurement, machine, print_table, print_write_ceiling, write_results
from bench.write_ceiling import (
    WRITE_KINDS,
    Known,
    Ranges,
    Statement,
    capture_writes,
    pgbench_script,
    run_pgbench,
)

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


# ``BENCH_ENDPOINTS``: the names to measure, comma-separated ("articles,feed,tags"); all when unset.
ONLY = frozenset(
    name.strip() for name in os.environ.get("BENCH_ENDPOINTS", "").split(",") if name.strip()
)


def standard_endpoints(seeded: Any) -> list[Endpoint]:
    """The standard run's endpoints, those ``BENCH_ENDPOINTS`` names if it is set."""
    slug = seeded.slugs[len(seeded.slugs) // 2]
    endpoints = [
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
    return [endpoint for endpoint in endpoints if not ONLY or endpoint.name in ONLY]


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


def measure_database(
    kind: str, workdir: Path, run_id: str, write_rows: list[dict[str, Any]]
) -> tuple[list[Measurement], bytes]:
    """Seed one database, serve it with gunicorn, wrk every endpoint.

    On PostgreSQL, also the write ceiling (:func:`measure_write_ceiling`),
    whose rows are added to ``write_rows``.
    """
    measurements: list[Measurement] = []
    log(f"{kind}: migrating and seeding {STANDARD_SIZES['articles']:,} articles")
    with migrated_database(kind) as url:
        project = Project(url)
        seeded = project.seed(**STANDARD_SIZES)
        tokens = project.tokens(seeded.user_ids[:8])
        auth = {"Authorization": f"Token {tokens[0]}"}
        slugs_file = workdir / f"slugs-{kind}.txt"
        slugs_file.write_text("\n".join(seeded.slugs[:500]) + "\n")

        endpoints = standard_endpoints(seeded)
        counts: dict[str, float | None] = {}
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
        if any(endpoint.write_mix for endpoint in endpoints):
            counts["write mix"] = write_mix_statements(project, tokens, seeded.slugs[1])
            counts["95/5 mix"] = None
        captures = None
        if kind == "postgresql" and WRITE_CEILING:
            writer = len(seeded.user_ids) // 2
            served = Project(url, response_cache=True)  # the writes' SQL as served
            try:
                captures = capture_writes(
                    served.app,
                    project.tokens([seeded.user_ids[writer]])[0],
                    seeded.user_ids[writer],
                    seeded.slugs[len(seeded.slugs) // 3],
                    f"m{secrets.token_hex(4)}",
                )
            finally:
                served.close()
        project.close()

        for cache in CACHE_SETTINGS:
            with gunicorn(url, workdir, RESPONSE_CACHE=cache) as server:
                for endpoint in endpoints:
                    headers = auth if endpoint.token and not endpoint.write_mix else {}
                    script = LUA / (endpoint.script or "write_mix.lua")
                    env = {
                        "BENCH_TOKENS": ",".join(tokens),
                        "BENCH_SLUGS": str(slugs_file),
                        "BENCH_TAG": seeded.tag_names[3],
                        "BENCH_RUN_ID": f"{run_id}-{kind}-{cache}",
                    }
                    if WARMUP:
                        warm_up(server.base_url + endpoint.path, headers, script, env, endpoint)
                    log(f"{kind}, cache {cache}: {endpoint.name} for {DURATION} s")
                    results = wrk(
                        server.base_url + endpoint.path,
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
        if captures is not None:
            ranges = Ranges(
                (min(seeded.user_ids), max(seeded.user_ids)),
                (min(seeded.article_ids), max(seeded.article_ids)),
            )
            env = {
                "BENCH_TOKENS": ",".join(tokens),
                "BENCH_SLUGS": str(slugs_file),
                "BENCH_RUN_ID": f"{run_id}-{kind}-ceiling",
            }
            write_rows += measure_write_ceiling(url, workdir, captures, ranges, env)
    return measurements, list_body


def warm_up(
    url: str, headers: dict[str, str], script: Path, env: dict[str, str], endpoint: Endpoint
) -> None:
    """``BENCH_WARMUP`` seconds of what is about to be measured, so every figure is a steady state.

    A new worker's first writes cost several times a warm one's (statements
    compiled once per process, new connections, first lookups): over the first
    10 s of writes on a fresh server they put the write mix's p99 at 110-170 ms
    where later runs measure 72-77 (docs/performance.md). Reads were always
    warmed up; writes are warmed with the same script under their own run id
    (titles, hence slugs, never repeat the measured run's).
    """
    if not endpoint.write_mix:
        wrk(url, duration=WARMUP, headers=headers)
        return
    wrk(
        url,
        duration=WARMUP,
        script=script,
        env={**env, "BENCH_RUN_ID": env["BENCH_RUN_ID"] + "-warm-up"},
    )


WRITE_CEILING = os.environ.get("BENCH_WRITE_CEILING", "on") != "off"


def measure_write_ceiling(
    url: str,
    workdir: Path,
    captures: dict[str, tuple[list[Statement], Known]],
    ranges: Ranges,
    env: dict[str, str],
) -> list[dict[str, Any]]:
    """Each write alone over HTTP (wrk), then its captured SQL replayed by pgbench.

    Same database, same concurrency (``BENCH_CONNECTIONS`` connections and
    clients, ``BENCH_THREADS`` threads, ``BENCH_DURATION`` seconds); the
    server runs with the first ``BENCH_CACHE`` setting.
    """
    rows: list[dict[str, Any]] = []
    with gunicorn(url, workdir, RESPONSE_CACHE=CACHE_SETTINGS[0]) as server:
        for write in WRITE_KINDS:
            if WARMUP:
                write_alone = {
                    **env,
                    "BENCH_WRITE_KIND": write,
                    "BENCH_RUN_ID": env["BENCH_RUN_ID"] + "-warm-up",
                }
                wrk(
                    server.base_url + "/api/articles",
                    duration=WARMUP,
                    script=LUA / "write_mix.lua",
                    env=write_alone,
                )
            log(f"postgresql: {write} alone for {DURATION} s")
            results = wrk(
                server.base_url + "/api/articles",
                duration=DURATION,
                script=LUA / "write_mix.lua",
                env={**env, "BENCH_WRITE_KIND": write},
            )
            sql = sum(1 for _, parameters in captures[write][0] if parameters is not None)
            rows.append({"write": write, "sql": sql, "http": results})
    for row in rows:
        check_deadline()
        statements, known = captures[row["write"]]
        script = workdir / f"replay-{row['write']}.sql"
        script.write_text(pgbench_script(statements, known, ranges))
        log(f"postgresql: pgbench replaying {row['write']} for {DURATION} s")
        row["replay"] = run_pgbench(
            ensure_pgbench(), url, script, clients=CONNECTIONS, threads=THREADS, duration=DURATION
        )
        row["ceiling_ratio"] = round(row["http"]["rps"] / row["replay"]["tps"], 3)
    return rows


CACHE_SETTINGS = tuple(
    setting.strip()
    for setting in os.environ.get("BENCH_CACHE", "on,off").split(",")
    if setting.strip()
)


def measure_ceiling(body: bytes, workdir: Path) -> Measurement:
    body_path = workdir / "ceiling-body.json"
    body_path.write_bytes(body)
    with gunicorn(
        "sqlite://",  # the ceiling touches no database
        workdir,
        app="bench.ceiling_app:app",
        probe="/api/articles",
        BENCH_CEILING_BODY=str(body_path),
    ) as server:
        if WARMUP:
            wrk(server.base_url + "/api/articles", duration=WARMUP)
        log(f"ceiling: bare Flask route, {len(body):,} bytes, for {DURATION} s")
        results = wrk(server.base_url + "/api/articles", duration=DURATION)
    return Measurement("none", "ceiling", "/api/articles", 0, results)


def run_standard(databases: list[str]) -> None:
    run_id = secrets.token_hex(3)
    measurements: list[Measurement] = []
    write_rows: list[dict[str, Any]] = []
    ceiling_body = b""
    with tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp:
        workdir = Path(tmp)
        for kind in databases:
            rows, body = measure_database(kind, workdir, run_id, write_rows)
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
        "write_ceiling": write_rows,
    }
    path = write_results("bench", document)
    from bench.chart import standard_chart

    chart = standard_chart(document, RESULTS / "bench.png")
    print()
    print_table(rows, ceiling_rps)
    if write_rows:
        print()
        print_write_ceiling(write_rows)
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
            with migrated_database(kind) as url:
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
                    with gunicorn(url, workdir) as server:
                        for endpoint in endpoints:
                            headers = auth if endpoint.token else {}
                            status, statements, body = project.statements(
                                "GET", endpoint.path, headers
                            )
                            matches = json.loads(body)["articlesCount"] if status == 200 else None
                            alone_ms = project.median_ms(endpoint.path, headers)
                            wrk(server.base_url + endpoint.path, duration=1, headers=headers)
                            log(f"{kind} {target:,}: {endpoint.name}")
                            results = wrk(
                                server.base_url + endpoint.path,
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
        with migrated_database("postgresql") as url:
            project = Project(url)
            seeded = project.seed(**STANDARD_SIZES)
            token = project.tokens(seeded.user_ids[:1])[0]
            project.close()
            with (
                gunicorn(url, workdir, RESPONSE_CACHE="on") as one,
                gunicorn(url, workdir, RESPONSE_CACHE="on") as two,
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
                                two.base_url + "/api/articles",
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
    run_read_replicas()


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
        with migrated_database("postgresql") as url:
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
                ceiling_body = {"BENCH_CEILING_BODY": str(body_path)}
                for target, app, probe, extra in (
                    ("project", "wsgi:app", "/readyz", {}),
                    ("ceiling", "bench.ceiling_app:app", "/api/articles", ceiling_body),
                ):
                    with gunicorn(
                        url, workdir, app=app, probe=probe, **settings, **extra
                    ) as server:
                        wrk(server.base_url + "/api/articles", duration=WARMUP or 1)
                        log(f"{label}: {target}")
                        results = wrk(server.base_url + "/api/articles", duration=DURATION)
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
