"""The development server (``make run``): ``python -m app.web.devserver``.

Serves the app with werkzeug on ``HOST``/``PORT`` (read like every entry
point's settings: environment, ``.env``, defaults), restarts it when a source
file changes, and leaves the request lines to the application (one readable
line each with ``LOG_FORMAT=text``, the development default), so werkzeug
does not log every request a second time.

Each start (and restart) first checks the database: a database it cannot
reach stops it with one line naming the fix; pending migrations and models
that differ from the migrations are warnings, so a missing migration shows
before the first insert answers 500.
"""

from __future__ import annotations

import logging
import sys

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.serving import WSGIRequestHandler, is_running_from_reloader, run_simple

from app.config import ConfigurationError, server_settings
from app.data.database import connection_problem

log = logging.getLogger("app.web.devserver")


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without its access line: the application writes one per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class DatabaseUnreachable(Exception):
    """The database cannot be reached; the message is one line with the fix."""


def schema_warnings(app: Flask) -> list[str]:
    """What is wrong with the database's schema for this code, one line each.

    Pending or changed migrations (``flask db status``) and models that differ
    from the migrations (the comparison ``make migration-check`` runs). Raises
    :class:`DatabaseUnreachable` when the database cannot be reached.
    """
    from alembic.script import ScriptDirectory

    from app.db.gate import describe_differences, model_differences
    from app.db.status import read_status
    from app.extensions import db

    warnings = []
    with app.app_context():
        migrate = app.extensions["migrate"]
        script = ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory))
        try:
            with db.engine.connect() as connection:
                status = read_status(script, connection)
        except SQLAlchemyError as error:
            problem = connection_problem(error, db.engine.url)
            first_line = (str(error).strip().splitlines() or [repr(error)])[0]
            raise DatabaseUnreachable(problem or f"DATABASE_URL: {first_line}") from None
        if status.tampered:
            changed = ", ".join(r.revision for r in status.tampered)
            warnings.append(
                f"applied migrations changed or missing ({changed}): see make migration-verify"
            )
        if status.pending:
            pending = ", ".join(r.revision for r in status.pending)
            warnings.append(
                f"{len(status.pending)} migration(s) pending ({pending}): run make migration-run"
            )
        try:
            diffs = model_differences()
        except Exception as error:  # a broken revision: say so, keep serving
            warnings.append(f"cannot compare the models with the migrations: {error!r}")
        else:
            if diffs:
                warnings.append(describe_differences(diffs))
    return warnings


def main() -> None:
    try:
        settings = server_settings()
    except ConfigurationError as error:
        raise SystemExit(f"configuration error: {error}") from None
    if settings.app_env == "production":
        raise SystemExit(
            "configuration error: the development server does not serve APP_ENV=production; "
            "use make serve (gunicorn)"
        )
    from wsgi import app

    # The reloader runs this module twice: a watcher, and the server it restarts.
    if is_running_from_reloader():
        try:
            for warning in schema_warnings(app):
                log.warning("schema: %s", warning)
        except DatabaseUnreachable as error:
            log.error("%s", error)
            sys.exit(1)
        if settings.metrics_port is not None:  # one process: its own metrics, from a thread
            from app.web import metrics

            port = metrics.serve(app, settings.host, settings.metrics_port)
            log.info("Metrics at: http://%s:%s/metrics", settings.host, port)
    run_simple(
        settings.host,
        settings.port,
        app,
        use_reloader=True,
        reloader_type="stat",
        threaded=True,
        request_handler=_QuietRequestHandler,
    )


if __name__ == "__main__":
    main()
