"""Settings from the environment (12-factor), with safe development defaults.

Every entry point reads the same settings in the same order: the process
environment, then a ``.env`` file at the project root (``ENV_FILE`` names
another one; an empty ``ENV_FILE`` reads none), then the defaults in
:data:`SETTINGS`. ``create_app`` reads the application's settings
(:func:`load_settings`), ``gunicorn.conf.py`` and the development server the
server's (:func:`server_settings`). ``create_app`` may also receive explicit
overrides (the tests use them). A bad value stops startup with one line naming
the setting; production also refuses settings only fit for development.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "testing", "production")
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-change-me-in-production"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32
# Without JWT_SIGNING_KEYS, SECRET_KEY signs and verifies the tokens under this key id.
DEFAULT_SIGNING_KEY_ID = "secret-key"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")
# Where Flask-Limiter keeps its counts: this process's memory, or Redis (the ``redis`` client).
RATE_LIMIT_STORAGE_SCHEMES = (
    "memory",
    "redis",
    "rediss",
    "redis+unix",
    "redis+sentinel",
    "redis+cluster",
)

# Every setting an entry point reads, with its default as documented
# (docs/configuration.md and .env.example list each one; a test keeps them in step).
SETTINGS: dict[str, str] = {
    "APP_ENV": "development",
    "SECRET_KEY": "a development-only key",
    "DATABASE_URL": "sqlite:///instance/conduit.db",
    "DATABASE_REPLICA_URLS": "none",
    "DATABASE_REPLICA_MAX_LAG_BYTES": "16777216 (16 MiB)",
    "HOST": "127.0.0.1",
    "PORT": "5000",
    "JWT_EXPIRES_SECONDS": "604800",
    "JWT_SIGNING_KEYS": "secret-key:<SECRET_KEY>",
    "JWT_SIGNING_KEY_ID": "the only key's id",
    "CORS_ORIGINS": "*",
    "HTTPS_ONLY": "off",
    "RESPONSE_CACHE": "on",
    "RESPONSE_CACHE_MAX_BYTES": "33554432 (32 MiB)",
    "RESPONSE_CACHE_EARLY_HITS": "on",
    "AUTH_USER_CACHE": "on",
    "RESPONSE_CACHE_SHARED_URL": "RATELIMIT_STORAGE_URI if redis:// or rediss://, else none",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text in development, json otherwise",
    "BACKUP_DIRECTORY": "backups/",
    "MIGRATION_LOCK_TIMEOUT": "1s",
    "MIGRATION_LOCK_RETRIES": "5",
    "MIGRATION_RETRY_DELAY": "1s",
    "BACKFILL_PAUSE": "0.1s",
    "DATABASE_LOCK_TIMEOUT": "5s",
    "COUNTERS_FOLD_INTERVAL": "1s",
    "WEB_CONCURRENCY": "one worker per CPU",
    "GUNICORN_WORKER_CLASS": "app.web.worker.ThreadWorker",
    "GUNICORN_THREADS": "4",
    "GUNICORN_TIMEOUT": "30",
    "GUNICORN_GRACEFUL_TIMEOUT": "20",
    "GUNICORN_CONTROL_SOCKET": "none",
    "TRUSTED_PROXY_COUNT": "0",
    "RATELIMIT_ENABLED": "on",
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_KEY_PREFIX": "conduit",
    "LOGIN_RATE_LIMIT_PER_ADDRESS": "10 per minute",
    "LOGIN_RATE_LIMIT_PER_ACCOUNT": "100 per hour",
    "REGISTRATION_RATE_LIMIT": "20 per hour",
    "METRICS_PORT": "none (no metrics server)",
    "METRICS_DIRECTORY": "a temporary folder per gunicorn start",
    "OTEL_TRACES_EXPORTER": "none (no traces)",
}


class ConfigurationError(RuntimeError):
    """The configuration is unsafe or invalid; the message says why, in one line."""


def env_file_path() -> Path | None:
    """The ``.env`` file to read: ``ENV_FILE`` when set (empty: none), else the project's."""
    named = os.environ.get("ENV_FILE")
    if named is None:
        return PROJECT_ROOT / ".env"
    return Path(named) if named else None


