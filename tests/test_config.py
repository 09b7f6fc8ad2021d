"""Settings from the environment; production refuses unsafe ones."""

import os
import re
from pathlib import Path

import pytest
from dotenv import dotenv_values

from app import create_app
from app.config import (
    DEFAULT_SIGNING_KEY_ID,
    DEVELOPMENT_SECRET_KEY,
    PROJECT_ROOT,
    SETTINGS,
    ConfigurationError,
    load_settings,
    sealed_environment,
    server_settings,
)
from tests import environment

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


def test_without_signing_keys_the_secret_key_signs_under_a_fixed_key_id():
    loaded = settings(SECRET_KEY=STRONG_KEY)

    assert loaded["JWT_SIGNING_KEYS"] == {DEFAULT_SIGNING_KEY_ID: STRONG_KEY}
    assert loaded["JWT_SIGNING_KEY_ID"] == DEFAULT_SIGNING_KEY_ID


def test_signing_keys_are_read_as_kid_secret_pairs_one_of_which_signs():
    loaded = settings(
        JWT_SIGNING_KEYS=" 2026-11:first:half , 2027-01:second ", JWT_SIGNING_KEY_ID="2027-01"
    )

    assert loaded["JWT_SIGNING_KEYS"] == {"2026-11": "first:half", "2027-01": "second"}
    assert loaded["JWT_SIGNING_KEY_ID"] == "2027-01"


def test_a_single_signing_key_signs_without_being_named():
    assert settings(JWT_SIGNING_KEYS="only:secret")["JWT_SIGNING_KEY_ID"] == "only"


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"JWT_SIGNING_KEYS": "a:x,b:y"}, "JWT_SIGNING_KEY_ID must name the key that signs"),
        ({"JWT_SIGNING_KEYS": "a:x", "JWT_SIGNING_KEY_ID": "b"}, "'b' is not in JWT_SIGNING_KEYS"),
        ({"JWT_SIGNING_KEY_ID": "b"}, "'b' is not in JWT_SIGNING_KEYS"),
        ({"JWT_SIGNING_KEYS": "a:x,a:y"}, "names the key id 'a' twice"),
        ({"JWT_SIGNING_KEYS": "a:x,no-colon"}, "entry 2 of 2 is not"),
        ({"JWT_SIGNING_KEYS": "a:"}, "must be comma-separated kid:secret pairs"),
        ({"JWT_SIGNING_KEYS": "bad kid:x"}, "must be comma-separated kid:secret pairs"),
        ({"JWT_SIGNING_KEYS": ","}, "holds no kid:secret pair"),
    ],
    ids=[
        "several-unnamed",
        "unknown-id",
        "unknown-default-id",
        "twice",
        "no-colon",
        "empty",
        "space",
        "none",
    ],
)
def test_unclear_signing_keys_are_refused(env, reason):
    with pytest.raises(ConfigurationError, match=reason):
        settings(**env)


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        (f"old:{STRONG_KEY},new:short", r"JWT_SIGNING_KEYS \(new\) must be at least 32 characters"),
        (
            f"old:{DEVELOPMENT_SECRET_KEY}",
            r"JWT_SIGNING_KEYS \(old\) must be set to a unique value",
        ),
    ],
    ids=["short", "development-key"],
)
def test_production_refuses_weak_signing_keys(keys, reason):
    env = {"SECRET_KEY": STRONG_KEY, "DATABASE_URL": "sqlite://", "JWT_SIGNING_KEYS": keys}

    with pytest.raises(ConfigurationError, match=reason):
        create_app({"APP_ENV": "production", "JWT_SIGNING_KEY_ID": "old", **env})


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


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"RATELIMIT_STORAGE_URI": "redis://cache:6379/0"}, "redis://cache:6379/0"),
        ({"RATELIMIT_STORAGE_URI": "redis+sentinel://cache:26379/main"}, None),
        (
            {"RATELIMIT_STORAGE_URI": "redis://cache/0", "RESPONSE_CACHE_SHARED_URL": "none"},
            None,
        ),
        ({"RESPONSE_CACHE_SHARED_URL": "rediss://answers:6380/1"}, "rediss://answers:6380/1"),
    ],
)
def test_workers_share_answers_in_the_throttlings_redis_unless_told_otherwise(env, expected):
    assert settings(**env)["RESPONSE_CACHE_SHARED_URL"] == expected


