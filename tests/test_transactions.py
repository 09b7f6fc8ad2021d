"""One request, one transaction: savepoints and rollbacks behave alike on both databases."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.models import Tag


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