SEALED_OUT = ("FLASK_APP", "FLASK_DEBUG")  # the flask command's own, beside SETTINGS


def sealed_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the app's settings nor ``FLASK_APP``/``FLASK_DEBUG``; no ``.env`` read.

    For a process that gets its settings from its caller alone: the test suite,
    a throwaway server, a release's code imported to read its models. An empty
    ``ENV_FILE`` reads no ``.env`` (see :func:`env_file_path`);
    ``FLASK_SKIP_DOTENV`` stops the ``flask`` command loading one itself.
    """
    kept = {
        name: value
        for name, value in environ.items()
        if name not in SETTINGS and name not in SEALED_OUT
    }
    return {**kept, "ENV_FILE": "", "FLASK_SKIP_DOTENV": "1"}


def seal_environment() -> None:
    """Seal this process's environment (its children's too) in place: :func:`sealed_environment`."""
    sealed = sealed_environment(os.environ)
    for name in set(os.environ) - set(sealed):
        del os.environ[name]
    os.environ.update(sealed)


def read_environment(
    overrides: Mapping[str, Any] | None = None,
    env_file: Path | None = None,
) -> dict[str, Any]:
    """The environment over the ``.env`` file, with ``overrides`` over both."""
    path = env_file if env_file is not None else env_file_path()
    from_file = dotenv_values(path) if path is not None and path.is_file() else {}
    return {
        **{k: v for k, v in from_file.items() if v is not None},
        **os.environ,
        **dict(overrides or {}),
    }


def _text(env: Mapping[str, Any], name: str) -> str:
    """A setting's value; an empty one counts as unset."""
    return str(env.get(name) or "").strip()


def _int(env: Mapping[str, Any], name: str, default: int, minimum: int = 0) -> int:
    raw = _text(env, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def _seconds(env: Mapping[str, Any], name: str, default: float) -> float:
    """A duration in seconds: ``1.5``, ``1.5s`` or ``500ms``; never negative."""
    raw = _text(env, name)
    if not raw:
        return default
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s)?", raw)
    if not match:
        raise ConfigurationError(f"{name} must look like 1s, 0.5 or 500ms, got {raw!r}")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


def _choice(env: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name)
    if value is None:
        return default
    if str(value).strip().lower() not in {choice.lower() for choice in choices}:
        shown = f"{value!r}" if str(value).strip() else "empty"
        raise ConfigurationError(
            f"{name} must be one of {', '.join(choices)} (or unset: {default}), got {shown}"
        )
    return next(c for c in choices if c.lower() == str(value).strip().lower())


def app_environment(env: Mapping[str, Any]) -> str:
    return _choice(env, "APP_ENV", ENVIRONMENTS, "development")


def log_level(env: Mapping[str, Any]) -> str:
    return _choice(env, "LOG_LEVEL", LOG_LEVELS, "INFO")


def log_format(env: Mapping[str, Any], app_env: str) -> str:
    return _choice(env, "LOG_FORMAT", LOG_FORMATS, "text" if app_env == "development" else "json")