def test_a_shared_answers_url_that_is_not_redis_is_refused():
    with pytest.raises(ConfigurationError, match="RESPONSE_CACHE_SHARED_URL must be a redis://"):
        settings(RESPONSE_CACHE_SHARED_URL="memcached://cache:11211")


def test_postgresql_connections_wait_for_a_lock_at_most_the_database_lock_timeout():
    loaded = settings(DATABASE_URL="postgresql://db/conduit", DATABASE_LOCK_TIMEOUT="750ms")

    connect_args = loaded["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]
    assert connect_args["options"] == "-c lock_timeout=750ms -c conduit.change_feed=app"


def test_the_database_lock_timeout_defaults_to_five_seconds():
    loaded = settings(DATABASE_URL="postgresql://db/conduit")

    assert loaded["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["options"] == (
        "-c lock_timeout=5s -c conduit.change_feed=app"
    )


def test_opening_a_postgresql_connection_gives_up_after_five_seconds():
    loaded = settings(DATABASE_URL="postgresql://db/conduit")

    assert loaded["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["connect_timeout"] == 5


@pytest.mark.parametrize("raw", ["5 s", "soon", "-1s", "5s; DROP TABLE users"])
def test_an_unclear_database_lock_timeout_is_refused(raw):
    with pytest.raises(ConfigurationError, match="DATABASE_LOCK_TIMEOUT must look like 5s"):
        settings(DATABASE_URL="postgresql://db/conduit", DATABASE_LOCK_TIMEOUT=raw)


def test_migration_retry_delay_and_backfill_pause_read_seconds_or_milliseconds():
    loaded = settings(MIGRATION_RETRY_DELAY="500ms", BACKFILL_PAUSE="2")

    assert (loaded["MIGRATION_RETRY_DELAY"], loaded["BACKFILL_PAUSE"]) == (0.5, 2.0)


def test_migrations_retry_a_lock_timeout_five_times_by_default_after_one_second():
    loaded = settings()

    assert (loaded["MIGRATION_LOCK_RETRIES"], loaded["MIGRATION_RETRY_DELAY"]) == (5, 1.0)
    assert loaded["MIGRATION_LOCK_TIMEOUT"] == "1s"


@pytest.mark.parametrize("raw", ["soon", "-1s", "1 min"])
def test_an_unclear_migration_retry_delay_is_refused(raw):
    with pytest.raises(ConfigurationError, match="MIGRATION_RETRY_DELAY must look like 1s"):
        settings(MIGRATION_RETRY_DELAY=raw)


def test_an_empty_env_file_setting_reads_no_env_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("JWT_EXPIRES_SECONDS=120\n")
    monkeypatch.setenv("ENV_FILE", "")
    monkeypatch.delenv("JWT_EXPIRES_SECONDS", raising=False)

    assert load_settings("/tmp/instance")["JWT_EXPIRES_SECONDS"] == 604800


def test_env_file_names_the_file_to_read(tmp_path, monkeypatch):
    env_file = tmp_path / "conduit.env"
    env_file.write_text("JWT_EXPIRES_SECONDS=120\n")
    monkeypatch.setenv("ENV_FILE", str(env_file))
    monkeypatch.delenv("JWT_EXPIRES_SECONDS", raising=False)

    assert load_settings("/tmp/instance")["JWT_EXPIRES_SECONDS"] == 120


def test_server_settings_come_from_the_env_file_under_the_environment(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "PORT=6203\nHOST=0.0.0.0\nWEB_CONCURRENCY=3\nGUNICORN_THREADS=8\nLOG_LEVEL=debug\n"
    )
    for name in ("PORT", "HOST", "WEB_CONCURRENCY", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GUNICORN_THREADS", "2")

    served = server_settings(env_file=env_file)

    assert served.bind == "0.0.0.0:6203"
    assert served.workers == 3
    assert served.threads == 2
    assert served.log_level == "DEBUG"


def test_server_defaults_are_loopback_port_5000_and_one_worker_per_cpu(tmp_path, monkeypatch):
    for name in ("PORT", "HOST", "WEB_CONCURRENCY", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)

    served = server_settings(env_file=tmp_path / "absent.env")

    assert served.bind == "127.0.0.1:5000"
    assert served.workers == (os.cpu_count() or 1)
    assert served.threads == 4
    assert served.control_socket is None


@pytest.mark.parametrize("value", ["verbose", "", " "])
def test_log_level_must_name_a_level(value):
    with pytest.raises(ConfigurationError, match=r"^LOG_LEVEL must be one of DEBUG, INFO"):
        settings(LOG_LEVEL=value)


def test_log_level_is_read_in_any_case():
    assert settings(LOG_LEVEL="warning")["LOG_LEVEL"] == "WARNING"


@pytest.mark.parametrize(
    ("app_env", "log_format"),
    [("development", "text"), ("testing", "json"), ("production", "json")],
)
def test_logs_read_as_text_in_development_and_json_otherwise(app_env, log_format):
    loaded = settings(APP_ENV=app_env, SECRET_KEY=STRONG_KEY, DATABASE_URL="sqlite://")

    assert loaded["LOG_FORMAT"] == log_format


@pytest.mark.parametrize(
    "url", ["mysql://conduit:s3cret@db/conduit", "conduit.db", "sqlite3:///conduit.db"]
)
def test_an_unsupported_database_url_is_one_line_without_the_password(url):
    with pytest.raises(ConfigurationError) as raised:
        settings(DATABASE_URL=url)

    message = str(raised.value)
    assert message.startswith("DATABASE_URL must start with sqlite:/// or postgresql://")
    assert "\n" not in message
    assert "s3cret" not in message


@pytest.mark.parametrize("app_env", ["development", "testing", "production"])
def test_statement_parameters_are_hidden_in_every_environment(app_env):
    loaded = settings(APP_ENV=app_env, SECRET_KEY=STRONG_KEY, DATABASE_URL="sqlite://")

    assert loaded["SQLALCHEMY_ENGINE_OPTIONS"]["hide_parameters"] is True


def test_the_suite_ignores_the_developers_env_file_and_database_url(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("DATABASE_URL=postgresql://me@localhost/my_own_data\n")
    monkeypatch.setenv("ENV_FILE", str(env_file))
    monkeypatch.setenv("DATABASE_URL", "postgresql://me@localhost/my_own_data")

    environment.seal()

    assert (
        create_app({"APP_ENV": "testing"})
        .config["SQLALCHEMY_DATABASE_URI"]
        .startswith("sqlite:///")
    )


def test_a_sealed_environment_keeps_no_setting_and_reads_no_env_file():
    developer = {
        "DATABASE_URL": "postgresql://me@localhost/mine",
        "ENV_FILE": "/home/me/.env",
        "FLASK_APP": "wsgi",
        "PATH": "/bin",
    }

    sealed = sealed_environment(developer)

    assert sealed == {"PATH": "/bin", "ENV_FILE": "", "FLASK_SKIP_DOTENV": "1"}


def test_every_setting_is_documented_and_in_the_example_env_file():
    documented = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")

    assert [name for name in SETTINGS if f"`{name}`" not in documented] == []
    assert [name for name in SETTINGS if not re.search(rf"^(# )?{name}=", example, re.M)] == []
    entries = dotenv_values(PROJECT_ROOT / ".env.example")
    assert [name for name in entries if name not in SETTINGS] == []


def test_a_copy_of_the_example_env_file_starts_as_documented(monkeypatch):
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    example = PROJECT_ROOT / ".env.example"

    loaded = load_settings("/tmp/instance", env_file=example)
    served = server_settings(env_file=example)

    assert loaded["SQLALCHEMY_DATABASE_URI"] == "sqlite:////tmp/instance/conduit.db"
    assert (loaded["LOG_LEVEL"], loaded["LOG_FORMAT"]) == ("INFO", "text")
    assert (served.bind, served.workers, served.threads) == ("127.0.0.1:5000", os.cpu_count(), 4)


def test_flask_settings_shows_each_value_and_where_it_came_from(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "PORT=6203\nDATABASE_URL=postgresql://me:s3cret@db/conduit\nSECRET_KEY="
        + STRONG_KEY
        + f"\nJWT_SIGNING_KEYS=old:{STRONG_KEY}x,new:{STRONG_KEY}y\nJWT_SIGNING_KEY_ID=new"
    )
    monkeypatch.setenv("ENV_FILE", str(env_file))
    monkeypatch.setenv("HOST", "10.0.0.5")
    app = create_app({"APP_ENV": "testing"})

    output = app.test_cli_runner().invoke(args=["settings"]).output

    lines = output.splitlines()
    assert "HOST=10.0.0.5  # environment" in lines
    assert f"PORT=6203  # {env_file}" in lines
    assert f"DATABASE_URL='postgresql://me:***@db/conduit'  # {env_file}" in lines
    assert f"SECRET_KEY='<set>'  # {env_file}" in lines
    assert f"JWT_SIGNING_KEYS='old:<set>,new:<set>'  # {env_file}" in lines
    assert "GUNICORN_THREADS=4  # default" in lines
    assert "# JWT_EXPIRES_SECONDS: 604800 (default)" in lines
    assert "s3cret" not in output
    assert STRONG_KEY not in output


def test_the_suite_keeps_its_backups_out_of_the_projects_backups_folder():
    environment.seal()

    folder = Path(create_app({"APP_ENV": "testing"}).config["BACKUP_DIRECTORY"])

    assert folder != environment.PROJECT_ROOT / "backups"
    assert folder.is_dir()


def test_a_malformed_signing_key_entry_is_refused_without_printing_it():
    with pytest.raises(ConfigurationError) as refused:
        settings(JWT_SIGNING_KEYS=STRONG_KEY)

    assert STRONG_KEY not in str(refused.value)


def test_throttling_is_on_by_default_counting_in_memory_behind_no_proxy():
    loaded = settings()

    assert loaded["RATELIMIT_ENABLED"] is True
    assert loaded["RATELIMIT_STORAGE_URI"] == "memory://"
    assert loaded["TRUSTED_PROXY_COUNT"] == 0
    assert (
        loaded["LOGIN_RATE_LIMIT_PER_ADDRESS"],
        loaded["LOGIN_RATE_LIMIT_PER_ACCOUNT"],
        loaded["REGISTRATION_RATE_LIMIT"],
    ) == ("10 per minute", "100 per hour", "20 per hour")


@pytest.mark.parametrize(
    "name",
    ["LOGIN_RATE_LIMIT_PER_ADDRESS", "LOGIN_RATE_LIMIT_PER_ACCOUNT", "REGISTRATION_RATE_LIMIT"],
)
def test_a_rate_limit_flask_limiter_cannot_read_is_refused(name):
    with pytest.raises(ConfigurationError, match=f"{name} must be a rate limit like"):
        settings(**{name: "ten a minute"})


@pytest.mark.parametrize("uri", ["memcached://cache:11211", "localhost:6379", "mongodb://db"])
def test_rate_limit_storage_other_than_memory_or_redis_is_refused(uri):
    with pytest.raises(ConfigurationError, match="RATELIMIT_STORAGE_URI must start with memory://"):
        settings(RATELIMIT_STORAGE_URI=uri)


def test_a_negative_trusted_proxy_count_is_refused():
    with pytest.raises(ConfigurationError, match="TRUSTED_PROXY_COUNT must be at least 0"):
        settings(TRUSTED_PROXY_COUNT="-1")


def test_flask_settings_masks_the_rate_limit_storage_password(monkeypatch):
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://:s3cret@cache:6379/0")
    app = create_app({"APP_ENV": "testing"})

    output = app.test_cli_runner().invoke(args=["settings", "RATELIMIT_STORAGE_URI"]).output

    assert output == "RATELIMIT_STORAGE_URI='redis://:***@cache:6379/0'  # environment\n"


def test_replica_urls_are_a_comma_separated_list_using_psycopg_3():
    loaded = settings(
        DATABASE_URL="postgresql://u@primary/conduit",
        DATABASE_REPLICA_URLS=" postgres://u@one/conduit, ,postgresql://u@two/conduit ",
    )

    assert loaded["DATABASE_REPLICA_URLS"] == [
        "postgresql+psycopg://u@one/conduit",
        "postgresql+psycopg://u@two/conduit",
    ]


def test_no_replicas_by_default():
    assert settings(DATABASE_URL="postgresql://u@primary/conduit")["DATABASE_REPLICA_URLS"] == []


@pytest.mark.parametrize(
    ("primary", "replicas", "reason"),
    [
        ("sqlite://", "postgresql://u@one/conduit", "needs a postgresql:// DATABASE_URL"),
        ("postgresql://u@primary/conduit", "mysql://u@one/conduit", "must list postgresql://"),
    ],
)
def test_replica_urls_that_cannot_work_stop_startup(primary, replicas, reason):
    with pytest.raises(ConfigurationError, match=reason):
        settings(DATABASE_URL=primary, DATABASE_REPLICA_URLS=replicas)


def test_flask_settings_masks_the_replicas_passwords(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:s3cret@primary/conduit")
    monkeypatch.setenv(
        "DATABASE_REPLICA_URLS", "postgresql://u:s3cret@one/conduit,postgresql://u:s3cret@two/c"
    )
    app = create_app({"APP_ENV": "testing"})

    output = app.test_cli_runner().invoke(args=["settings", "DATABASE_REPLICA_URLS"]).output

    assert output == (
        "DATABASE_REPLICA_URLS='postgresql://u:***@one/conduit,postgresql://u:***@two/c'"
        "  # environment\n"
    )


def test_metrics_are_off_unless_a_metrics_port_is_set(tmp_path):
    assert server_settings(env_file=tmp_path / "none").metrics_port is None
    assert (
        server_settings({"METRICS_PORT": "9464"}, env_file=tmp_path / "none").metrics_port == 9464
    )


def test_a_metrics_port_of_zero_lets_the_kernel_pick_one(tmp_path):
    settings = server_settings({"PORT": "0", "METRICS_PORT": "0"}, env_file=tmp_path / "none")
    assert settings.metrics_port == 0


def test_the_metrics_port_may_not_be_the_api_port(tmp_path):
    with pytest.raises(ConfigurationError, match="METRICS_PORT must differ from PORT"):
        server_settings({"PORT": "6203", "METRICS_PORT": "6203"}, env_file=tmp_path / "none")


@pytest.mark.parametrize("raw", ["jaeger", "zipkin"])
def test_a_traces_exporter_the_app_does_not_ship_is_refused(raw):
    with pytest.raises(ConfigurationError, match="OTEL_TRACES_EXPORTER must be otlp, console"):
        settings(OTEL_TRACES_EXPORTER=raw)


def test_none_or_no_traces_exporter_is_no_tracing():
    assert settings(OTEL_TRACES_EXPORTER="none")["OTEL_TRACES_EXPORTER"] is None
    assert settings()["OTEL_TRACES_EXPORTER"] is None
