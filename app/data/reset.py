"""``flask drop-tables``: empty a development database (``make db-reset`` then migrates, seeds).

Drops every table the database has (the application's, Alembic's version
table and the migration audit), so the next ``flask db run`` starts from
nothing. Refuses with ``APP_ENV=production``.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import MetaData
from sqlalchemy.exc import SQLAlchemyError

from app.data.database import connection_problem
from app.extensions import db


@click.command("drop-tables")
@with_appcontext
def drop_tables_command() -> None:
    """Drop every table in the database (development and testing only)."""
    if current_app.config["APP_ENV"] == "production":
        click.echo(
            "Error: refusing to drop the tables of a production database (APP_ENV=production)",
            err=True,
        )
        raise click.exceptions.Exit(1)
    engine = db.engine
    existing = MetaData()
    try:
        existing.reflect(bind=engine)
        existing.drop_all(bind=engine)
    except SQLAlchemyError as error:
        problem = connection_problem(error, engine.url) or str(error).strip()
        click.echo(f"Error: {problem}", err=True)
        raise click.exceptions.Exit(1) from None
    db.session.remove()
    names = ", ".join(sorted(existing.tables)) or "none"
    click.echo(f"Dropped every table of {engine.url.render_as_string(hide_password=True)}: {names}")