def _switch(env: Mapping[str, Any], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = str(raw).strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ConfigurationError(f"{name} must be on or off, got {str(raw)!r}")


def metrics_port(env: Mapping[str, Any]) -> int | None:
    """``METRICS_PORT``: the Prometheus endpoint's own port; unset: no metrics at all.

    ``0`` lets the kernel pick a free port, written in the start-up log line
    ``Metrics at: http://HOST:PORT/metrics`` (tests and throwaway servers).
    """
    if not _text(env, "METRICS_PORT"):
        return None
    return _int(env, "METRICS_PORT", 0, minimum=0)


def traces_exporter(env: Mapping[str, Any]) -> str | None:
    """``OTEL_TRACES_EXPORTER`` as OpenTelemetry reads it: ``otlp``, ``console``; unset or
    ``none``: no tracing."""
    value = _text(env, "OTEL_TRACES_EXPORTER").lower()
    if value in ("", "none"):
        return None
    if value not in ("otlp", "console"):
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER must be otlp, console or none, got {value!r}"
        )
    return value


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for ``postgres://`` and ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _database_url(env: Mapping[str, Any], instance_path: str, production: bool) -> str:
    url = _text(env, "DATABASE_URL")
    if not url:
        if production:
            raise ConfigurationError("DATABASE_URL must be set in production")
        return f"sqlite:///{Path(instance_path) / 'conduit.db'}"
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme.split("+", 1)[0] not in DATABASE_SCHEMES:
        shown = f"the scheme {scheme + '://'!r}" if scheme else "no scheme"
        raise ConfigurationError(
            f"DATABASE_URL must start with sqlite:/// or postgresql://, got {shown} "
            "(e.g. postgresql://user:password@localhost:5432/conduit)"
        )
    return normalize_database_url(url)


def _replica_urls(env: Mapping[str, Any], database_url: str) -> list[str]:
    """``DATABASE_REPLICA_URLS``: comma-separated PostgreSQL URLs of the primary's replicas."""
    urls = [url.strip() for url in _text(env, "DATABASE_REPLICA_URLS").split(",") if url.strip()]
    if urls and not database_url.startswith("postgresql"):
        raise ConfigurationError("DATABASE_REPLICA_URLS needs a postgresql:// DATABASE_URL")
    for url in urls:
        if url.split("://", 1)[0].split("+", 1)[0] not in ("postgresql", "postgres"):
            raise ConfigurationError(
                "DATABASE_REPLICA_URLS must list postgresql:// URLs separated by commas"
            )
    return [normalize_database_url(url) for url in urls]


def _rate_limit_storage(env: Mapping[str, Any]) -> str:
    uri = _text(env, "RATELIMIT_STORAGE_URI") or "memory://"
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in RATE_LIMIT_STORAGE_SCHEMES:
        shown = f"the scheme {scheme + '://'!r}" if scheme else "no scheme"
        raise ConfigurationError(
            f"RATELIMIT_STORAGE_URI must start with memory:// or redis:// (rediss://, "
            f"redis+unix://, redis+sentinel://, redis+cluster://), got {shown}"
        )
    return uri


def _shared_answers_url(env: Mapping[str, Any], rate_limit_storage: str) -> str | None:
    """``RESPONSE_CACHE_SHARED_URL``: the Redis the workers share answers in (none: no sharing).

    Unset: the throttling's Redis (``RATELIMIT_STORAGE_URI``) when it is a
    plain ``redis://`` or ``rediss://`` URL, so a deployment with Redis shares
    answers without another setting; ``none`` (or ``off``) turns sharing off.
    """
    url = _text(env, "RESPONSE_CACHE_SHARED_URL")
    if not url:
        scheme = rate_limit_storage.split("://", 1)[0]
        return rate_limit_storage if scheme in ("redis", "rediss") else None
    if url.lower() in ("none", "off"):
        return None
    if url.split("://", 1)[0] not in ("redis", "rediss", "unix") or "://" not in url:
        raise ConfigurationError(
            "RESPONSE_CACHE_SHARED_URL must be a redis://, rediss:// or unix:// URL, or none"
        )
    return url


def _rate_limit(env: Mapping[str, Any], name: str, default: str) -> str:
    """A limit in Flask-Limiter's notation: ``10 per minute``, ``100/hour;1000/day``."""
    from limits import parse_many

    value = _text(env, name) or default
    try:
        parse_many(value)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be a rate limit like '10 per minute' or '100/hour;1000/day', "
            f"got {value!r}"
        ) from None
    return value


# How long opening a PostgreSQL connection may take (libpq's connect_timeout, seconds).
CONNECT_TIMEOUT_SECONDS = 5

