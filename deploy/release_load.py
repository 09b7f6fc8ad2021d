"""The rolling-release demo's load and its verdict (deploy/release-demo.sh).

    python deploy/release_load.py run BALANCER_URL RESULTS.json [--clients 6]
        [--max-seconds 170] [--max-requests 60000]

Several clients, each a thread with its own account, send reads and writes
through the balancer until SIGTERM or SIGINT (or a bound) stops them: they
register users, change bios (``PUT /api/user``), post articles and comments,
and read profiles, articles, comments, tags and lists over and over, signed
in and anonymous, so the response cache answers hits. Every request opens a
connection of its own (nothing the client keeps open can go stale under a
balancer reload). Each outcome is written to RESULTS.json.

    python deploy/release_load.py check RESULTS.json BALANCER_URL UNCACHED_URL [--steps STEPS]

Counts three things and exits 1 unless all are 0:

- **failed**: answers 5xx and requests that got no answer (refused, reset,
  timed out). A 4xx is the client's doing and is only listed;
- **writes lost**: every acknowledged (2xx) write looked for afterwards through
  the API of UNCACHED_URL (a replica with ``RESPONSE_CACHE=off``): the users
  exist, each user's bio is the last one acknowledged (or a later one whose
  answer was lost), the articles and comments exist;
- **stale**: every hot read of the load (URL and viewer) read once more
  through the balancer and compared byte for byte with the same read from
  UNCACHED_URL. With ``--out-of-band DATABASE_URL``, the hot reads are first
  read through the balancer until the replicas' caches hold them, then psql
  changes every article title and comment body behind the app's back (as an
  operator's fix would), so the comparison shows whether a write made outside
  the app reached every replica's cache.

STEPS is a file of ``<unix time> <step>`` lines (the release's steps as they
began); the requests and failures are then also counted per step. Its last
line: ``release: N requests, F failed, W writes lost, S stale``. Loopback
only, standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 10
PAUSE_SECONDS = 0.005  # between one client's requests
SETTLE_SECONDS = 1.0  # before the stale check: other replicas hear of the last writes
CHECK_THREADS = 8
PASSWORD = "release-password"  # noqa: S105 (throwaway accounts on a scratch database)


@dataclass
class Outcome:
    method: str
    path: str
    status: int | None  # None: no answer
    error: str = ""
    cache: str = ""  # X-Cache: hit, miss, off
    at: float = 0.0  # unix time the request was sent


@dataclass
class Ledger:
    """What one client sent and what was acknowledged."""

    outcomes: list[Outcome] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    # Every bio sent, in order: [username, bio, acknowledged]
    bios: list[tuple[str, str, bool]] = field(default_factory=list)
    articles: list[str] = field(default_factory=list)
    comments: list[tuple[str, int]] = field(default_factory=list)  # (slug, comment id)
    reads: set[tuple[str, str]] = field(default_factory=set)  # (path, token or "")


def request(
    base: str, method: str, path: str, body: Any = None, token: str = ""
) -> tuple[int, bytes, str]:
    """One request on a connection of its own: (status, body, X-Cache). Raises OSError."""
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.netloc, timeout=TIMEOUT_SECONDS)
    headers = {"Connection": "close"}
    if token:
        headers["Authorization"] = f"Token {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, payload, headers)
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("X-Cache", "")
    except http.client.HTTPException as error:
        raise OSError(f"{type(error).__name__}: {error}") from error
    finally:
        connection.close()


class Client(threading.Thread):
    def __init__(self, number: int, base: str, run_id: str, stop: threading.Event, shared: Shared):
        super().__init__(name=f"client-{number}", daemon=True)
        self.number, self.base, self.run_id, self.stop, self.shared = (
            number,
            base,
            run_id,
            stop,
            shared,
        )
        self.ledger = Ledger()
        self.rng = random.Random(number)  # noqa: S311 (load shape, not security)
        self.token = ""
        self.username = ""
        self.bio_account = ("", "")

    def send(self, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
        """(status, parsed JSON or None); status 0 when there was no answer."""
        if not self.shared.take():
            self.stop.set()
            return 0, None
        at = time.time()
        try:
            status, raw, cache = request(self.base, method, path, body, token)
        except OSError as error:
            self.ledger.outcomes.append(Outcome(method, path, None, str(error)[:200], at=at))
            return 0, None
        self.ledger.outcomes.append(Outcome(method, path, status, cache=cache, at=at))
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    def register(self, index: int) -> str:
        name = f"rl{self.run_id}c{self.number}u{index}"
        status, answer = self.send(
            "POST",
            "/api/users",
            {"user": {"username": name, "email": f"{name}@example.com", "password": PASSWORD}},
        )
        if 200 <= status < 300:
            self.ledger.users.append(name)
            self.shared.add_user(name)
            return str(answer["user"]["token"])
        return ""

    def post_article(self, index: int) -> None:
        status, answer = self.send(
            "POST",
            "/api/articles",
            {
                "article": {
                    "title": f"Release {self.run_id} {self.number}.{index}",
                    "description": "written while the release rolls",
                    "body": "body",
                    "tagList": [f"release{self.number % 3}"],
                }
            },
            self.token,
        )
        if 200 <= status < 300:
            slug = answer["article"]["slug"]
            self.ledger.articles.append(slug)
            self.shared.add_slug(slug)

    def post_comment(self) -> None:
        slug = self.shared.any_slug(self.rng)
        if slug is None:
            return
        status, answer = self.send(
            "POST", f"/api/articles/{slug}/comments", {"comment": {"body": "rolling"}}, self.token
        )
        if 200 <= status < 300:
            self.ledger.comments.append((slug, int(answer["comment"]["id"])))

    def update_bio(self, index: int) -> None:
        name, token = self.bio_account
        bio = f"bio {name} {index}"
        status, _ = self.send("PUT", "/api/user", {"user": {"bio": bio}}, token)
        self.ledger.bios.append((name, bio, 200 <= status < 300))

    def next_bio_account(self, index: int) -> None:
        """Bios go to a new account every 40 requests, so each account's last bio is written
        during one step of the release, whichever release served it."""
        name = f"rl{self.run_id}c{self.number}u{index}"
        token = self.register(index)
        if token:
            self.bio_account = (name, token)

    def read(self) -> None:
        slug = self.shared.any_slug(self.rng)
        user = self.shared.any_user(self.rng)
        paths = ["/api/articles?limit=10", "/api/tags"]
        if slug:
            paths += [f"/api/articles/{slug}", f"/api/articles/{slug}/comments"]
        if user:
            paths += [f"/api/profiles/{user}", f"/api/articles?author={user}&limit=5"]
        path = self.rng.choice(paths)
        token = self.token if self.rng.random() < 0.5 else ""
        status, _ = self.send("GET", path, token=token)
        if status == 200:
            self.ledger.reads.add((path, token))

    def run(self) -> None:
        self.token = ""
        for attempt in range(5):  # an account first; without one there is nothing to write
            self.username = f"rl{self.run_id}c{self.number}u{attempt}"
            self.token = self.register(attempt)
            if self.token or self.stop.is_set():
                break
        if not self.token:
            return
        self.bio_account = (self.username, self.token)
        index = 0
        while not self.stop.is_set():
            index += 1
            # One request in seven writes: bios, comments, an article, a user.
            step = index % 40
            if step in (1, 21):
                self.update_bio(index)
            elif step in (6, 26):
                self.post_comment()
            elif step == 11:
                self.post_article(index)
            elif step == 31:
                self.next_bio_account(1000 + index)
            else:
                self.read()
            time.sleep(PAUSE_SECONDS)


class Shared:
    """What the clients share: the request budget, the slugs and users to read and comment on."""

    def __init__(self, max_requests: int) -> None:
        self._lock = threading.Lock()
        self._left = max_requests
        self._slugs: list[str] = []
        self._users: list[str] = []

    def take(self) -> bool:
        with self._lock:
            self._left -= 1
            return self._left >= 0

    def add_slug(self, slug: str) -> None:
        with self._lock:
            self._slugs.append(slug)

    def add_user(self, name: str) -> None:
        with self._lock:
            self._users.append(name)

    def any_slug(self, rng: random.Random) -> str | None:
        with self._lock:
            return rng.choice(self._slugs[-12:]) if self._slugs else None

    def any_user(self, rng: random.Random) -> str | None:
        with self._lock:
            return rng.choice(self._users[-12:]) if self._users else None


def run(arguments: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    shared = Shared(arguments.max_requests)
    run_id = f"{int(time.time()) % 100000}"
    clients = [Client(n, arguments.base, run_id, stop, shared) for n in range(arguments.clients)]
    started = time.monotonic()
    for client in clients:
        client.start()
    stop.wait(arguments.max_seconds)
    stop.set()
    for client in clients:
        client.join(TIMEOUT_SECONDS + 5)
    seconds = time.monotonic() - started
    ledgers = [asdict(client.ledger) for client in clients]
    for ledger in ledgers:
        ledger["reads"] = sorted(ledger["reads"])
    results = {"clients": len(clients), "seconds": round(seconds, 1), "ledgers": ledgers}
    Path(arguments.results).write_text(json.dumps(results))
    return 0


# --- the verdict -------------------------------------------------------------------


def check(arguments: argparse.Namespace) -> int:
    results = json.loads(Path(arguments.results).read_text())
    ledgers = results["ledgers"]
    outcomes = [Outcome(**o) for ledger in ledgers for o in ledger["outcomes"]]
    total = len(outcomes)
    failed = [o for o in outcomes if o.status is None or o.status >= 500]
    refused = [o for o in outcomes if o.status is not None and 400 <= o.status < 500]
    cache = Counter(o.cache for o in outcomes if o.method == "GET" and o.cache)
    writes = [o for o in outcomes if o.method != "GET" and o.status and 200 <= o.status < 300]
    say(
        f"load: {results['clients']} clients, {total} requests in {results['seconds']} s; "
        f"{len(writes)} writes acknowledged; reads answered by the cache: "
        + ", ".join(f"{state} {count}" for state, count in sorted(cache.items()))
    )
    say(
        f"failed: {len(failed)} (5xx {sum(1 for o in failed if o.status)}, "
        f"no answer {sum(1 for o in failed if o.status is None)}); "
        f"4xx (the client's doing, not failures): {len(refused)}"
    )
    for outcome in (failed + refused)[:10]:
        say(f"  {outcome.method} {outcome.path}: {outcome.status or outcome.error}")
    if arguments.steps:
        for step, sent, failures in per_step(outcomes, Path(arguments.steps)):
            say(f"  {step}: {sent} requests, {failures} failed")

    uncached, balancer = arguments.uncached, arguments.balancer
    lost = lost_writes(ledgers, uncached)
    say(
        f"writes lost: {sum(len(v) for v in lost.values())} "
        + "("
        + ", ".join(f"{kind} {len(missing)}" for kind, missing in lost.items())
        + ")"
    )
    for kind, missing in lost.items():
        for item in missing[:5]:
            say(f"  {kind}: {item}")

    if arguments.out_of_band:
        warmed = warm(ledgers, balancer)
        write_out_of_band(arguments.out_of_band)
        say(f"out-of-band: {warmed} hot reads cached, then psql changed titles and comments")
    time.sleep(SETTLE_SECONDS)
    stale, compared, states = stale_reads(ledgers, balancer, uncached)
    say(
        f"stale reads: {len(stale)} of {compared} hot reads through the balancer "
        f"({', '.join(f'{state} {count}' for state, count in sorted(states.items()))})"
    )
    for path, token in stale[:10]:
        say(f"  {path} ({'signed in' if token else 'anonymous'})")

    written_lost = sum(len(v) for v in lost.values())
    print(
        f"release: {total} requests, {len(failed)} failed, {written_lost} writes lost, "
        f"{len(stale)} stale",
        flush=True,
    )
    return 0 if not failed and not written_lost and not stale else 1


def per_step(outcomes: list[Outcome], steps_file: Path) -> list[tuple[str, int, int]]:
    """(step, requests sent during it, failed) for each step, in order."""
    steps = [line.split(" ", 1) for line in steps_file.read_text().splitlines() if line.strip()]
    starts = [float(at) for at, _ in steps]
    counts = []
    for index, (_, step) in enumerate(steps):
        end = starts[index + 1] if index + 1 < len(steps) else float("inf")
        during = [o for o in outcomes if starts[index] <= o.at < end]
        failures = sum(1 for o in during if o.status is None or o.status >= 500)
        counts.append((step, len(during), failures))
    return counts


def lost_writes(ledgers: list[dict[str, Any]], base: str) -> dict[str, list[str]]:
    lost: dict[str, list[str]] = {"users": [], "bios": [], "articles": [], "comments": []}
    bios: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    comments: dict[str, set[int]] = defaultdict(set)
    for ledger in ledgers:
        for name, bio, acknowledged in ledger["bios"]:
            bios[name].append((bio, acknowledged))
        for slug, comment_id in ledger["comments"]:
            comments[slug].add(comment_id)
        for name in ledger["users"]:
            status, _ = read_json(base, f"/api/profiles/{name}")
            if status != 200:
                lost["users"].append(f"{name} ({status})")
        for slug in ledger["articles"]:
            status, _ = read_json(base, f"/api/articles/{slug}")
            if status != 200:
                lost["articles"].append(f"{slug} ({status})")
    for name, sent in bios.items():
        acknowledged = [i for i, (_, ok) in enumerate(sent) if ok]
        if not acknowledged:
            continue
        # The last acknowledged bio, or one sent after it whose answer was lost.
        allowed = {bio for bio, _ in sent[acknowledged[-1] :]}
        status, answer = read_json(base, f"/api/profiles/{name}")
        stored = answer["profile"]["bio"] if status == 200 else f"<{status}>"
        if stored not in allowed:
            lost["bios"].append(f"{name}: {stored!r}, expected {sent[acknowledged[-1]][0]!r}")
    for slug, ids in comments.items():
        status, answer = read_json(base, f"/api/articles/{slug}/comments")
        found = {c["id"] for c in answer["comments"]} if status == 200 else set()
        lost["comments"] += [f"{slug} #{i}" for i in sorted(ids - found)]
    return lost


def stale_reads(
    ledgers: list[dict[str, Any]], balancer: str, uncached: str
) -> tuple[list[tuple[str, str]], int, Counter[str]]:
    reads = sorted({(path, token) for ledger in ledgers for path, token in ledger["reads"]})

    def compare(read: tuple[str, str]) -> tuple[bool, str]:
        path, token = read
        through, body, state = request(balancer, "GET", path, token=token)
        expected, expected_body, _ = request(uncached, "GET", path, token=token)
        return (through, body) != (expected, expected_body), state or "not cached"

    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        verdicts = list(pool.map(compare, reads))
    stale = [read for read, (differs, _) in zip(reads, verdicts, strict=True) if differs]
    return stale, len(reads), Counter(state for _, state in verdicts)


WARM_ROUNDS = 4  # reads per URL through the balancer: both replicas end up holding it
OUT_OF_BAND_SQL = (
    "UPDATE articles SET title = title || ' (fixed in psql)'; "
    "UPDATE comments SET body = body || ' (fixed in psql)';"
)


def warm(ledgers: list[dict[str, Any]], balancer: str) -> int:
    """Read every hot URL until the replicas cache it; the reads answered by a hit last round."""
    reads = sorted({(path, token) for ledger in ledgers for path, token in ledger["reads"]})
    hits = 0
    for round_ in range(WARM_ROUNDS):
        with ThreadPoolExecutor(CHECK_THREADS) as pool:
            states = list(
                pool.map(lambda read: request(balancer, "GET", read[0], token=read[1])[2], reads)
            )
        if round_ == WARM_ROUNDS - 1:
            hits = states.count("hit")
    return hits


def write_out_of_band(database_url: str) -> None:
    """Change rows with psql, outside the app (the driver suffix is not psql's)."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    command = ["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", OUT_OF_BAND_SQL]
    subprocess.run(command, check=True)  # noqa: S603 - psql from PATH, fixed SQL


def read_json(base: str, path: str) -> tuple[int, Any]:
    status, raw, _ = request(base, "GET", path)
    return status, json.loads(raw) if raw else None


def say(line: str) -> None:
    print(f"[release] {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("run", help="send the load until SIGTERM or a bound")
    load.add_argument("base")
    load.add_argument("results")
    load.add_argument("--clients", type=int, default=6)
    load.add_argument("--max-seconds", type=float, default=170)
    load.add_argument("--max-requests", type=int, default=60000)
    verdict = commands.add_parser("check", help="count failures, lost writes and stale reads")
    verdict.add_argument("results")
    verdict.add_argument("balancer")
    verdict.add_argument("uncached")
    verdict.add_argument("--steps", help="<unix time> <step> lines")
    verdict.add_argument(
        "--out-of-band", metavar="DATABASE_URL", help="change rows with psql before the stale check"
    )
    arguments = parser.parse_args(argv)
    for url in (getattr(arguments, name, None) for name in ("base", "balancer", "uncached")):
        if url and urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error(f"{url}: the release load runs on loopback only")
    return run(arguments) if arguments.command == "run" else check(arguments)


if __name__ == "__main__":
    sys.exit(main())
