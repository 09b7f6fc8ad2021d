"""Checking a pooled connection only when it may have gone stale.

``pool_pre_ping`` pings on *every* checkout: one more round trip per request,
most of them on a connection checked in a few milliseconds earlier. Here a
connection is pinged only when it sat in the pool for ``PING_AFTER_IDLE_SECONDS``
or more (a database restart or failover, a firewall dropping idle
connections: every pooled connection is older than that by the time the
database is back). A failed ping raises ``DisconnectionError``, and the pool
replaces the connection and retries, exactly as its own pre-ping does.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event, exc

PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN = "checked_in_at"


def ping_when_idle(engine: Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None or time.monotonic() - checked_in < idle_seconds:
            return  # new, or back in the pool a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError("the idle connection is gone") from error
