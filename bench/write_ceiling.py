"""The write ceiling: the SQL of each write, replayed by pgbench at the same concurrency.

For each write kind of the write mix (create an article, favorite one,
comment on one) the app runs one request in-process while a SQLAlchemy
``before_cursor_execute`` listener (and the engine's ``begin``/``commit``
events) records every statement with its parameters. :func:`pgbench_script`
turns that into a pgbench custom script: the same statements, in the same
transaction, with the values that must differ from one replayed write to the
next made pgbench variables:

* the signed-in user's id: ``:user_id``, ``random()`` over the seeded users;
* the target article's id: ``:article_id``, ``random()`` over the seeded
  articles, and its slug: ``(SELECT slug FROM articles WHERE id = :article_id)``;
* an id the write itself created (``INSERT … RETURNING <table>.id``): that
  statement ends in ``\\gset new_<table>_`` and later ones read
  ``:new_<table>_id``;
* text carrying the capture's marker (the new article's title and slug):
  the marker becomes ``:client_id-:unique``, unique per transaction;
* the slug's advisory lock key (derived from the new slug): ``:lock_key``.

Everything else (tag names, counters' increments, the ``NOTIFY`` payload,
sent with the ``COMMIT`` in one compound query as the app sends it,
timestamps) is replayed as captured. The replay is the write's own
transaction (:func:`first_transaction`): the running totals' fold that may
follow it is paced, one per ``COUNTERS_FOLD_INTERVAL``, not one per write.
pgbench runs it against the same seeded database with ``-c`` clients for
``-T`` seconds, in its simple query protocol (a timestamp literal's ``:25``
is not a variable there): its transactions/s is what PostgreSQL on this
machine can do for that write with no Python in the way, the ceiling a
write's requests/s is compared to.
"""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WRITE_KINDS = ("create", "favorite", "comment")

# (statement, parameters); a transaction's edges are ("BEGIN", None) and ("COMMIT", None).
Statement = tuple[str, Any]

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
_ENDS_WITH_COMMIT = re.compile(r";\s*COMMIT\s*$", re.IGNORECASE)
_CREATED = re.compile(r"^INSERT INTO (\w+) .* RETURNING \1\.id$", re.DOTALL)


@dataclass(frozen=True)
class Known:
    """The values in a captured write that the replay varies (see the module docstring)."""

    user_id: int
    article_id: int
    article_slug: str
    marker: str
    created: Mapping[str, int] = field(default_factory=dict)  # table -> id the write created


@dataclass(frozen=True)
class Ranges:
    """The seeded id ranges the replay draws from (inclusive)."""

    users: tuple[int, int]
    articles: tuple[int, int]