# PostgreSQL's interval syntax as lock_timeout takes it: 5s, 500ms, 1min; 0 is no limit.
_DURATION = re.compile(r"\d+(ms|s|min|h)?")


def _engine_options(database_url: str, env: Mapping[str, Any]) -> dict[str, Any]:
    """SQLAlchemy's engine options for the app's connections.

    No ping on every checkout: app/data/pool.py pings connections idle for a
    second or more. ``hide_parameters``: a failed statement's error (and so its
    log line) never carries the values bound to it (emails, password hashes,
    tokens). PostgreSQL: every connection waits at most
    ``DATABASE_LOCK_TIMEOUT`` for a lock (a row a concurrent request holds, a
    table a migration holds), then the request answers 503 instead of hanging
    until gunicorn's worker timeout (app/data/unit_of_work.py); opening a
    connection gives up after ``CONNECT_TIMEOUT_SECONDS`` (a 503 too). Migrations set
    their own (``MIGRATION_LOCK_TIMEOUT``, migrations/env.py). PostgreSQL:
    ``conduit.change_feed=app`` tells the change triggers that the app
    announces these connections' writes itself (app/data/change_feed.py);
    migrations/env.py clears it on the connection a migration runs on.
    """
    options: dict[str, Any] = {"pool_pre_ping": False, "hide_parameters": True}
    lock_timeout = _text(env, "DATABASE_LOCK_TIMEOUT") or "5s"
    if not _DURATION.fullmatch(lock_timeout):
        raise ConfigurationError(
            f"DATABASE_LOCK_TIMEOUT must look like 5s, 500ms or 1min, got {lock_timeout!r}"
        )
    if database_url.startswith("postgresql"):
        # conduit.change_feed: this connection's writes are announced by the app itself, one
        # notification per transaction, so the change triggers stay silent for them
        # (app/data/change_feed.py, revision 5f3c2d9a1b7e).
        options["connect_args"] = {
            "options": f"-c lock_timeout={lock_timeout} -c conduit.change_feed=app",
            # A server that accepts the connection and then says nothing: 503, not a
            # request held until gunicorn's worker timeout.
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        }
    return options


def _checked_secret(name: str, secret: str, production: bool) -> str:
    """``secret`` as given; production refuses the development key or a short one."""
    if production:
        if not secret or secret == DEVELOPMENT_SECRET_KEY:
            raise ConfigurationError(f"{name} must be set to a unique value in production")
        if len(secret) < MIN_SECRET_KEY_LENGTH:
            raise ConfigurationError(
                f"{name} must be at least {MIN_SECRET_KEY_LENGTH} characters in production"
            )
    return secret


def signing_keys(
    env: Mapping[str, Any], secret_key: str, production: bool
) -> tuple[dict[str, str], str]:
    """The JWT signing keys by key id, and the id of the one that signs new tokens.

    ``JWT_SIGNING_KEYS`` is ``kid:secret`` pairs separated by commas (a secret
    holds no comma; the first ``:`` ends the id, which is 1 to 64 of
    ``A-Z a-z 0-9 . _ -``). Every key verifies; ``JWT_SIGNING_KEY_ID`` names
    the one that signs (needed when there are several). Unset: ``SECRET_KEY``
    under the id ``secret-key``, so ``secret-key:<SECRET_KEY>`` in a first
    rotation keeps the tokens already issued. Production refuses a secret
    shorter than 32 characters, as it does ``SECRET_KEY``.
    """
    raw = _text(env, "JWT_SIGNING_KEYS")
    keys: dict[str, str] = {}
    if not raw:
        keys[DEFAULT_SIGNING_KEY_ID] = secret_key
    entries = [part.strip() for part in raw.split(",") if part.strip()]
    for position, entry in enumerate(entries, start=1):
        kid, colon, secret = entry.partition(":")
        kid, secret = kid.strip(), secret.strip()
        if not colon or not _KEY_ID.fullmatch(kid) or not secret:
            # Never the entry itself: without its colon it may be a bare secret.
            raise ConfigurationError(
                "JWT_SIGNING_KEYS must be comma-separated kid:secret pairs (a kid is 1 to 64 "
                f"letters, digits, '.', '_' or '-'); entry {position} of {len(entries)} is not"
            )
        if kid in keys:
            raise ConfigurationError(f"JWT_SIGNING_KEYS names the key id {kid!r} twice")
        keys[kid] = _checked_secret(f"JWT_SIGNING_KEYS ({kid})", secret, production)
    if not keys:
        raise ConfigurationError("JWT_SIGNING_KEYS holds no kid:secret pair")
    signing = _text(env, "JWT_SIGNING_KEY_ID")
    if not signing:
        if len(keys) > 1:
            raise ConfigurationError(
                "JWT_SIGNING_KEY_ID must name the key that signs, one of " + ", ".join(keys)
            )
        signing = next(iter(keys))
    if signing not in keys:
        raise ConfigurationError(
            f"JWT_SIGNING_KEY_ID {signing!r} is not in JWT_SIGNING_KEYS ({', '.join(keys)})"
        )
    return keys, signing


