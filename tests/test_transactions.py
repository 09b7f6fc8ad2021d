"""One request, one transaction: savepoints and rollbacks behave alike on both databases."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.models import Tag
from tests.serving import ServedApp, storm

LIMIT = 4


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
