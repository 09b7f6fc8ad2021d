"""A schema change while the app serves: request latency before and during a migration.

``python -m bench.run migration`` (``make bench-migration``): a PostgreSQL
database with 1,000,000 comments (inserted with ``generate_series``, not the
API), served by gunicorn with the production settings and the response cache
off (every read reaches the database), under wrk's 95/5 read/write mix
(``bench/lua/read_write_mix.lua``: reads of lists, articles and comments;
writes that create articles, favorite and comment). Then, while the load
goes on, Alembic applies one revision that adds an index on ``comments.body``
and a validated check constraint on ``comments``:

* ``safe``: ``op.safe_create_index`` and ``op.safe_add_check`` (app/db/ops.py);
* ``plain`` (the contrast): ``op.create_index`` and ``op.create_check_constraint``.

wrk runs in back-to-back windows of ``BENCH_WINDOW`` seconds (default 3),
since one wrk run cannot report the requests of a time span alone: before the
migration (``before``: three windows), and
until the migration ends (the last window may run up to ``BENCH_WINDOW``
seconds past it). Each row reports the worst window's p99 (so the
figure covers the migration's slowest moment), every request's non-2xx answer
and socket error, and how long the migration took. Results go to
``bench-results/migration-*.json``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import (
    LUA,
    ROOT,
    BenchError,
    Project,
    Server,
    gunicorn,
    log,
    migrated_database,
    wrk,
)
from bench.report import machine, write_results

ROWS = int(os.environ.get("BENCH_MIGRATION_ROWS", "1000000"))
WINDOW = int(os.environ.get("BENCH_WINDOW", "3"))
SIZES = {"users": 100, "articles": 1_000, "tags": 20, "comments_per_article": 2}
REVISIONS = {
    "safe": """
    op.safe_create_index("ix_comments_body_safe", "comments", ["body"])
    op.safe_add_check("ck_comments_body_safe", "comments", "length(body) > 0")
""",
    "plain": """
    op.create_index(op.f("ix_comments_body_plain"), "comments", ["body"])
    op.create_check_constraint(op.f("ck_comments_body_plain"), "comments", "length(body) > 0")
""",
}


def _fill(url: str, article_ids: list[int]) -> None:
    """``ROWS`` comments over articles the load never lists the comments of."""
    log(f"inserting {ROWS:,} comments with generate_series")
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO comments (body, article_id, author_id, created_at, updated_at) "
            "SELECT 'A comment long enough to index, number ' || g, a.id, a.author_id, "
            "now(), now() FROM generate_series(1, %s) g "
            "JOIN articles a ON a.id = (%s::int[])[1 + g %% cardinality(%s::int[])]",
            (ROWS, article_ids, article_ids),
        )
        connection.execute("VACUUM ANALYZE comments")


def _migrations_with(folder: Path) -> Path:
    """A copy of migrations/ with one revision per form, chained after head."""
    target = folder / "migrations"
    shutil.copytree(ROOT / "migrations", target, ignore=shutil.ignore_patterns("__pycache__"))
    down = (target / "HEAD").read_text().strip()
    for name, body in REVISIONS.items():
        (target / "versions" / f"29990101_000000_bench_{name}.py").write_text(
            f'"""bench {name}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
            f"revision = 'bench_{name}'\ndown_revision = {down!r}\n"
            f"branch_labels = None\ndepends_on = None\n\n\ndef upgrade():{body}\n\n"
            "def downgrade():\n    pass\n"
        )
        down = f"bench_{name}"
    (target / "HEAD").write_text(down + "\n")
    return target


