"""Reads on a PostgreSQL streaming replica: read scaling, and read-your-writes under load.

The last part of ``python -m bench.run replicas`` (``make bench-replicas``),
on a primary and a streaming replica of its own (tests/replication.py):

* **Read scaling.** The primary is seeded (:data:`SIZES`) and the replica
  waited for; then gunicorn with ``RESPONSE_CACHE=off`` serves the list
  (``GET /api/articles``), the feed (signed in) and the 95/5 mix
  (bench/lua/read_write_mix.lua, as in ``make bench``), first on the primary
  alone, then with ``DATABASE_REPLICA_URLS`` naming the replica. Which
  database served is the app's own counter, ``conduit_db_reads_total{database}``
  (app/web/metrics.py), scraped from ``METRICS_PORT`` before and after each
  measured run. Both databases share this machine's cores with gunicorn and
  wrk, so the figures say how reads divide, not how much a replica on its own
  host adds.
* **Read-your-writes under load.** Two gunicorn servers (A and B), both
  configured with the primary and the replica (``APP_ENV=testing`` so that
  ``X-Database-Served-By`` names the database of each read). While wrk loads
  B with ``GET /api/articles``, :data:`CLIENTS` threads each repeat: change
  its bio through A, read it back through B twice sending the
  ``X-Database-Position`` A answered (a read not showing the bio is a
  violation), and twice without a position (its profile, counted as stale
  when it misses the bio, which a client without the header may see; and
  the tags).

Sizes from the environment: ``BENCH_READ_REPLICA_ARTICLES`` (seeded articles,
default 2,000), ``BENCH_READ_REPLICA_CLIENTS`` (default 8) and
``BENCH_READ_REPLICA_SECONDS`` (the check's length, default three times
``BENCH_DURATION``, at least 10); results in
``bench-results/bench-read-replicas-latest.json``.

The last line printed: ``replicas: V read-your-writes violations in N reads;
replicas served R% of reads`` (N and R: the read-your-writes clients' reads).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    CONNECTIONS,
    DURATION,
    HOST,
    LUA,
    ROOT,
    WARMUP,
    BenchError,
    Project,
    Server,
    check_deadline,
    deployed_settings,
    gunicorn,
    log,
    wrk,
)
from bench.report import machine, write_results

SIZES = {
    "users": 200,
    "articles": int(os.environ.get("BENCH_READ_REPLICA_ARTICLES", "2000")),
    "tags": 20,
    "tags_per_article": 3,
    "comments_per_article": 3,
    "follows_per_user": 10,
    "favorites_per_user": 10,
}
CLIENTS = int(os.environ.get("BENCH_READ_REPLICA_CLIENTS", "8"))
# Seconds of read-your-writes rounds under load (wrk on server B meanwhile).
CHECK_SECONDS = int(os.environ.get("BENCH_READ_REPLICA_SECONDS", str(max(3 * DURATION, 10))))
SETUPS = ("primary alone", "primary + replica")


def run_read_replicas() -> None:
    """Read scaling on a primary and a replica, then read-your-writes across two app servers."""
    from scripts import throwaway
    from tests import replication

    reason = replication.unavailable_reason()
    if reason is not None:
        raise BenchError(f"read replicas: {reason}")
    log("read replicas: a primary and a streaming replica")
    with (
        replication.primary_and_replica() as pair,
        tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp,
    ):
        workdir = Path(tmp)
        throwaway.migrate(pair.primary.url, deployed_settings())
        log(f"read replicas: seeding {SIZES['articles']:,} articles on the primary")
        project = Project(pair.primary.url)
        seeded = project.seed(**SIZES)
        tokens = project.tokens(seeded.user_ids[:8])
        project.close()
        _wait_for_replay(pair)
        slugs = workdir / "slugs.txt"
        slugs.write_text("\n".join(seeded.slugs[:500]) + "\n")
        mix_env = {
            "BENCH_TOKENS": ",".join(tokens),
            "BENCH_SLUGS": str(slugs),
            "BENCH_TAG": seeded.tag_names[3],
        }
        scaling = _read_scaling(pair.primary.url, pair.replica.url, workdir, tokens[0], mix_env)
        checked = _read_your_writes_under_load(pair.primary.url, pair.replica.url, workdir)
    document = {
        "kind": "read-replicas",
        "machine": machine(),
        "seed": SIZES,
        "read_scaling": scaling,
        "read_your_writes": checked,
    }
    path = write_results("bench-read-replicas", document)
    _print(scaling, checked)
    print(f"\nresults: {path.relative_to(ROOT)}")
    reads = checked["reads"]
    share = 100 * checked["replica_reads"] / max(reads, 1)
    print(
        f"replicas: {checked['violations']} read-your-writes violations in {reads} reads; "
        f"replicas served {share:.0f}% of reads"
    )


def _wait_for_replay(pair: Any, attempts: int = 12) -> None:
    """Until the replica has replayed the seed (10 s a try: a loaded machine replays slowly)."""
    for attempt in range(attempts):
        try:
            pair.wait_for_replay()
            return
        except RuntimeError:
            if attempt == attempts - 1:
                raise BenchError("the replica did not replay the seed in time") from None
            log("read replicas: the replica is still replaying the seed")


# --- read scaling ----------------------------------------------------------------


def _read_scaling(
    primary: str, replica: str, workdir: Path, token: str, mix_env: dict[str, str]
) -> list[dict[str, Any]]:
    """The list, the feed and the 95/5 mix, cache off, on the primary alone then with the replica.

    One row per (setup, endpoint): wrk's numbers (``bench.harness.wrk``) and
    the reads each database served during the measured run (``reads``:
    ``{"primary": n, "<replica host:port>": n}``; empty on the primary alone,
    where the counter is not kept) and ``replica_share`` (0 to 1).
    """
    auth = {"Authorization": f"Token {token}"}
    endpoints: list[tuple[str, dict[str, str], Path | None]] = [
        ("list", {}, None),
        ("feed", auth, None),
        ("95/5 mix", {}, LUA / "read_write_mix.lua"),
    ]
    paths = {"list": "/api/articles", "feed": "/api/articles/feed", "95/5 mix": "/api/articles"}
    rows: list[dict[str, Any]] = []
    run_id = secrets.token_hex(3)
    for setup in SETUPS:
        metrics_port = _free_port()
        replicas = {"DATABASE_REPLICA_URLS": replica} if setup != "primary alone" else {}
        with gunicorn(
            primary,
            workdir,
            RESPONSE_CACHE="off",
            RATELIMIT_ENABLED="off",
            METRICS_PORT=str(metrics_port),
            **replicas,
        ) as server:
            if replicas:
                _wait_until_serving(server)
            for name, headers, script in endpoints:
                url = server.base_url + paths[name]
                if WARMUP and script is None:
                    wrk(url, duration=WARMUP, headers=headers)
                log(f"read replicas, {setup}, cache off: {name} for {DURATION} s")
                before = _reads_by_database(metrics_port)
                results = wrk(
                    url,
                    duration=DURATION,
                    headers=headers,
                    script=script,
                    env={**mix_env, "BENCH_RUN_ID": f"{run_id}-{len(rows)}"},
                )
                after = _reads_by_database(metrics_port)
                reads = {db: after[db] - before.get(db, 0) for db in after}
                total = sum(reads.values())
                on_replicas = total - reads.get("primary", 0)
                rows.append(
                    {
                        "setup": setup,
                        "endpoint": name,
                        "path": paths[name],
                        **results,
                        "reads": reads,
                        "replica_share": round(on_replicas / total, 3) if total else 0.0,
                    }
                )
    return rows


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _reads_by_database(metrics_port: int) -> dict[str, int]:
    """``conduit_db_reads_total`` by its ``database`` label, summed over the workers."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{HOST}:{metrics_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "conduit_db_reads":
            continue
        for sample in family.samples:
            if sample.name == "conduit_db_reads_total":
                database = sample.labels["database"]
                counts[database] = counts.get(database, 0) + int(sample.value)
    return counts


