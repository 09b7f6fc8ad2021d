"""Reads without a transaction: safe requests run their statements in autocommit.

A GET (or HEAD, OPTIONS) never writes, so wrapping its statements in a
transaction buys nothing: under PostgreSQL's READ COMMITTED every statement
takes its own snapshot either way. The transaction still costs two round trips
per request (``BEGIN`` before the first statement and ``ROLLBACK`` when the
session closes), a third of the article list's database time. On a safe
request the session's connection is therefore taken in ``AUTOCOMMIT``; the
pool restores the default isolation level (client-side, no round trip) when
the connection comes back. Requests that write are untouched.

PostgreSQL only: on SQLite, leaving AUTOCOMMIT makes pysqlite's dialect turn
the driver's own transaction handling back on (see ``app.data.database``), and a
local ``BEGIN`` costs no round trip there anyway.
"""

from __future__ import annotations

from flask import has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from app.data.database import SAFE_METHODS


@event.listens_for(Session, "do_orm_execute")
def _autocommit_safe_requests(state: ORMExecuteState) -> None:
    session = state.session
    if (
        has_request_context()
        and request.method in SAFE_METHODS
        and not session.in_transaction()
        and session.get_bind().dialect.name == "postgresql"
    ):
        session.connection(
            bind_arguments=state.bind_arguments,
            execution_options={"isolation_level": "AUTOCOMMIT"},
        )