def _migrate(url: str, migrations: Path, revision: str, outcome: dict[str, Any]) -> None:
    from alembic import command

    from app import create_app
    from app.db.alembic_setup import alembic_config

    app = create_app(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "benchmark-secret-key-" + secrets.token_hex(16),
            "DATABASE_URL": url,
            "MIGRATIONS_DIRECTORY": str(migrations),
            "RESPONSE_CACHE": False,
            "RATELIMIT_ENABLED": False,  # serves no one: no warning about its counts
        }
    )
    started = time.monotonic()
    try:
        with app.app_context():
            command.upgrade(alembic_config(), revision)
    except Exception as error:  # reported beside the figures, not raised from a thread
        outcome["error"] = str(error).splitlines()[0]
    outcome["seconds"] = round(time.monotonic() - started, 1)


def _windows(
    server: Server, env: dict[str, str], until: threading.Thread | None = None
) -> dict[str, Any]:
    """wrk in ``WINDOW``-second runs: three of them, or until ``until`` has finished."""
    runs: list[dict[str, Any]] = []
    while True:
        runs.append(
            wrk(
                server.base_url + "/api/articles",
                duration=WINDOW,
                script=LUA / "read_write_mix.lua",
                env={**env, "BENCH_RUN_ID": f"{env['BENCH_RUN_ID']}-{secrets.token_hex(3)}"},
            )
        )
        if (until is None and len(runs) >= 3) or (until is not None and not until.is_alive()):
            break
    return {
        "windows": len(runs),
        "requests": sum(r["requests"] for r in runs),
        "rps": round(sum(r["requests"] for r in runs) / (len(runs) * WINDOW), 1),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "p50_ms": max(r["p50_ms"] for r in runs),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "errors": sum(r["socket_errors"] + r["timeouts"] for r in runs),
    }


def run_migration() -> None:
    rows: dict[str, dict[str, Any]] = {}
    run_id = secrets.token_hex(3)
    with (
        tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp,
        migrated_database("postgresql") as url,
    ):
        workdir = Path(tmp)
        project = Project(url)
        seeded = project.seed(**SIZES)
        tokens = project.tokens(seeded.user_ids[:8])
        project.close()
        slugs = workdir / "slugs.txt"
        slugs.write_text("\n".join(seeded.slugs[:20]) + "\n")
        _fill(url, seeded.article_ids[100:])
        migrations = _migrations_with(workdir)
        env = {
            "BENCH_TOKENS": ",".join(tokens),
            "BENCH_SLUGS": str(slugs),
            "BENCH_TAG": seeded.tag_names[3],
            "BENCH_RUN_ID": run_id,
        }
        with gunicorn(url, workdir, RESPONSE_CACHE="off") as server:
            for form in REVISIONS:
                log(f"{form}: load before the migration")
                before = _windows(server, env)
                outcome: dict[str, Any] = {}
                migration = threading.Thread(
                    target=_migrate, args=(url, migrations, f"bench_{form}", outcome)
                )
                log(f"{form}: load during the migration")
                migration.start()
                during = _windows(server, env, migration)
                migration.join()
                rows[form] = {"before": before, "during": during, **outcome}
                log(f"{form}: migration took {outcome.get('seconds')} s")
    if not rows:
        raise BenchError("nothing measured")
    print_rows(rows)
    document = {"kind": "migration", "machine": machine(), "rows": ROWS, "results": rows}
    path = write_results("migration", document)
    print(f"\nresults: {path.relative_to(ROOT)}")


def print_rows(rows: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'form':<7}{'migration s':>12}{'p99 before':>12}{'p99 during':>12}{'ratio':>7}"
        f"{'req/s before':>14}{'req/s during':>14}{'non-2xx':>9}{'errors':>8}"
    )
    print(header)
    print("-" * len(header))
    for form, row in rows.items():
        before, during = row["before"], row["during"]
        ratio = during["p99_ms"] / before["p99_ms"] if before["p99_ms"] else float("nan")
        print(
            f"{form:<7}{row.get('seconds', 0):>12}{before['p99_ms']:>12.1f}"
            f"{during['p99_ms']:>12.1f}{ratio:>6.1f}x{before['rps']:>14}{during['rps']:>14}"
            f"{during['non_2xx']:>9}{during['errors']:>8}"
        )
        if "error" in row:
            print(f"  migration failed: {row['error']}")
