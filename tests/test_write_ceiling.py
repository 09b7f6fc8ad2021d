"""The write ceiling (bench/write_ceiling.py): each write's SQL, captured and replayed by pgbench.

The rendering rules are pinned on hand-written statements; on PostgreSQL, one
write of each kind is captured from the app and its script is replayed by
pgbench with no failed transaction, each replay writing new rows.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import text

from app.data.seed import SeedResult, SeedSizes, seed
from app.extensions import db
from app.models import User
from app.tokens import create_token
from bench import write_ceiling
from bench.write_ceiling import Known, Ranges, pgbench_script, render
from tests import databases
from tests.apps import app_with_tables

KNOWN = Known(
    user_id=107,
    article_id=1333,
    article_slug="an-article-1333",
    marker="m1a2b3c4",
    created={"articles": 2001},
)
RANGES = Ranges(users=(1, 200), articles=(1, 2000))


def test_the_users_and_the_articles_ids_become_random_variables() -> None:
    rendered = render(
        "INSERT INTO favorites VALUES (%(u)s::INTEGER, %(a)s::INTEGER)",
        {"u": 107, "a": 1333},
        KNOWN,
    )

    assert rendered == "INSERT INTO favorites VALUES (:user_id::INTEGER, :article_id::INTEGER);"


def test_the_target_articles_slug_is_looked_up_from_its_random_id() -> None:
    rendered = render(
        "SELECT articles.id FROM articles WHERE articles.slug = %(slug_1)s::VARCHAR",
        {"slug_1": "an-article-1333"},
        KNOWN,
    )

    assert rendered.endswith("= (SELECT slug FROM articles WHERE id = :article_id)::VARCHAR;")


def test_an_id_the_write_created_is_read_back_with_gset_and_used_after() -> None:
    insert = render(
        "INSERT INTO articles (slug) VALUES (%(slug)s::VARCHAR) RETURNING articles.id",
        {"slug": "captured-m1a2b3c4"},
        KNOWN,
    )
    link = render(
        "INSERT INTO article_tags (article_id, tag_id) VALUES (%(a)s::INTEGER, %(t)s::INTEGER)",
        {"a": 2001, "t": 21},
        KNOWN,
    )

    assert insert.endswith("RETURNING articles.id \\gset new_articles_")
    assert "VALUES (:new_articles_id::INTEGER, 21::INTEGER);" in link


def test_text_carrying_the_marker_is_unique_per_replayed_transaction() -> None:
    rendered = render(
        "SELECT slug FROM articles WHERE slug LIKE %(p)s::VARCHAR || '%%'",
        {"p": "captured-m1a2b3c4-"},
        KNOWN,
    )

    assert rendered == (
        "SELECT slug FROM articles WHERE slug LIKE 'captured-:client_id-:unique-'::VARCHAR || '%';"
    )


def test_the_slug_locks_key_is_random_and_its_namespace_kept() -> None:
    rendered = render(
        "SELECT pg_advisory_xact_lock(%(a)s::INTEGER, %(b)s::INTEGER)",
        {"a": 1936487783, "b": 1013284111},
        KNOWN,
    )

    assert rendered == "SELECT pg_advisory_xact_lock(1936487783::INTEGER, :lock_key::INTEGER);"


def test_other_values_are_replayed_as_literals() -> None:
    rendered = render(
        "INSERT INTO t (a, b, c, d) VALUES (%(a)s, %(b)s, %(c)s, %(d)s)",
        {
            "a": "it's",
            "b": None,
            "c": 1,
            "d": datetime.datetime(2026, 12, 4, 9, 31, tzinfo=datetime.UTC),
        },
        KNOWN,
    )

    assert (
        rendered
        == "INSERT INTO t (a, b, c, d) VALUES ('it''s', NULL, 1, '2026-12-04T09:31:00+00:00');"
    )


def test_a_script_is_one_transaction_after_the_random_draws() -> None:
    script = pgbench_script(
        [
            ("BEGIN", None),
            ("SELECT pg_notify(%(c)s, %(p)s)", {"c": "x", "p": "y"}),
            ("COMMIT", None),
        ],
        KNOWN,
        RANGES,
    )

    assert script.splitlines() == [
        "\\set user_id random(1, 200)",
        "\\set article_id random(1, 2000)",
        "\\set unique random(1, 9000000000000000000)",
        "\\set lock_key random(-2147483648, 2147483647)",
        "BEGIN;",
        "SELECT pg_notify('x', 'y');",
        "COMMIT;",
    ]


def test_a_statement_run_for_several_rows_replays_once_per_row() -> None:
    script = pgbench_script(
        [
            ("BEGIN", None),
            (
                "INSERT INTO counter_deltas (tag_id, delta) VALUES (%(tag_id)s, %(delta)s)",
                [{"tag_id": 5, "delta": 1}, {"tag_id": None, "delta": 1}],
            ),
            ("COMMIT", None),
        ],
        KNOWN,
        RANGES,
    )

    assert script.splitlines()[4:] == [
        "BEGIN;",
        "INSERT INTO counter_deltas (tag_id, delta) VALUES (5, 1);",
        "INSERT INTO counter_deltas (tag_id, delta) VALUES (NULL, 1);",
        "COMMIT;",
    ]


def test_the_cpu_time_stolen_during_a_run_is_its_share_of_the_machines(monkeypatch) -> None:
    from collections import namedtuple

    from bench import harness

    times = namedtuple("times", "user system idle steal")
    readings = iter([times(100.0, 20.0, 80.0, 10.0), times(130.0, 25.0, 90.0, 15.0)])
    monkeypatch.setattr(harness.psutil, "cpu_times", lambda: next(readings))

    with harness.stolen_share() as stolen:
        pass

    assert stolen == {"steal": 0.1}  # 5 of the 50 seconds that passed across the CPUs


def test_a_notification_sent_with_its_commit_is_one_compound_query_and_one_commit() -> None:
    """The app's ``NOTIFY …; COMMIT`` (app/data/change_feed.py): one round trip, as sent."""
    script = pgbench_script(
        [
            ("BEGIN", None),
            ('NOTIFY "conduit_changes", \'{"k":["list:tag:50%"]}\'; COMMIT', {}),
            ("COMMIT", None),
        ],
        KNOWN,
        RANGES,
    )

    assert script.splitlines()[4:] == [
        "BEGIN;",
        'NOTIFY "conduit_changes", \'{"k":["list:tag:50%"]}\' \\; COMMIT;',
    ]


