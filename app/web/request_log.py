"""Logs: one line per request, JSON lines in production, readable text in development.

``LOG_FORMAT`` (app/config.py) picks the format: ``json`` (production and
tests: one object per line, a traceback as a field) or ``text`` (development:
one readable line per request, tracebacks as text). gunicorn's own lines use
the same formatter (:func:`gunicorn_logconfig`).

Every request gets an id: the client's ``X-Request-ID`` when it is a sane
token, otherwise a fresh one. It is returned in the response header and
carried by every log record written while the request runs, so the access
line and an error's traceback can be joined.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Request, Response, g, has_request_context, request
from sqlalchemy import inspect

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = "HTTP_X_REQUEST_ID"  # the header in the WSGI environment
# Ids from clients are logged verbatim: accept only short, printable tokens.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_HANDLER_MARK = "_conduit_json_handler"

request_logger = logging.getLogger("app.request")

# Attributes every LogRecord has; anything else was passed through ``extra``.
_STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


# json.dumps(entry, default=str, ensure_ascii=False), without building an encoder per line.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extra fields, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


class TextFormatter(logging.Formatter):
    """One readable line per record; a request as ``GET /path 200 3.1 ms``; tracebacks as text."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        if record.name == request_logger.name and hasattr(record, "status"):
            duration = getattr(record, "duration_ms", None)
            user = getattr(record, "user_id", None)
            message = (
                f"{record.method} {record.path} {record.status}"  # type: ignore[attr-defined]
                + (f" {duration:.1f} ms" if duration is not None else "")
                + (f" user={user}" if user is not None else "")
            )
        else:
            message = f"{record.name}: {record.getMessage()}"
        request_id = getattr(record, "request_id", None)
        line = f"{moment} {record.levelname:<7} {message}"
        if request_id:
            line += f"  [{str(request_id)[:8]}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


FORMATTERS: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}


class RequestIdFilter(logging.Filter):
    """Stamps records written during a request with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") and has_request_context():
            request_id = g.get("request_id")
            if request_id is not None:
                record.request_id = request_id
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str, log_format: str = "json") -> None:
    """Send the application's loggers (``app.*``) to stderr in ``log_format``, once."""
    logger = logging.getLogger("app")
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.addFilter(RequestIdFilter())
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
    handler.setFormatter(FORMATTERS[log_format]())


def gunicorn_logconfig(log_format: str) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its own lines in the application's format, on stderr.

    Levels stay gunicorn's (``loglevel``, which ``--log-level`` overrides). The
    root logger gets no handler, so the application's records (which
    propagate) are written once, by their own handler. gunicorn's access line
    goes nowhere: a ``logconfig_dict`` turns gunicorn's access log on whatever
    ``accesslog`` says, and the application already writes one line per
    request (``app.request``, with its id), so each request is logged once.
    """
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "conduit",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"conduit": {"()": FORMATTERS[log_format]}},
        "handlers": {"error_console": handler, "discard": {"class": "logging.NullHandler"}},
        "root": {"level": "WARNING", "handlers": []},
        "loggers": {
            "gunicorn.error": {"handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"handlers": ["discard"], "propagate": False},
        },
    }


def request_id_for(environ: dict[str, Any]) -> str:
    """The request's id: the client's ``X-Request-ID`` when it is a sane token, else a new one."""
    supplied = environ.get(_REQUEST_ID_KEY, "")
    if _SAFE_REQUEST_ID.fullmatch(supplied):
        return supplied
    return uuid.uuid4().hex


def _request_id() -> str:
    return request_id_for(request.environ)


def _user_id() -> int | None:
    """The authenticated user's id, read without touching the database."""
    user = g.get("current_user")
    if user is None:  # an answer from the response cache names its viewer here
        return g.get("cached_viewer_id")
    identity = inspect(user).identity  # works on expired (committed) instances too
    return identity[0] if identity else None


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_id = _request_id()


def _log_request(response: Response) -> Response:
    request_id = g.get("request_id") or _request_id()
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    duration_ms = (time.perf_counter() - started) * 1000 if started is not None else None
    if request_logger.isEnabledFor(logging.INFO):
        log_access(request_id, request, response.status_code, duration_ms, _user_id())
    return response


def log_access(
    request_id: str,
    asked: Request,
    status: int,
    duration_ms: float | None,
    user_id: int | None,
) -> None:
    """The access line of request ``asked`` (``app.request`` at INFO): id, method, path,
    status, duration in milliseconds (two decimals), user id (``None``: anonymous), client
    address."""
    request_logger.info(
        "request",
        extra={
            "request_id": request_id,
            "method": asked.method,
            "path": asked.path,
            "status": status,
            "duration_ms": round(duration_ms, 2) if duration_ms is not None else None,
            "user_id": user_id,
            "remote_addr": asked.remote_addr,
        },
    )


def init_app(app: Flask) -> None:
    """Logging for the ``app`` loggers; the request id and the access line."""
    configure_logging(app.config.get("LOG_LEVEL", "INFO"), app.config.get("LOG_FORMAT", "json"))
    app.before_request(_start_request)
    app.after_request(_log_request)
