"""The Conduit API: an application factory that only wires things together."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import InternalServerError

from app import models  # noqa: F401  (every model is known to migrations)
from app.config import load_settings, settings_command
from app.data import (
    counters,
    database,  # noqa: F401  (registers connection settings)
    known_users,
    pool,
    read_requests,  # noqa: F401  (safe requests read in autocommit)
    replicas,
    unit_of_work,
)
from app.data.counters import counters_cli
from app.data.reset import drop_tables_command
from app.data.seed import seed_command
from app.db import register_db_commands
from app.errors import render_http_exception
from app.extensions import db, migrate
from app.web import (
    cross_origin,
    database_errors,
    docs,
    early_hits,
    http_edges,
    http_validators,
    metrics,
    request_log,
    response_cache,
    security_headers,
    sessions,
    shared_answers,
    throttling,
    tracing,
    webapp,
)
from app.web.api import api
from app.web.converters import (
    ArticleSlugConverter,
    AsciiIntegerConverter,
    PathSegmentConverter,
)
from app.web.json_provider import OrjsonProvider

MIGRATIONS_DIRECTORY = str(Path(__file__).resolve().parent.parent / "migrations")
log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application; ``config`` overrides settings from the environment."""
    app = Flask(__name__, instance_relative_config=True)
    app.json = OrjsonProvider(app)
    sessions.init_app(app)  # none: every request carries its token
    app.config.from_mapping(load_settings(app.instance_path, config))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    counters.init_app(app)  # the running totals' folds, paced
    with app.app_context():
        pool.ping_when_idle(
            db.engine, app.config.get("POOL_PING_AFTER_IDLE_SECONDS", pool.PING_AFTER_IDLE_SECONDS)
        )
    migrations = app.config.get("MIGRATIONS_DIRECTORY", MIGRATIONS_DIRECTORY)
    migrate.init_app(app, db, directory=migrations)
    register_db_commands(app)
    api.init_app(app)
    cross_origin.init_app(app)
    app.url_map.converters["default"] = PathSegmentConverter
    app.url_map.converters["int"] = AsciiIntegerConverter
    app.url_map.converters["slug"] = ArticleSlugConverter
    _register_blueprints()
    app.register_blueprint(docs.blp)
    webapp.init_app(app)
    app.register_error_handler(Exception, _unexpected_error)
    database_errors.init_app(app)  # database errors: 404/409/422/503, sessions closed safely
    request_log.init_app(app)
    early_hits.init_app(app)  # before any other middleware: it wraps Flask's own wsgi_app
    # After the blueprints (it wraps their views) and the logs' setup (it may warn).
    throttling.init_app(app)
    security_headers.init_app(app)  # before http_edges: it sees the routed path
    http_edges.init_app(app)  # after the log's start: refused requests are logged too
    http_validators.init_app(app)  # after the request log: it logs the 304s as 304s
    replicas.init_app(app)  # before the cache: it chooses the replica a miss reads from
    response_cache.init_app(app)  # after the validators: it stores answers before a 304
    shared_answers.init_app(app)  # the cache's second level, in Redis (after the cache)
    known_users.init_app(app)  # tokens' users remembered while the cache's feed vouches
    app.cli.add_command(seed_command)
    app.cli.add_command(drop_tables_command)
    app.cli.add_command(settings_command)
    app.cli.add_command(counters_cli)
    _observe(app)
    return app


def close_app(app: Flask) -> None:
    """Undo what ``create_app`` opened: threads stopped, connections closed; idempotent.

    Folds the running totals a pending timer would have (or waits for its
    fold), flushes and stops tracing, stops the change feed's listener (the
    response cache's), the replicas' checker and their engines, then removes
    the session and disposes of the primary's engine. For tests, tools and
    benchmarks that make apps in a process that goes on; a process that
    exits needs none of it. The metrics server is the process's, not an
    app's (``app.web.metrics.stop``).
    """
    counters.close(app)
    tracing.close(app)
    response_cache.close(app)
    shared_answers.close(app)
    replicas.close(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _observe(app: Flask) -> None:
    """Traces (``OTEL_TRACES_EXPORTER``) and metrics (``METRICS_PORT``); each off by default.

    Last: each puts its request hooks before every other one.
    """
    from app.health import service

    tracing.init_app(app)
    metrics.init_app(app, schema_at_head=service.schema_at_head)


def _register_blueprints() -> None:
    from app import articles, comments, health, profiles, tags, users

    for blueprint in (
        users.blp,
        profiles.blp,
        *articles.blueprints,
        comments.blp,
        tags.blp,
        health.blp,
    ):
        api.register_blueprint(blueprint)


def _unexpected_error(error: Exception) -> Response:
    """Log the traceback; the client gets the envelope and nothing internal."""
    log.exception("Unhandled exception", exc_info=error)
    unit_of_work.discard()
    return render_http_exception(InternalServerError())
