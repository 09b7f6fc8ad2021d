"""The benchmark: wrk against gunicorn serving the project, and the ceiling.

``python -m bench.run`` (``make bench``) measures, in one run and with the same
gunicorn settings (gunicorn.conf.py and the environment):

* the project on PostgreSQL and on SQLite, with the response cache on and
  off (``RESPONSE_CACHE``): the article list (anonymous and authenticated),
  the tag filter, the feed, one article, its comments, the tags, a write mix
  (create an article, favorite, comment) and a 95/5 read/write mix (with the
  cache's hit rate, from the ``X-Cache`` header);
* the ceiling: a bare Flask route returning the bytes the list returned;
* on PostgreSQL, the write ceiling: each write alone (wrk), beside pgbench
  replaying the SQL that write runs, at the same concurrency
  (``bench.write_ceiling``; ``BENCH_WRITE_CEILING=off`` skips it).

For each: requests/s, p50 and p99 latency, non-2xx responses, SQL statements
per request on a miss (each request run once in-process with a statement
counter) and the ratio to the ceiling. Results go to ``bench-results/`` as
JSON and a PNG.

``python -m bench.run replicas`` (``make bench-replicas``) serves one
PostgreSQL database with two gunicorn replicas, writes through one and polls
the other: how long until a write is visible on the other replica, idle and
under load. Then, on a PostgreSQL primary and a streaming replica
(``bench.read_replicas``): the list, the feed and the 95/5 mix with the
response cache off, on the primary alone and with the replica (the share of
reads each served), and read-your-writes under load across two app servers.

``python -m bench.run scale`` (``make bench-scale``) seeds 1,000, then 10,000,
then 100,000 articles and measures the list, the feed, the tag filter and the
favorited filter at each size. ``python -m bench.run workers`` (``make
bench-workers``) compares gunicorn worker classes and thread counts.
``python -m bench.run migration`` (``make bench-migration``) applies an index
and a validated constraint to 1,000,000 comments while the app serves, with
the lock-safe operations and the plain ones (``bench.migration``).
``python -m bench.run abuse`` (``make bench-abuse``) floods the response cache
with distinct URLs, holds silent connections open and locks a table, and
measures what the server does meanwhile (``bench.abuse``).

Every run is bounded: ``BENCH_DURATION`` seconds per endpoint (default 10),
``BENCH_MAX_SECONDS`` for the whole run (default 1,500), and wrk only ever
targets 127.0.0.1. Data is seeded through ``app.data.seed``; nothing here knows
the business rules.

The harness (servers, databases, wrk) is ``bench.harness``; what is measured,
``bench.scenarios``; the tables and files, ``bench.report`` and ``bench.chart``.
"""

from __future__ import annotations

import argparse
import os
import sys

from app.db.scratch import ScratchUnavailable
from bench.abuse import run_abuse
from bench.harness import BenchError, ensure_pgbench, ensure_wrk
from bench.migration import run_migration
from bench.scenarios import run_replicas, run_scale, run_standard, run_workers
from scripts.throwaway import ThrowawayError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "mode",
        nargs="?",
        default="standard",
        choices=("standard", "scale", "workers", "replicas", "migration", "abuse"),
    )
    parser.add_argument(
        "--databases",
        default=os.environ.get("BENCH_DATABASES", "postgresql,sqlite"),
        help="comma-separated: postgresql, sqlite",
    )
    args = parser.parse_args(argv)
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if args.mode != "abuse":  # plain sockets, no wrk
        ensure_wrk()
    try:
        if args.mode == "standard" and "postgresql" in databases:
            ensure_pgbench()  # the write ceiling
        if args.mode == "standard":
            run_standard(databases)
        elif args.mode == "scale":
            run_scale(databases)
        elif args.mode == "replicas":
            run_replicas()
        elif args.mode == "migration":
            run_migration()
        elif args.mode == "abuse":
            run_abuse(databases)
        else:
            run_workers()
    except (BenchError, ThrowawayError, ScratchUnavailable) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
