"""After every migration run: every table notifies the response cache, and the run is announced.

Revision e7f98158c3b0 installs, on PostgreSQL, a statement-level trigger per
table that sends the table's name on the change feed's channel
(app/data/change_feed.py), and ``conduit_attach_change_triggers()``, which
gives the trigger to tables that lack it. :func:`after_run`, called by
migrations/env.py at the end of every online run, calls that function (so
tables created by later revisions are heard too) and sends ``*``: whatever
the run did, DDL included, every replica's cache starts afresh once it
commits. On SQLite there is nothing to attach and nothing to send
(``PRAGMA data_version`` sees the run's commit).
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text

from app.data.change_feed import announce_every_table

ATTACH_FUNCTION = "conduit_attach_change_triggers()"
EVENT_TRIGGER_EXISTS = (
    "SELECT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'conduit_changes_ddl')"
)
NO_EVENT_TRIGGER = (
    "No event trigger announces DDL to the response cache (installing one needs a "
    "superuser): migration runs announce themselves, but after DDL by hand run "
    "SELECT pg_notify('conduit_changes', '*')"
)

log = logging.getLogger(__name__)


def after_run(connection: Connection) -> None:
    """Attach missing change triggers and announce the run (PostgreSQL; SQLite: nothing).

    Inside the caller's transaction when there is one (it commits); otherwise
    in a transaction of its own.
    """
    if connection.dialect.name != "postgresql":
        return
    if connection.in_transaction():
        _attach_and_announce(connection)
        return
    with connection.begin():
        _attach_and_announce(connection)


def _attach_and_announce(connection: Connection) -> None:
    installed = connection.scalar(text("SELECT to_regprocedure(:name)"), {"name": ATTACH_FUNCTION})
    if installed is not None:
        attached = connection.scalar(text(f"SELECT {ATTACH_FUNCTION}"))
        if attached:
            log.info("Change triggers attached to %d new table(s)", attached)
        if not connection.scalar(text(EVENT_TRIGGER_EXISTS)):
            log.warning(NO_EVENT_TRIGGER)
    announce_every_table(connection)
