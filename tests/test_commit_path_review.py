"""Review of the PostgreSQL commit path (NOTIFY …; COMMIT) and of writes outside a session.

Each test states a product promise: every committed write on the app's own
connections is announced to the other instances (no stale cached answer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.data import change_feed
from app.data.change_feed import _may_write
from app.extensions import db
from tests import databases
from tests.apps import apps_on
from tests.factories import auth, create_article, register, signed_in_and_remembered
from tests.listening import wait_for, wait_until_listening
from tests.test_database_unavailable import (  # noqa: F401 (fixtures)
    NEW_ARTICLE,
    count,
    kill_connection,
    pg_app,
    pg_client,
)


@pytest.fixture
def make(database_url: str) -> Iterator[Callable[..., Flask]]:
    with apps_on(database_url) as made:
        yield made


# Statements that change rows, yet were not recognised as writes: run outside a
# session on the app's connections (whose triggers are silent), nobody announced
# them. A new table (SELECT … INTO) or a sequence (setval) moves no answer.
UNSEEN_WRITES = [
    "WITH gone AS (DELETE\nFROM users WHERE id = 1 RETURNING id) SELECT count(*) FROM gone",
    "WITH changed AS (UPDATE\n  users SET bio = 'x' RETURNING id) SELECT * FROM changed",
    "WITH added AS (INSERT\tINTO tags (name) VALUES ('x') RETURNING id) SELECT * FROM added",
    "/* fix jake */ UPDATE users SET session_key = NULL WHERE id = 1",
    "-- fix jake\nUPDATE users SET session_key = NULL WHERE id = 1",
    "(UPDATE users SET bio = 'x')",  # not valid SQL; left out below
    "EXPLAIN ANALYZE UPDATE users SET bio = 'x'",
    "CALL some_procedure()",
    "DO $$ BEGIN UPDATE users SET bio = 'x'; END $$",
    "REFRESH MATERIALIZED VIEW some_view",
    "GRANT SELECT ON users TO someone",
]


@pytest.mark.parametrize(
    "statement", [s for s in UNSEEN_WRITES if not s.startswith("(")], ids=lambda s: s[:30]
)
def test_a_statement_that_writes_is_seen_as_one(statement):
    assert _may_write(statement)


@pytest.mark.parametrize("database_url", [databases.POSTGRESQL], indirect=True)
@pytest.mark.parametrize(
    "statement",
    [
        "WITH revoked AS (\n  UPDATE\n    users SET session_key = NULL WHERE username = :name\n"
        "  RETURNING id\n) SELECT count(*) FROM revoked",
        "/* support ticket 42 */ UPDATE users SET session_key = NULL WHERE username = :name",
    ],
    ids=["cte-with-newline", "leading-comment"],
)
def test_a_key_revoked_outside_a_session_is_announced_whatever_its_layout(make, statement):
    """Like test_known_users_attack's revocation through the app's engine, formatted otherwise."""
    app = make()
    client, jake = signed_in_and_remembered(app)

    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text(statement), {"name": jake["username"]})

    wait_for(lambda: client.get("/api/user", headers=auth(jake)).status_code == 401, 3.0)


# --- the session's commit path, PostgreSQL -----------------------------------


def test_a_connection_killed_just_after_notify_and_commit_answers_as_it_committed(
    pg_app,  # noqa: F811
    pg_client,  # noqa: F811
    kill_connection,  # noqa: F811 (fixtures imported above)
) -> None:
    """The COMMIT ran inside ``before_commit``: the answer must match what is stored."""
    author = register(pg_client)
    kill_connection(after="NOTIFY ")

    response = pg_client.post("/api/articles", json=NEW_ARTICLE, headers=auth(author))

    stored = count(pg_app, "articles")
    assert (response.status_code, stored) in {(201, 1), (503, 0)}, response.get_json()
    assert pg_client.get("/api/articles").get_json()["articlesCount"] == stored
    assert pg_client.get("/api/user", headers=auth(author)).status_code == 200


def a_cached_profile(make: Callable[..., Flask]) -> tuple[Flask, Any, dict[str, Any], str]:
    """A writer app, and a listening reader's client with a new user's profile cached.

    Returns ``(writer, client, user, profile path)``.
    """
    writer, reader = make(), make()
    client = reader.test_client()
    jake = register(client)
    wait_until_listening(reader)
    path = f"/api/profiles/{jake['username']}"
    client.get(path)
    client.get(path)  # cached now
    return writer, client, jake, path


@pytest.mark.parametrize("database_url", [databases.POSTGRESQL], indirect=True)
def test_a_savepoint_rolled_back_then_the_outer_commit_is_announced_once(make) -> None:
    writer, client, jake, path = a_cached_profile(make)
    assert client.get(path).get_json()["profile"]["bio"] in (None, "")

    with writer.app_context():
        db.session.execute(
            text("UPDATE users SET bio = 'kept' WHERE username = :n"), {"n": jake["username"]}
        )
        with pytest.raises(RuntimeError), db.session.begin_nested():
            db.session.execute(
                text("UPDATE users SET bio = 'undone' WHERE username = :n"),
                {"n": jake["username"]},
            )
            raise RuntimeError
        db.session.commit()
        db.session.remove()

    wait_for(lambda: client.get(path).get_json()["profile"]["bio"] == "kept", 3.0)


@pytest.mark.parametrize("database_url", [databases.POSTGRESQL], indirect=True)
@pytest.mark.parametrize("bio", ['it\'s "quoted" 100% ünïcødé ☃ \\ $$ ; COMMIT; --', "x" * 10_000])
def test_an_odd_or_large_write_commits_once_and_is_announced(make, bio) -> None:
    writer, client, jake, path = a_cached_profile(make)

    response = writer.test_client().put(
        "/api/user", json={"user": {"bio": bio}}, headers=auth(jake)
    )

    assert response.status_code == 200, response.get_json()
    wait_for(lambda: client.get(path).get_json()["profile"]["bio"] == bio, 3.0)


# --- false positives: reads and the app's own writes announce nothing extra ---


@pytest.mark.parametrize("database_url", [databases.POSTGRESQL], indirect=True)
def test_reads_and_session_writes_send_no_announcement_of_every_table(make) -> None:
    app = make()
    client = app.test_client()
    jake = register(client)
    ann = register(client)
    slug = create_article(client, jake, tagList=["dragons"])["slug"]
    wait_until_listening(app)
    with app.app_context():
        engine = db.engine
    sent: list[str] = []

    def listener(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("NOTIFY"):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        for path in (
            "/api/articles",
            "/api/articles?tag=dragons",
            f"/api/articles?author={jake['username']}",
            f"/api/articles?favorited={ann['username']}",
            "/api/articles/feed",
            f"/api/articles/{slug}",
            f"/api/articles/{slug}/comments",
            f"/api/profiles/{jake['username']}",
            "/api/tags",
            "/api/user",
        ):
            assert client.get(path, headers=auth(ann)).status_code == 200, path
        assert sent == []  # a read commits nothing, so announces nothing
        assert client.post(f"/api/profiles/{jake['username']}/follow", headers=auth(ann))
        assert client.post(f"/api/articles/{slug}/favorite", headers=auth(ann)).status_code == 200
        client.put("/api/user", json={"user": {"bio": "hi"}}, headers=auth(ann))
        create_article(client, ann, tagList=["dragons", "new"])
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert [statement for statement in sent if "'*'" in statement] == []
    assert 4 <= len(sent) <= 5  # one per write (and one fold of the running totals)


@pytest.mark.parametrize("database_url", [databases.POSTGRESQL], indirect=True)
def test_an_error_raised_by_the_commit_itself_leaves_the_session_usable(make) -> None:
    """A deferred constraint fails at ``COMMIT``, now inside ``before_commit``."""
    app = make()
    with app.app_context():
        with db.engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE review_deferred (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED)"
            )
        try:
            db.session.execute(text("INSERT INTO review_deferred VALUES (1), (1)"))
            with pytest.raises(IntegrityError):
                db.session.commit()
            db.session.rollback()
            assert db.session.execute(text("SELECT count(*) FROM review_deferred")).scalar() == 0
            db.session.execute(text("INSERT INTO review_deferred VALUES (2)"))
            db.session.commit()
            assert db.session.execute(text("SELECT count(*) FROM review_deferred")).scalar() == 1
            db.session.commit()
        finally:
            db.session.remove()
            with db.engine.begin() as connection:
                connection.exec_driver_sql("DROP TABLE review_deferred")


ODD_TAGS = ["it's", 'say "hi"', "100%", "%(x)s", "back\\slash", "ünïcødé ☃", "{}", "a;COMMIT"]


@pytest.mark.parametrize("database_url", [databases.POSTGRESQL], indirect=True)
@pytest.mark.parametrize(
    "tags",
    [ODD_TAGS, [f"{'☃' * 90}{n:02d}" for n in range(50)]],
    ids=["odd-characters", "oversized-payload"],
)
def test_tag_names_inlined_in_the_notification_commit_once_and_are_announced(make, tags) -> None:
    writer, reader = make(), make()
    jake = register(writer.test_client())
    client = reader.test_client()
    wait_until_listening(reader)
    tag = tags[0]
    client.get("/api/articles", query_string={"tag": tag})
    assert client.get("/api/articles", query_string={"tag": tag}).get_json()["articlesCount"] == 0

    response = writer.test_client().post(
        "/api/articles",
        json={"article": {"title": "T", "description": "d", "body": "b", "tagList": tags}},
        headers=auth(jake),
    )

    assert response.status_code == 201, response.get_json()
    assert count(writer, "articles") == 1
    wait_for(
        lambda: (
            client.get("/api/articles", query_string={"tag": tag}).get_json()["articlesCount"] == 1
        ),
        3.0,
    )


@pytest.mark.parametrize("database_url", databases.PARAMS, indirect=True)
def test_a_session_joined_to_an_outer_transaction_does_not_commit_it(make) -> None:
    """SQLAlchemy's documented pattern (a tool, a test): ``Session(bind=connection)``.

    The session's commit leaves the outer transaction to its owner
    (``join_transaction_mode``); a failure after it rolls everything back.
    """
    app = make()
    client = app.test_client()
    jake = register(client)
    with app.app_context():
        engine = db.engine
    with pytest.raises(RuntimeError), engine.connect() as connection:
        connection.begin()
        with Session(bind=connection) as session:
            session.execute(
                text("UPDATE users SET bio = 'half' WHERE username = :n"), {"n": jake["username"]}
            )
            session.commit()
        raise RuntimeError

    bio = client.get(f"/api/profiles/{jake['username']}").get_json()["profile"]["bio"]
    assert bio != "half"


@pytest.mark.parametrize("database_url", [databases.POSTGRESQL], indirect=True)
def test_a_commit_with_a_savepoint_still_open_commits_all_once_and_announces(make) -> None:
    writer, client, jake, path = a_cached_profile(make)
    statements: list[str] = []
    with writer.app_context():
        engine = db.engine

        def note(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", note)
        db.session.execute(
            text("UPDATE users SET image = 'https://x/i.png' WHERE username = :n"),
            {"n": jake["username"]},
        )
        db.session.begin_nested()
        db.session.execute(
            text("UPDATE users SET bio = 'inner' WHERE username = :n"), {"n": jake["username"]}
        )
        db.session.commit()  # the savepoint, then the transaction
        db.session.remove()
        event.remove(engine, "before_cursor_execute", note)

    assert sum("COMMIT" in s for s in statements) == 1, statements
    wait_for(lambda: client.get(path).get_json()["profile"]["bio"] == "inner", 3.0)
    assert client.get(path).get_json()["profile"]["image"] == "https://x/i.png"


def test_a_prebuilt_write_is_noted_with_every_table_it_writes_its_with_clause_included() -> None:
    """``execute_write`` reads the tables off the statement: the one-statement creation's
    ``WITH`` clause inserts into three; a delete is no insert (it may cascade)."""
    from sqlalchemy import select

    from app.articles import service as articles

    assert change_feed._writes(articles._tagged_article_insert()) == (
        ("article_tags", "articles", "counter_deltas"),
        True,
    )
    assert change_feed._writes(articles._FAVORITE_DELETE) == (("favorites",), False)
    with pytest.raises(TypeError):
        change_feed._writes(select(1))
