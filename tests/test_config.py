"""Settings from the environment; production refuses unsafe ones."""

import pytest

from app import create_app
from app.config import DEVELOPMENT_SECRET_KEY, ConfigurationError, load_settings

STRONG_KEY = "k" * 48


def settings(**env):
    return load_settings("/tmp/instance", env)


def test_development_defaults_to_sqlite_in_the_instance_folder(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)

    assert settings(APP_ENV="development")["SQLALCHEMY_DATABASE_URI"] == (
        "sqlite:////tmp/instance/conduit.db"
    )


@pytest.mark.parametrize("scheme", ["postgres://", "postgresql://"])
def test_postgresql_urls_use_psycopg_3(scheme):
    url = settings(DATABASE_URL=f"{scheme}u:p@db:5432/conduit")["SQLALCHEMY_DATABASE_URI"]

    assert url == "postgresql+psycopg://u:p@db:5432/conduit"


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"DATABASE_URL": "sqlite://"}, "SECRET_KEY must be set"),
        ({"DATABASE_URL": "sqlite://", "SECRET_KEY": DEVELOPMENT_SECRET_KEY}, "SECRET_KEY must be"),
        ({"DATABASE_URL": "sqlite://", "SECRET_KEY": "short"}, "at least 32 characters"),
        ({"SECRET_KEY": STRONG_KEY, "DATABASE_URL": ""}, "DATABASE_URL must be set"),
    ],
    ids=["no-key", "default-key", "short-key", "no-database"],
)
def test_production_refuses_unsafe_settings(env, reason):
    with pytest.raises(ConfigurationError, match=reason):
        create_app({"APP_ENV": "production", **env})


def test_production_starts_with_safe_settings():
    app = create_app(
        {"APP_ENV": "production", "SECRET_KEY": STRONG_KEY, "DATABASE_URL": "sqlite://"}
    )

    assert app.config["SECRET_KEY"] == STRONG_KEY
    assert not app.config["TESTING"]


def test_unknown_app_env_is_refused():
    with pytest.raises(ConfigurationError, match="APP_ENV must be one of"):
        settings(APP_ENV="staging")


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("JWT_EXPIRES_SECONDS", "60")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")

    loaded = settings()

    assert loaded["JWT_EXPIRES_SECONDS"] == 60
    assert loaded["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]


def test_non_numeric_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("JWT_EXPIRES_SECONDS", "soon")

    with pytest.raises(ConfigurationError, match="JWT_EXPIRES_SECONDS must be an integer"):
        settings()


def test_env_file_fills_what_the_environment_leaves_unset(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("JWT_EXPIRES_SECONDS=120\nLOG_LEVEL=debug\n")
    monkeypatch.delenv("JWT_EXPIRES_SECONDS", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")

    loaded = load_settings("/tmp/instance", {}, env_file=env_file)

    assert loaded["JWT_EXPIRES_SECONDS"] == 120
    assert loaded["LOG_LEVEL"] == "WARNING"


@pytest.mark.parametrize(("raw", "expected"), [("on", True), ("off", False), (False, False)])
def test_the_response_cache_is_switched_on_or_off(raw, expected):
    assert settings(RESPONSE_CACHE=raw)["RESPONSE_CACHE"] is expected


def test_an_unclear_response_cache_switch_is_refused():
    with pytest.raises(ConfigurationError, match="RESPONSE_CACHE must be on or off"):
        settings(RESPONSE_CACHE="maybe")
