"""Connection settings the application relies on, and connection errors in one line."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from sqlalchemy import URL, Engine, event


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: enforce foreign keys (cascades), let readers and a writer overlap."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


_MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]+)" does not exist')


def connection_problem(error: BaseException, url: URL) -> str | None:
    """One line for a database that cannot be reached, naming the setting and the fix.

    Recognises a PostgreSQL database that does not exist (with the
    ``createdb`` command that creates it) and a server that does not answer;
    ``None`` for any other error. The password never appears.
    """
    text = str(getattr(error, "orig", None) or error).strip()
    missing = _MISSING_DATABASE.search(text)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if missing:
        command = ["createdb"]
        if url.host:
            command += ["-h", url.host]
        if url.port:
            command += ["-p", str(url.port)]
        if url.username:
            command += ["-U", url.username]
        command.append(missing["name"])
        return (
            f'DATABASE_URL names the database "{missing["name"]}", which does not exist on '
            f"{where}: create it with `{' '.join(command)}`, or point DATABASE_URL at another"
        )
    if "Connection refused" in text or "could not translate host name" in text:
        return (
            f"DATABASE_URL: no PostgreSQL server answers at {where}: start it, "
            "or point DATABASE_URL at one"
        )
    return None
