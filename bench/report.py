"""The benchmark's report: the measurement rows, the machine, the table, the JSON files.

Charts are drawn by ``bench.chart``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import CONNECTIONS, DURATION, RESULTS, ROOT, THREADS


@dataclass
class Measurement:
    database: str
    endpoint: str
    path: str
    sql_per_request: float | None
    results: dict[str, Any] = field(default_factory=dict)
    cache: str = "-"


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


def print_table(rows: list[Measurement], ceiling_rps: float | None) -> None:
    header = (
        f"{'database':<11}{'cache':<6}{'endpoint':<17}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}{'errors':>8}{'SQL/req':>9}{'hits':>7}{'ceiling':>9}{'steal':>7}"
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
            f"{_share(r.get('steal')):>7}"
        )


def write_results(name: str, document: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / f"{name}-latest.json").write_text(json.dumps(document, indent=2) + "\n")
    return path


def print_write_ceiling(rows: list[dict[str, Any]]) -> None:
    """Each write over HTTP beside pgbench replaying its SQL (bench.write_ceiling)."""
    print("Write ceiling (PostgreSQL): each write alone, and its SQL replayed by pgbench")
    header = (
        f"{'write':<10}{'SQL':>5}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
        f"{'errors':>8}{'replay tx/s':>13}{'avg ms':>9}{'failed':>8}{'ceiling':>9}"
        f"{'steal':>13}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        r, replay = row["http"], row["replay"]
        print(
            f"{row['write']:<10}{row['sql']:>5}{r['rps']:>9,.0f}{r['p50_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['non_2xx']:>9}{r['socket_errors'] + r['timeouts']:>8}"
            f"{replay['tps']:>13,.0f}{replay['latency_avg_ms'] or 0:>9.1f}"
            f"{replay['failed']:>8}{100 * row['ceiling_ratio']:>8.0f}%"
            f"{_share(r.get('steal')) + ' / ' + _share(replay.get('steal')):>13}"
        )


def _share(value: float | None) -> str:
    """A share as a whole percentage; ``-`` when it was not measured."""
    return "-" if value is None else f"{100 * value:.0f}%"
