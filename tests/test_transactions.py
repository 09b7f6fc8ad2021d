"""One request, one transaction: savepoints and rollbacks behave alike on both databases.

Readers see whole writes, and slow work does not hold SQLite's write lock.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.models import Tag
from app.users import service as users_service
from tests import databases
from tests.factories import auth, register
from tests.serving import ServedApp, storm

LIMIT = 4
PW = "correct-horse-battery"


def count_tags(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Tag)) or 0


def test_a_released_savepoint_is_undone_by_the_outer_rollback(app: Flask) -> None:
    with app.app_context():
        with db.session.begin_nested():
            db.session.add(Tag(name="inside-a-savepoint"))
        db.session.rollback()

    assert count_tags(app) == 0


def test_a_rolled_back_savepoint_keeps_the_work_before_it(app: Flask) -> None:
    with app.app_context():
        db.session.add(Tag(name="before"))
        db.session.flush()
        savepoint = db.session.begin_nested()
        db.session.add(Tag(name="inside"))
        db.session.flush()
        savepoint.rollback()
        db.session.commit()

    assert count_tags(app) == 1


def test_a_reader_paging_while_writers_create_tagged_articles_sees_whole_articles(
    served_app: ServedApp,
) -> None:
    """Each page is one snapshot: an article comes with all its tags, and the page
    holds exactly the rows its ``articlesCount`` leaves room for at its offset."""
    writers = [served_app.register(f"writer{n}") for n in range(3)]
    tags = ["alpha", "beta", "gamma"]
    writing = threading.Event()
    writing.set()

    def write(user: dict[str, Any]) -> int:
        client = served_app.client(user)
        for n in range(8):
            article = {"title": f"{user['username']} {n}", "description": "d", "body": "b"}
            response = client.post("/api/articles", json={"article": {**article, "tagList": tags}})
            assert response.status_code == 201, response.text
        return 0

    def read(query: str) -> list[tuple[int, int, dict[str, Any]]]:
        client = served_app.client()
        pages = []
        offset = 0
        while writing.is_set() or offset:
            page = client.get(f"/api/articles?{query}limit={LIMIT}&offset={offset}").json()
            pages.append((offset, LIMIT, page))
            offset = 0 if offset >= page["articlesCount"] else offset + 1
        return pages

    def all_writers() -> list[int]:
        try:
            return storm([lambda user=user: write(user) for user in writers])
        finally:
            writing.clear()

    _, *readers = storm([all_writers, lambda: read(""), lambda: read("tag=beta&")])
    pages = [page for reader in readers for page in reader]

    assert len(pages) > 10
    for offset, limit, page in pages:
        assert all(article["tagList"] == tags for article in page["articles"]), page
        expected_rows = max(0, min(limit, page["articlesCount"] - offset))
        assert len(page["articles"]) == expected_rows, (offset, page)


def write_lock_is_free(app: Flask) -> bool:
    """Could another SQLite connection start writing right now, without waiting?"""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


@pytest.mark.parametrize("database_url", [databases.SQLITE], indirect=True)
@pytest.mark.parametrize(
    ("step", "method", "path", "body"),
    [
        ("hash_password", "POST", "/api/users", {"user": {"username": "new", "password": PW}}),
        ("verify_password", "POST", "/api/users/login", {"user": {"password": PW}}),
        ("hash_password", "PUT", "/api/user", {"user": {"password": "another-password"}}),
    ],
    ids=["register", "login", "new password"],
)
def test_password_hashing_runs_without_holding_the_sqlite_write_lock(
    app: Flask, client, monkeypatch: pytest.MonkeyPatch, step, method, path, body
) -> None:
    """argon2 takes about half a second: every other write would queue behind it."""
    user = register(client, username="jake", email="jake@example.com", password=PW)
    body["user"].setdefault("email", "new@example.com" if path == "/api/users" else user["email"])
    original = getattr(users_service, step)
    lock_free: list[bool] = []

    def observed(*args: Any) -> Any:
        lock_free.append(write_lock_is_free(app))
        return original(*args)

    monkeypatch.setattr(users_service, step, observed)

    response = client.open(path, method=method, json=body, headers=auth(user))

    assert response.status_code in (200, 201), response.get_json()
    assert lock_free == [True]
