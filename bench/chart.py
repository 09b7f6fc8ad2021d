"""PNG charts of the benchmark results (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = {"postgresql": "#336791", "sqlite": "#44a047", "none": "#999999"}


def standard_chart(document: dict[str, Any], path: Path) -> Path:
    """Requests/s and p99 per endpoint: each database with the cache on and off."""
    rows = [m for m in document["measurements"] if m["endpoint"] != "ceiling"]
    endpoints = list(dict.fromkeys(m["endpoint"] for m in rows))
    series = list(dict.fromkeys((m["database"], m.get("cache", "-")) for m in rows))
    ceiling = document["ceiling_rps"]
    width = 0.8 / max(len(series), 1)

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(14, 9), sharex=True)
    for offset, (database, cache) in enumerate(series):
        by_endpoint = {
            m["endpoint"]: m["results"]
            for m in rows
            if m["database"] == database and m.get("cache", "-") == cache
        }
        xs = [i + offset * width - 0.4 + width / 2 for i in range(len(endpoints))]
        rps = [by_endpoint.get(e, {}).get("rps", 0) for e in endpoints]
        p99 = [by_endpoint.get(e, {}).get("p99_ms", 0) for e in endpoints]
        color = COLORS.get(database)
        alpha = 0.45 if cache == "off" else 1.0
        label = f"{database}, cache {cache}"
        bars = top.bar(xs, rps, width, label=label, color=color, alpha=alpha)
        top.bar_label(bars, labels=[f"{v:,.0f}" for v in rps], fontsize=6, rotation=90)
        bottom.bar(xs, p99, width, label=label, color=color, alpha=alpha)
    top.axhline(ceiling, color="#cc3333", linestyle="--", label=f"ceiling {ceiling:,.0f} req/s")
    top.axhline(0.4 * ceiling, color="#cc3333", linestyle=":", label="40% of the ceiling")
    top.set_ylabel("requests/s")
    machine = document["machine"]
    top.set_title(f"Conduit on gunicorn ({machine['gunicorn']}), wrk {machine['wrk']}")
    top.legend(fontsize=7)
    bottom.set_ylabel("p99 latency (ms)")
    bottom.axhline(50, color="#cc3333", linestyle=":", label="50 ms target")
    bottom.legend(fontsize=7)
    bottom.set_xticks(range(len(endpoints)), endpoints, rotation=20)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def scale_chart(document: dict[str, Any], path: Path) -> Path:
    """p50 latency and requests/s per endpoint as the articles table grows."""
    rows = document["rows"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for database in dict.fromkeys(r["database"] for r in rows):
        for endpoint in dict.fromkeys(r["endpoint"] for r in rows):
            points = [r for r in rows if r["database"] == database and r["endpoint"] == endpoint]
            sizes = [r["articles"] for r in points]
            label = f"{endpoint} ({database})"
            left.plot(sizes, [r["alone_ms"] for r in points], marker="o", label=label)
            right.plot(sizes, [r["rps"] for r in points], marker="o", label=label)
    titles = ((left, "one request at a time: median ms"), (right, "requests/s under load"))
    for axis, title in titles:
        axis.set_xscale("log")
        axis.set_xlabel("articles in the database")
        axis.set_title(title)
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
    right.legend(fontsize=7)
    figure.suptitle(f"Scale: wrk {document['machine']['wrk']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
