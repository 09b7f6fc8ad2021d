"""What a request that failed in the database answers: the app's handler for SQLAlchemy errors.

The request's transaction is rolled back first, so a failed request writes
nothing; the answer is ``app.data.unit_of_work.translate``'s (404, 409, 422 or
503 in the error envelope), or a logged 500 when the error is a bug. A
missing column or table also makes the process suspect schema drift
(app/data/schema_drift.py), and ``/readyz`` answers 503 until it is gone.
"""

from __future__ import annotations

import logging

from flask import Flask, Response
from sqlalchemy.exc import DataError, DBAPIError, SQLAlchemyError
from werkzeug.exceptions import InternalServerError

from app.data import schema_drift
from app.data.unit_of_work import close_session, discard, translate
from app.errors import render_http_exception

log = logging.getLogger(__name__)


def database_error(error: SQLAlchemyError) -> Response:
    """The app's handler for every SQLAlchemy error a request raises."""
    discard()
    answer = translate(error)
    if answer is None:
        log.exception("Unhandled database error", exc_info=error)
        return render_http_exception(InternalServerError())
    drift = schema_drift.missing_object(error) if isinstance(error, DBAPIError) else None
    suspicion = schema_drift.suspicion()
    if drift and suspicion is not None:
        suspicion.noticed(drift)  # logs the first one
    elif answer.code == 503:
        log.warning("Database unavailable: %s", _summary(error))
    elif isinstance(error, DataError):
        log.warning("Input the database refused: %s", _summary(error))
    else:
        log.info("Concurrent change: %s answered %s", error.__class__.__name__, answer.code)
    return render_http_exception(answer)


def init_app(app: Flask) -> None:
    """Answer database errors through ``app.data.unit_of_work.translate``; close sessions safely.

    Registered after Flask-SQLAlchemy, so this teardown runs before its
    ``session.remove()``, which then finds nothing left to roll back.
    """
    app.register_error_handler(SQLAlchemyError, database_error)
    app.teardown_appcontext(close_session)
    schema_drift.init_app(app)


def _summary(error: SQLAlchemyError) -> str:
    orig = getattr(error, "orig", None)
    detail = str(orig if orig is not None else error).strip().splitlines()
    return f"{error.__class__.__name__}: {detail[0] if detail else ''}"