def load_settings(
    instance_path: str,
    overrides: Mapping[str, Any] | None = None,
    env_file: Path | None = None,
) -> dict[str, Any]:
    """Build the Flask config mapping from the environment, ``.env`` and overrides."""
    overrides = dict(overrides or {})
    env = read_environment(overrides, env_file)

    app_env = app_environment(env)
    production = app_env == "production"

    secret_key = _checked_secret("SECRET_KEY", _text(env, "SECRET_KEY"), production)
    secret_key = secret_key or DEVELOPMENT_SECRET_KEY
    jwt_keys, jwt_signing_key_id = signing_keys(env, secret_key, production)

    testing = app_env == "testing"
    database_url = _database_url(env, instance_path, production)
    settings: dict[str, Any] = {
        "APP_ENV": app_env,
        "TESTING": testing,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url, env),
        # Streaming replicas that serve safe requests (app/data/replicas.py).
        "DATABASE_REPLICA_URLS": _replica_urls(env, database_url),
        "DATABASE_REPLICA_MAX_LAG_BYTES": _int(
            env, "DATABASE_REPLICA_MAX_LAG_BYTES", 16 * 1024 * 1024
        ),
        "JWT_EXPIRES_SECONDS": _int(env, "JWT_EXPIRES_SECONDS", 60 * 60 * 24 * 7, minimum=1),
        # Each key verifies the tokens naming its id (header kid); one signs (app/tokens.py).
        "JWT_SIGNING_KEYS": jwt_keys,
        "JWT_SIGNING_KEY_ID": jwt_signing_key_id,
        # Cheap hashing keeps the test suite fast; real deployments use
        # argon2-cffi's RFC 9106 "low memory" profile.
        "PASSWORD_HASH_PROFILE": "testing" if testing else "default",
        "CORS_ORIGINS": [
            origin.strip()
            for origin in str(env.get("CORS_ORIGINS") or "*").split(",")
            if origin.strip()
        ],
        # Served over HTTPS only: answers carry Strict-Transport-Security
        # (app/web/security_headers.py).
        "HTTPS_ONLY": _switch(env, "HTTPS_ONLY", False),
        "LOG_LEVEL": log_level(env),
        "LOG_FORMAT": log_format(env, app_env),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # Hot reads from memory (app/web/response_cache.py); per process, in bytes.
        "RESPONSE_CACHE": _switch(env, "RESPONSE_CACHE", True),
        "RESPONSE_CACHE_MAX_BYTES": _int(env, "RESPONSE_CACHE_MAX_BYTES", 32 * 1024 * 1024),
        # The plainest hits answered before Flask's request context (app/web/early_hits.py).
        "RESPONSE_CACHE_EARLY_HITS": _switch(env, "RESPONSE_CACHE_EARLY_HITS", True),
        # Tokens' users remembered while the change feed vouches (app/data/known_users.py).
        "AUTH_USER_CACHE": _switch(env, "AUTH_USER_CACHE", True),
        # Answers shared by the workers of one master (app/web/shared_answers.py); None: not.
        "RESPONSE_CACHE_SHARED_URL": _shared_answers_url(env, _rate_limit_storage(env)),
        # Migrations (app/db): where backups go; how long DDL waits for a lock (PostgreSQL).
        "BACKUP_DIRECTORY": _text(env, "BACKUP_DIRECTORY") or str(PROJECT_ROOT / "backups"),
        "MIGRATION_LOCK_TIMEOUT": _text(env, "MIGRATION_LOCK_TIMEOUT") or "1s",
        # A revision or CONCURRENTLY step that hit lock_timeout: attempts after the first,
        # and the first pause (doubled each time, with jitter); app/db/lock_retry.py.
        "MIGRATION_LOCK_RETRIES": _int(env, "MIGRATION_LOCK_RETRIES", 5),
        "MIGRATION_RETRY_DELAY": _seconds(env, "MIGRATION_RETRY_DELAY", 1.0),
        # A data migration's pause between batches (app/db/backfill.py).
        "BACKFILL_PAUSE": _seconds(env, "BACKFILL_PAUSE", 0.1),
        # The running totals: a process folds their pending deltas at most once this often
        # (0: after every write that moves them); app/data/counters.py.
        "COUNTERS_FOLD_INTERVAL": _seconds(env, "COUNTERS_FOLD_INTERVAL", 1.0),
        # The client's address from X-Forwarded-For, behind this many proxies (0: the socket's).
        "TRUSTED_PROXY_COUNT": _int(env, "TRUSTED_PROXY_COUNT", 0),
        # Throttling (app/web/throttling.py): Flask-Limiter's own settings, then the limits.
        "RATELIMIT_ENABLED": _switch(env, "RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": _rate_limit_storage(env),
        "RATELIMIT_KEY_PREFIX": _text(env, "RATELIMIT_KEY_PREFIX") or "conduit",
        "LOGIN_RATE_LIMIT_PER_ADDRESS": _rate_limit(
            env, "LOGIN_RATE_LIMIT_PER_ADDRESS", "10 per minute"
        ),
        "LOGIN_RATE_LIMIT_PER_ACCOUNT": _rate_limit(
            env, "LOGIN_RATE_LIMIT_PER_ACCOUNT", "100 per hour"
        ),
        "REGISTRATION_RATE_LIMIT": _rate_limit(env, "REGISTRATION_RATE_LIMIT", "20 per hour"),
        # Observability: Prometheus metrics on their own port (app/web/metrics.py), where
        # ``flask counters verify`` leaves its findings for them; traces (app/web/tracing.py).
        "METRICS_PORT": metrics_port(env),
        "METRICS_DIRECTORY": _text(env, "METRICS_DIRECTORY") or None,
        "OTEL_TRACES_EXPORTER": traces_exporter(env),
        # flask-smorest / OpenAPI
        "API_TITLE": "Conduit API",
        "API_VERSION": "1.0.0",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        # Interactive docs at /docs: Swagger UI from the app's own files (app/web/docs.py).
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None, "deepLinking": True},
    }
    # Other overrides are Flask config keys, taken as given (settings were read above).
    settings.update({k: v for k, v in overrides.items() if k not in SETTINGS})
    return settings