def test_the_replay_is_the_writes_own_transaction_not_the_fold_after_it() -> None:
    write = [("BEGIN", None), ("INSERT INTO t VALUES (1)", {}), ("COMMIT", None)]
    fold = [("BEGIN", None), ("DELETE FROM counter_deltas", {}), ("COMMIT", None)]

    assert write_ceiling.first_transaction([*write, *fold]) == write


def test_a_captured_write_is_its_sql_as_served_without_the_tokens_user(
    seeded_postgres: tuple[Flask, SeedResult],
) -> None:
    """Served, the token's user is read once and then remembered (app/data/known_users.py)."""
    app, seeded = seeded_postgres
    user_id = seeded.user_ids[-1]
    with app.app_context():
        token = create_token(db.session.get_one(User, user_id))
        db.session.remove()

    captures = write_ceiling.capture_writes(app, token, user_id, seeded.slugs[-2], "mcapture2")

    for kind, (statements, _known) in captures.items():
        assert not [s for s, _ in statements if databases.reads_a_user_by_id(s)], kind


def test_pgbench_summary_is_read() -> None:
    output = (
        "number of transactions actually processed: 723\n"
        "number of failed transactions: 0 (0.000%)\n"
        "latency average = 230.710 ms\n"
        "initial connection time = 12.345 ms\n"
        "tps = 138.701234 (without initial connection time)\n"
    )

    assert write_ceiling.parse_pgbench(output) == {
        "tps": 138.7,
        "latency_avg_ms": 230.71,
        "latency_stddev_ms": None,
        "transactions": 723,
        "failed": 0,
    }


# --- on PostgreSQL: captured from the app, replayed by pgbench -----------------


@pytest.fixture
def seeded_postgres(postgres_url: str) -> Iterator[tuple[Flask, SeedResult]]:
    with app_with_tables(postgres_url) as app:
        with app.app_context():
            seeded = seed(
                SeedSizes(
                    users=10,
                    articles=20,
                    tags=5,
                    tags_per_article=2,
                    comments_per_article=1,
                    follows_per_user=2,
                    favorites_per_user=2,
                ),
                random_seed=7,
            )
        yield app, seeded


@pytest.fixture
def pgbench() -> str:
    found = write_ceiling.find_pgbench()
    if found is None:
        reason = "pgbench is not installed (Debian: postgresql)"
        if databases.IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def test_a_user_id_a_tag_id_could_be_taken_for_is_refused(
    seeded_postgres: tuple[Flask, SeedResult],
) -> None:
    app, seeded = seeded_postgres
    with app.app_context():
        token = create_token(db.session.get_one(User, seeded.user_ids[0]))
        db.session.remove()

    with pytest.raises(ValueError, match="exceed every tag id"):
        write_ceiling.capture_writes(app, token, seeded.user_ids[0], seeded.slugs[-2], "m2")


def _rows(app: Flask, table: str) -> int:
    with app.app_context():
        count = db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
        db.session.remove()
    return int(count)


@pytest.mark.parametrize(
    ("kind", "table"), [("create", "articles"), ("favorite", "favorites"), ("comment", "comments")]
)
def test_each_writes_captured_sql_replays_under_pgbench_without_failures(
    seeded_postgres: tuple[Flask, SeedResult],
    pgbench: str,
    postgres_url: str,
    tmp_path,
    kind,
    table,
) -> None:
    app, seeded = seeded_postgres
    user_id = seeded.user_ids[-1]  # ids above every tag's, and apart (capture_writes)
    with app.app_context():
        token = create_token(db.session.get_one(User, user_id))
        db.session.remove()
    captures = write_ceiling.capture_writes(app, token, user_id, seeded.slugs[-2], "mcapture1")
    statements, known = captures[kind]
    ranges = Ranges(
        (min(seeded.user_ids), max(seeded.user_ids)),
        (min(seeded.article_ids), max(seeded.article_ids)),
    )
    script = tmp_path / f"{kind}.sql"
    script.write_text(pgbench_script(statements, known, ranges))
    before = _rows(app, table)

    result = write_ceiling.run_pgbench(
        pgbench, postgres_url, script, clients=2, threads=1, duration=1
    )

    assert result["failed"] == 0
    assert result["transactions"] > 0
    if kind != "favorite":  # a favorite drawn twice is one row (ON CONFLICT DO NOTHING)
        assert _rows(app, table) == before + result["transactions"]
    else:
        assert _rows(app, table) > before
