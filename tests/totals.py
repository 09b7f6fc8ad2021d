"""Running totals put in the states a write cannot leave them in (app/data/counters.py)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import text

from app.extensions import db


def pend_every_total(app: Flask) -> None:
    """Zero the stored totals and record them as pending deltas instead (a fold not yet run)."""
    with app.app_context():
        for statement in (
            "INSERT INTO counter_deltas (tag_id, delta) SELECT id, article_count FROM tags",
            "INSERT INTO counter_deltas (tag_id, delta) SELECT NULL, value FROM counters",
            "UPDATE tags SET article_count = 0",
            "UPDATE counters SET value = 0",
        ):
            db.session.execute(text(statement))
        db.session.commit()


def pend_articles_delta(app: Flask, delta: int) -> None:
    """A pending delta on the articles total that no row explains (drift)."""
    with app.app_context():
        db.session.execute(
            text("INSERT INTO counter_deltas (tag_id, delta) VALUES (NULL, :delta)"),
            {"delta": delta},
        )
        db.session.commit()