@dataclass(frozen=True)
class ServerSettings:
    """Where and how the app is served: gunicorn.conf.py and the development server."""

    app_env: str
    host: str
    port: int
    workers: int
    worker_class: str
    threads: int
    timeout: int
    graceful_timeout: int
    log_level: str
    log_format: str
    control_socket: str | None
    metrics_port: int | None = None
    metrics_directory: str | None = None

    @property
    def bind(self) -> str:
        return f"{self.host}:{self.port}"


def server_settings(
    overrides: Mapping[str, Any] | None = None, env_file: Path | None = None
) -> ServerSettings:
    """The serving settings, read like the application's (environment, ``.env``, defaults)."""
    env = read_environment(overrides, env_file)
    app_env = app_environment(env)
    port = _int(env, "PORT", 5000)
    metrics_on = metrics_port(env)
    if metrics_on and metrics_on == port:
        raise ConfigurationError(
            f"METRICS_PORT must differ from PORT ({port}): metrics never share the API's port"
        )
    return ServerSettings(
        app_env=app_env,
        host=_text(env, "HOST") or "127.0.0.1",
        port=port,
        workers=_int(env, "WEB_CONCURRENCY", os.cpu_count() or 1, minimum=1),
        worker_class=_text(env, "GUNICORN_WORKER_CLASS") or "app.web.worker.ThreadWorker",
        threads=_int(env, "GUNICORN_THREADS", 4, minimum=1),
        timeout=_int(env, "GUNICORN_TIMEOUT", 30),
        graceful_timeout=_int(env, "GUNICORN_GRACEFUL_TIMEOUT", 20),
        log_level=log_level(env),
        log_format=log_format(env, app_env),
        control_socket=_text(env, "GUNICORN_CONTROL_SOCKET") or None,
        metrics_port=metrics_on,
        metrics_directory=_text(env, "METRICS_DIRECTORY") or None,
    )