@contextmanager
def capturing(engine: Any) -> Iterator[list[Statement]]:
    """Every statement ``engine`` runs inside the block in this thread, with transaction edges.

    Another thread's (a paced fold of the running totals) is not this write's.
    """
    from sqlalchemy import event

    captured: list[Statement] = []
    owner = threading.get_ident()

    def executed(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if threading.get_ident() == owner:
            captured.append((statement, parameters))

    def edge(name: str) -> Any:
        def note(*_args: Any) -> None:
            if threading.get_ident() == owner:
                captured.append((name, None))

        return note

    listeners = [
        ("before_cursor_execute", executed),
        ("begin", edge("BEGIN")),
        ("commit", edge("COMMIT")),
        ("rollback", edge("ROLLBACK")),
    ]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield captured
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


def first_transaction(statements: Sequence[Statement]) -> list[Statement]:
    """``statements`` up to the first transaction's ``COMMIT``: the write itself.

    What follows its commit in the same request is a chore the write asked
    for, run inline when due (the running totals' fold, at most once per
    ``COUNTERS_FOLD_INTERVAL``): replaying it with every write would charge
    each the cost of all.
    """
    for index, (statement, parameters) in enumerate(statements):
        if parameters is None and statement == "COMMIT":
            return list(statements[: index + 1])
    return list(statements)


def literal(value: Any) -> str:
    """``value`` as a PostgreSQL literal (standard_conforming_strings: only ``'`` is doubled)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return "'" + value.isoformat() + "'"
    return "'" + str(value).replace("'", "''") + "'"


def render(statement: str, parameters: Any, known: Known) -> str:
    """One captured statement as a line of a pgbench script (see the module docstring)."""
    one_line = " ".join(statement.split())
    created_by_value = {value: table for table, value in known.created.items()}
    advisory = "pg_advisory_xact_lock(" in one_line
    names = list(parameters) if isinstance(parameters, Mapping) else []

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        value = parameters[name]
        if isinstance(value, int) and not isinstance(value, bool):
            if advisory and name != names[0]:
                return ":lock_key"
            if value in created_by_value:
                return f":new_{created_by_value[value]}_id"
            if value == known.user_id:
                return ":user_id"
            if value == known.article_id:
                return ":article_id"
        if value == known.article_slug:
            return "(SELECT slug FROM articles WHERE id = :article_id)"
        if isinstance(value, str) and known.marker in value:
            return literal(value).replace(known.marker, ":client_id-:unique")
        return literal(value)

    rendered = _PLACEHOLDER.sub(value_of, one_line)
    created = _CREATED.match(one_line)
    if created and created.group(1) in known.created:
        return f"{rendered} \\gset new_{created.group(1)}_"
    return rendered + ";"


def pgbench_script(statements: Sequence[Statement], known: Known, ranges: Ranges) -> str:
    """A pgbench custom script replaying ``statements`` as one transaction each time."""
    lines = [
        f"\\set user_id random({ranges.users[0]}, {ranges.users[1]})",
        f"\\set article_id random({ranges.articles[0]}, {ranges.articles[1]})",
        "\\set unique random(1, 9000000000000000000)",
        "\\set lock_key random(-2147483648, 2147483647)",
    ]
    committed = False  # the last statement ended its transaction itself (``…; COMMIT``)
    for statement, parameters in statements:
        if parameters is None and statement in ("BEGIN", "COMMIT", "ROLLBACK"):
            if not (committed and statement == "COMMIT"):
                lines.append(statement + ";")
            committed = False
        elif not parameters and _ENDS_WITH_COMMIT.search(statement):
            # The app's ``NOTIFY …; COMMIT``: one simple query, so one compound command here.
            one_line = _ENDS_WITH_COMMIT.sub("", " ".join(statement.split()))
            lines.append(one_line + " \\; COMMIT;")
            committed = True
        elif isinstance(parameters, list | tuple):  # executemany: the driver runs each row
            lines.extend(render(statement, row, known) for row in parameters)
            committed = False
        else:
            lines.append(render(statement, parameters, known))
            committed = False
    return "\n".join(lines) + "\n"


def capture_writes(
    app: Any, token: str, user_id: int, slug: str, marker: str
) -> dict[str, tuple[list[Statement], Known]]:
    """One write of each kind, in-process as ``token``'s user on the article ``slug``.

    Returns each kind's statements and the values its replay varies. Each
    write must succeed (2xx); the ids it created are the newest in their tables.
    Values are recognised by equality, so the user's and the article's ids must
    differ from each other and exceed every tag's id (the other ids a write
    carries): ``ValueError`` otherwise.
    """
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        engine = db.engine
        article_id = db.session.execute(
            text("SELECT id FROM articles WHERE slug = :slug"), {"slug": slug}
        ).scalar_one()
        db.session.remove()
    auth = {"Authorization": f"Token {token}"}
    _as_served(app, auth)
    requests = {
        "create": (
            "/api/articles",
            {
                "article": {
                    "title": f"Captured {marker}",
                    "description": "Written by the write ceiling",
                    "body": "A body long enough to look like one.",
                    "tagList": ["benchmark", "wrk"],
                }
            },
        ),
        "favorite": (f"/api/articles/{slug}/favorite", None),
        "comment": (
            f"/api/articles/{slug}/comments",
            {"comment": {"body": "A comment from the benchmark."}},
        ),
    }
    captures: dict[str, tuple[list[Statement], Known]] = {}
    for kind in WRITE_KINDS:
        path, body = requests[kind]
        with capturing(engine) as statements:
            response = app.test_client().post(path, headers=auth, json=body)
        if response.status_code >= 300:
            raise RuntimeError(f"{kind}: {path} answered {response.status_code}")
        created: dict[str, int] = {}
        with app.app_context():
            for statement, _ in statements:
                match = _CREATED.match(" ".join(statement.split()))
                if match:
                    table = match.group(1)
                    created[table] = db.session.execute(
                        text(f"SELECT max(id) FROM {table}")  # noqa: S608 (a captured table name)
                    ).scalar_one()
            db.session.remove()
        with app.app_context():
            top_tag = db.session.execute(text("SELECT max(id) FROM tags")).scalar_one() or 0
            db.session.remove()
        varied = [user_id, article_id, *created.values()]
        if len(set(varied)) < len(varied) or min(user_id, article_id) <= top_tag:
            raise ValueError(
                f"{kind}: user {user_id} and article {article_id} must differ from each other,"
                f" from the ids the write created ({created}) and exceed every tag id ({top_tag})"
            )
        captures[kind] = (
            first_transaction(statements),
            Known(user_id, article_id, slug, marker, created),
        )
    return captures


def _as_served(app: Any, auth: Mapping[str, str]) -> None:
    """A served write's SQL: the change feed listening, the token's user already known.

    A worker serving the write mix has read each token's user once and then
    remembers it (app/data/known_users.py) while the feed vouches; an app
    without a feed (no response cache) reads it with every write.
    """
    from app.data import change_feed

    deadline = time.monotonic() + 10
    with app.app_context():
        feed = change_feed.current_feed()
        while feed is not None and feed.current() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    if app.test_client().get("/api/user", headers=auth).status_code != 200:
        raise RuntimeError("the capture's token is refused")


# --- pgbench -----------------------------------------------------------------


def find_pgbench() -> str | None:
    """pgbench on PATH (Debian's wrapper), else the newest under /usr/lib/postgresql."""
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pgbench"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    return str(candidates[-1]) if candidates else None


def libpq_url(database_url: str) -> str:
    """A SQLAlchemy ``postgresql+driver://`` URL as libpq takes it."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", database_url)


def parse_pgbench(output: str) -> dict[str, Any]:
    """transactions/s, mean latency (ms), transactions and failures from pgbench's summary."""

    def number(pattern: str) -> float | None:
        found = re.search(pattern, output, re.MULTILINE)
        return float(found.group(1)) if found else None

    tps = number(r"^tps = ([\d.]+)")
    if tps is None:
        raise ValueError(f"no tps in pgbench's output: {output[-1000:]}")
    return {
        "tps": round(tps, 1),
        "latency_avg_ms": number(r"^latency average = ([\d.]+) ms"),
        "latency_stddev_ms": number(r"^latency stddev = ([\d.]+) ms"),
        "transactions": int(number(r"^number of transactions actually processed: (\d+)") or 0),
        "failed": int(number(r"^number of failed transactions: (\d+)") or 0),
    }


def run_pgbench(
    pgbench: str,
    database_url: str,
    script: Path,
    *,
    clients: int,
    threads: int,
    duration: int,
) -> dict[str, Any]:
    """``pgbench -n -f SCRIPT -c CLIENTS -j THREADS -T DURATION`` (simple protocol)."""
    command = [
        pgbench,
        "-n",  # no vacuum of pgbench's own tables (there are none)
        "-M",
        "simple",
        "-f",
        str(script),
        "-c",
        str(clients),
        "-j",
        str(threads),
        "-T",
        str(duration),
        libpq_url(database_url),
    ]
    from bench.harness import stolen_share

    with stolen_share() as stolen:
        completed = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    if completed.returncode != 0:
        raise RuntimeError(f"pgbench failed: {completed.stdout[-1000:]} {completed.stderr[-1000:]}")
    return {**parse_pgbench(completed.stdout), **stolen}
