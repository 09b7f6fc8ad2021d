"""Settings from the environment (12-factor), with safe development defaults.

Every setting is read from the process environment, then from a ``.env`` file
at the project root, then from the defaults below. ``create_app`` may also
receive explicit overrides (the tests use them). Production refuses to start
with settings that are only fit for development.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "testing", "production")
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-change-me-in-production"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32


class ConfigurationError(RuntimeError):
    """The configuration is unsafe or invalid; the message says why, in one line."""


def _int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None


# Read from the environment and overrides alike above; the rest of the overrides win as given.
_PARSED = ("APP_ENV", "SECRET_KEY", "DATABASE_URL", "RESPONSE_CACHE", "RESPONSE_CACHE_MAX_BYTES")


def _switch(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ConfigurationError(f"{name} must be on or off, got {raw!r}")


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for ``postgres://`` and ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_settings(
    instance_path: str,
    overrides: Mapping[str, Any] | None = None,
    env_file: Path = PROJECT_ROOT / ".env",
) -> dict[str, Any]:
    """Build the Flask config mapping from the environment, ``.env`` and overrides."""
    overrides = dict(overrides or {})
    env: dict[str, Any] = {
        **{k: v for k, v in dotenv_values(env_file).items() if v is not None},
        **os.environ,
        **overrides,
    }

    app_env = str(env.get("APP_ENV", "development"))
    if app_env not in ENVIRONMENTS:
        raise ConfigurationError(
            f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {app_env!r}"
        )
    production = app_env == "production"

    secret_key = str(env.get("SECRET_KEY") or "")
    if production:
        if not secret_key or secret_key == DEVELOPMENT_SECRET_KEY:
            raise ConfigurationError("SECRET_KEY must be set to a unique value in production")
        if len(secret_key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigurationError(
                f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters in production"
            )
    secret_key = secret_key or DEVELOPMENT_SECRET_KEY

    database_url = str(env.get("DATABASE_URL") or "")
    if production and not database_url:
        raise ConfigurationError("DATABASE_URL must be set in production")
    if not database_url:
        database_url = f"sqlite:///{Path(instance_path) / 'conduit.db'}"

    testing = app_env == "testing"
    settings: dict[str, Any] = {
        "APP_ENV": app_env,
        "TESTING": testing,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(database_url),
        # No ping on every checkout: app/pool.py pings connections idle for a second or more.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False},
        "JWT_EXPIRES_SECONDS": _int(
            str(env.get("JWT_EXPIRES_SECONDS", 60 * 60 * 24 * 7)), "JWT_EXPIRES_SECONDS"
        ),
        # Cheap hashing keeps the test suite fast; real deployments use
        # argon2-cffi's RFC 9106 "low memory" profile.
        "PASSWORD_HASH_PROFILE": "testing" if testing else "default",
        "CORS_ORIGINS": [
            origin.strip()
            for origin in str(env.get("CORS_ORIGINS", "*")).split(",")
            if origin.strip()
        ],
        "LOG_LEVEL": str(env.get("LOG_LEVEL", "INFO")).upper(),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # Hot reads from memory (app/response_cache.py); per process, in bytes.
        "RESPONSE_CACHE": _switch(str(env.get("RESPONSE_CACHE", "on")), "RESPONSE_CACHE"),
        "RESPONSE_CACHE_MAX_BYTES": _int(
            str(env.get("RESPONSE_CACHE_MAX_BYTES", 32 * 1024 * 1024)), "RESPONSE_CACHE_MAX_BYTES"
        ),
        # Migrations (app/db): where backups go; how long DDL waits for a lock (PostgreSQL).
        "BACKUP_DIRECTORY": str(env.get("BACKUP_DIRECTORY") or PROJECT_ROOT / "backups"),
        "MIGRATION_LOCK_TIMEOUT": str(env.get("MIGRATION_LOCK_TIMEOUT") or "5s"),
        # flask-smorest / OpenAPI
        "API_TITLE": "Conduit API",
        "API_VERSION": "1.0.0",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        # Interactive docs at /docs: Swagger UI from the app's own files (app/docs.py).
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None, "deepLinking": True},
    }
    settings.update({k: v for k, v in overrides.items() if k not in _PARSED})
    return settings