def _shown(name: str, value: str) -> str:
    """A setting's value as it may be printed: no secret key, no password."""
    if name == "SECRET_KEY":
        return "<set>"
    if name == "JWT_SIGNING_KEYS":
        kids = (entry.partition(":")[0].strip() for entry in value.split(",") if entry.strip())
        return ",".join(f"{kid}:<set>" for kid in kids)
    if name == "DATABASE_REPLICA_URLS":
        return ",".join(_shown("DATABASE_URL", url.strip()) for url in value.split(","))
    if (
        name in ("DATABASE_URL", "RATELIMIT_STORAGE_URI", "RESPONSE_CACHE_SHARED_URL")
        and "://" in value
    ):
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(value).render_as_string(hide_password=True)
        except ArgumentError:
            return value
    return value


def describe(names: list[str] | None = None) -> list[str]:
    """One line per setting (all by default): ``NAME=value  # where it came from``.

    Values are shell-quoted; the secret key and a database password are masked.
    A setting left to a default the server resolves (``PORT``, ``WEB_CONCURRENCY``
    …) shows the resolved value; others show their default as a comment.
    """
    served = server_settings()
    resolved = {
        "APP_ENV": served.app_env,
        "HOST": served.host,
        "PORT": str(served.port),
        "LOG_LEVEL": served.log_level,
        "LOG_FORMAT": served.log_format,
        "WEB_CONCURRENCY": str(served.workers),
        "GUNICORN_WORKER_CLASS": served.worker_class,
        "GUNICORN_THREADS": str(served.threads),
        "GUNICORN_TIMEOUT": str(served.timeout),
        "GUNICORN_GRACEFUL_TIMEOUT": str(served.graceful_timeout),
    }
    path = env_file_path()
    from_file = dotenv_values(path) if path is not None and path.is_file() else {}
    lines = []
    for name in names or list(SETTINGS):
        if name not in SETTINGS:
            raise ConfigurationError(f"{name} is not a setting (see docs/configuration.md)")
        if os.environ.get(name):
            value, source = os.environ[name], "environment"
        elif from_file.get(name):
            value, source = str(from_file[name]), str(path)
        elif name in resolved:
            value, source = resolved[name], "default"
        else:
            lines.append(f"# {name}: {SETTINGS[name]} (default)")
            continue
        lines.append(f"{name}={shlex.quote(_shown(name, value))}  # {source}")
    return lines


@click.command("settings")
@click.argument("names", nargs=-1)
def settings_command(names: tuple[str, ...]) -> None:
    """Print the settings in effect and where each comes from (environment, .env, default)."""
    try:
        click.echo("\n".join(describe(list(names))))
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