def _wait_until_serving(server: Server, seconds: float = 10) -> None:
    """Until ``/readyz`` lists every replica as serving (each worker checks on its own)."""
    deadline = time.monotonic() + seconds
    answers = 0
    while answers < 4:  # a few answers in a row: both workers, most likely
        with urllib.request.urlopen(server.base_url + "/readyz", timeout=5) as answer:  # noqa: S310 (loopback)
            body = json.loads(answer.read())
        serving = all(replica["serving"] for replica in body.get("replicas", [{}]))
        answers = answers + 1 if serving else 0
        if time.monotonic() > deadline:
            raise BenchError(f"the replica is not serving: {body}")
        time.sleep(0.1)


# --- read-your-writes under load -------------------------------------------------


@dataclass
class Tally:
    """What the read-your-writes clients counted, added up under a lock."""

    writes: int = 0
    reads: int = 0
    violations: int = 0
    replica_reads: int = 0
    positioned_reads: int = 0
    positioned_on_replica: int = 0
    unpositioned_reads: int = 0
    unpositioned_stale: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, other: Tally) -> None:
        with self.lock:
            for name in self.counts():
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def counts(self) -> dict[str, int]:
        return {name: value for name, value in vars(self).items() if name != "lock"}


def _read_your_writes_under_load(primary: str, replica: str, workdir: Path) -> dict[str, Any]:
    """:data:`CLIENTS` clients write through server A and read through B while wrk loads B."""
    settings = {
        "APP_ENV": "testing",  # X-Database-Served-By on every read
        "RATELIMIT_ENABLED": "off",
        "DATABASE_REPLICA_URLS": replica,
    }
    with gunicorn(primary, workdir, **settings) as a, gunicorn(primary, workdir, **settings) as b:
        _wait_until_serving(a)
        _wait_until_serving(b)
        users = [_register(a, f"ryw{n}{secrets.token_hex(3)}") for n in range(CLIENTS)]
        load: dict[str, Any] = {}
        failures: list[BaseException] = []
        stop = threading.Event()

        def loaded() -> None:
            try:
                load.update(
                    wrk(
                        b.base_url + "/api/articles",
                        duration=CHECK_SECONDS,
                        connections=CONNECTIONS // 2,
                        threads=1,
                    )
                )
            except BaseException as error:  # reported after the clients stop
                failures.append(error)
            finally:
                stop.set()

        log(
            f"read replicas: {CLIENTS} clients write through A, read through B, "
            f"wrk on B, for {CHECK_SECONDS} s"
        )
        tally = Tally()
        background = threading.Thread(target=loaded, daemon=True)
        background.start()
        time.sleep(0.5)  # wrk is connected
        clients = [
            threading.Thread(target=_guarded(_client, failures), args=(a, b, user, stop, tally))
            for user in users
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=CHECK_SECONDS + 60)
        background.join(timeout=CHECK_SECONDS + 90)
        if failures:
            raise BenchError(f"read-your-writes under load: {failures[0]}")
    check_deadline()
    return {
        "clients": CLIENTS,
        "seconds": CHECK_SECONDS,
        "response_cache": "on (the default)",
        **tally.counts(),
        "load_on_b": load,
    }


def _guarded(target: Callable[..., None], failures: list[BaseException]) -> Callable[..., None]:
    def run(*args: Any) -> None:
        try:
            target(*args)
        except BaseException as error:
            failures.append(error)
            args[3].set()  # stop: the other clients end their round

    return run


class _Connection:
    """One keep-alive connection to a server; JSON in and out."""

    def __init__(self, server: Server) -> None:
        self.http = http.client.HTTPConnection(HOST, server.port, timeout=15)

    def call(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> tuple[http.client.HTTPResponse, Any]:
        payload = None if body is None else json.dumps(body)
        self.http.request(
            method, path, body=payload, headers={"Content-Type": "application/json", **headers}
        )
        response = self.http.getresponse()
        data = response.read()
        return response, (json.loads(data) if data else None)

    def close(self) -> None:
        self.http.close()


def _register(server: Server, username: str) -> tuple[str, str]:
    """A new user, signed up through ``server``: (token, username)."""
    connection = _Connection(server)
    user = {"username": username, "email": f"{username}@bench.test", "password": "x" * 16}
    response, body = connection.call("POST", "/api/users", {}, {"user": user})
    connection.close()
    if response.status != 201:
        raise BenchError(f"registering {username} answered {response.status}")
    return str(body["user"]["token"]), username


def _client(
    a: Server, b: Server, user: tuple[str, str], stop: threading.Event, total: Tally
) -> None:
    """Rounds until ``stop``: bio written on A, read on B with and without the position."""
    writer, reader = _Connection(a), _Connection(b)
    token, username = user
    auth = {"Authorization": f"Token {token}"}
    mine = Tally()
    profile = f"/api/profiles/{username}"
    while not stop.is_set():
        bio = f"bio {secrets.token_hex(6)}"
        response, _ = writer.call("PUT", "/api/user", auth, {"user": {"bio": bio}})
        position = response.getheader("X-Database-Position")
        if response.status != 200 or position is None:
            raise BenchError(f"the write answered {response.status} without a position")
        mine.writes += 1
        for path, key in (("/api/user", "user"), (profile, "profile")):
            response, body = reader.call("GET", path, {**auth, "X-Database-Position": position})
            on_replica = _on_replica(response)
            mine.reads += 1
            mine.positioned_reads += 1
            mine.violations += (body or {}).get(key, {}).get("bio") != bio
            mine.replica_reads += on_replica
            mine.positioned_on_replica += on_replica
        for path in (profile, "/api/tags"):
            response, body = reader.call("GET", path, {})
            mine.reads += 1
            mine.unpositioned_reads += 1
            mine.replica_reads += _on_replica(response)
            if path == profile:
                mine.unpositioned_stale += (body or {}).get("profile", {}).get("bio") != bio
    writer.close()
    reader.close()
    total.add(mine)


def _on_replica(response: http.client.HTTPResponse) -> bool:
    if response.status != 200:
        raise BenchError(f"a read answered {response.status}")
    served_by = response.getheader("X-Database-Served-By")
    if served_by is None:
        raise BenchError("no X-Database-Served-By: the server is not in APP_ENV=testing")
    return served_by != "primary"


# --- the tables ----------------------------------------------------------------------


def _print(scaling: list[dict[str, Any]], checked: dict[str, Any]) -> None:
    print()
    print(
        "Read scaling, response cache off (both databases, gunicorn and wrk share the "
        "same cores: no speed-up claim)"
    )
    header = (
        f"{'endpoint':<10}{'alone req/s':>12}{'p99 ms':>8}{'+replica req/s':>16}{'p99 ms':>8}"
        f"{'non-2xx':>9}{'replica share':>15}"
    )
    print(header)
    print("-" * len(header))
    by = {(row["setup"], row["endpoint"]): row for row in scaling}
    for name in dict.fromkeys(row["endpoint"] for row in scaling):
        alone, both = by[(SETUPS[0], name)], by[(SETUPS[1], name)]
        print(
            f"{name:<10}{alone['rps']:>12,.0f}{alone['p99_ms']:>8.1f}"
            f"{both['rps']:>16,.0f}{both['p99_ms']:>8.1f}"
            f"{alone['non_2xx'] + both['non_2xx']:>9}{100 * both['replica_share']:>14.0f}%"
        )
    load = checked["load_on_b"]
    print()
    print(
        f"Read-your-writes under load: {checked['clients']} clients, {checked['writes']} writes "
        f"through A, {checked['reads']} reads through B in {checked['seconds']} s; "
        f"wrk on B meanwhile: {load.get('rps', 0):,.0f} req/s, p99 {load.get('p99_ms', 0):.1f} ms"
    )
    print(
        f"  with the position: {checked['positioned_reads']} reads, "
        f"{checked['positioned_on_replica']} on the replica, {checked['violations']} violations"
    )
    print(
        f"  without: {checked['unpositioned_reads']} reads; the writer's own profile missed "
        f"the new bio {checked['unpositioned_stale']} times (allowed: no position sent)"
    )
