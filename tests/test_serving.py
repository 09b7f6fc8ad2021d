"""gunicorn: settings from the environment and .env, JSON lines, one-line refusals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.served  # gunicorn in a subprocess

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
STRONG_KEY = "k" * 40


def _environment(**env: str) -> dict[str, str]:
    """The (sealed) test environment with ``PYTHONPATH`` and ``env``."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **env}


def _start(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
        cwd=ROOT,
        env=_environment(HOST="127.0.0.1", PORT="0", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _python(script: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by this Python in a process of its own, in the test environment."""
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _effective_config(**env: str) -> dict[str, str]:
    """gunicorn's own view of its settings (``--print-config``): name -> value."""
    completed = subprocess.run(
        [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "--print-config", "wsgi:app"],
        cwd=ROOT,
        env=_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pairs = re.findall(r"^(\w+) +=(?: (.*))?$", completed.stdout, re.M)
    return {name: value for name, value in pairs}


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (
            {"DATABASE_URL": "postgresql://db/conduit"},
            "SECRET_KEY must be set to a unique value in production",
        ),
        (
            {"SECRET_KEY": "short", "DATABASE_URL": "postgresql://db/conduit"},
            "SECRET_KEY must be at least 32 characters in production",
        ),
        ({"SECRET_KEY": "k" * 40}, "DATABASE_URL must be set in production"),
    ],
    ids=["no secret key", "short secret key", "no database url"],
)
def test_gunicorn_refuses_unsafe_production_settings(env: dict[str, str], reason: str) -> None:
    completed = _start(APP_ENV="production", **env)
    assert completed.returncode != 0
    assert completed.stderr.strip().splitlines()[-1] == f"configuration error: {reason}"
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("log_level", ["verbose", ""])
def test_gunicorn_refuses_a_log_level_that_is_not_one_in_one_line(log_level: str) -> None:
    completed = _start(LOG_LEVEL=log_level)

    assert completed.returncode != 0
    assert completed.stderr.strip().splitlines() == [
        "configuration error: LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL "
        f"(or unset: INFO), got {repr(log_level) if log_level else 'empty'}"
    ]


def test_gunicorn_reads_its_settings_from_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "PORT=6203\nHOST=0.0.0.0\nWEB_CONCURRENCY=3\nGUNICORN_THREADS=6\nLOG_LEVEL=warning\n"
    )

    config = _effective_config(ENV_FILE=str(env_file))

    assert config["bind"] == "['0.0.0.0:6203']"
    assert (config["workers"], config["threads"], config["loglevel"]) == ("3", "6", "warning")


def test_the_environment_outranks_the_env_file_for_gunicorn(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=6203\nWEB_CONCURRENCY=3\n")

    config = _effective_config(ENV_FILE=str(env_file), PORT="6204")

    assert (config["bind"], config["workers"]) == ("['127.0.0.1:6204']", "3")


def test_gunicorn_opens_no_shared_control_socket() -> None:
    assert _effective_config()["control_socket_disable"] == "True"


def test_a_control_socket_is_opened_only_where_it_is_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "conduit.ctl"

    config = _effective_config(GUNICORN_CONTROL_SOCKET=str(path))

    assert (config["control_socket"], config["control_socket_disable"]) == (str(path), "False")


def test_in_production_every_line_gunicorn_writes_is_json(tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT,
            env=_environment(
                APP_ENV="production",
                SECRET_KEY=STRONG_KEY,
                DATABASE_URL=f"sqlite:///{tmp_path / 'conduit.db'}",
                PORT="0",  # the kernel's pick, read back from the "Listening at" line
                WEB_CONCURRENCY="1",
            ),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            listening = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())
            try:
                assert listening, "not listening yet"
                url = f"http://127.0.0.1:{listening[1]}/healthz"
                with urllib.request.urlopen(url, timeout=2):
                    break
            except (AssertionError, OSError):
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "gunicorn did not come up"
                time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    lines = log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    gunicorn_lines = [entry["message"] for entry in entries if entry["logger"] == "gunicorn.error"]
    assert any(message.startswith("Listening at: ") for message in gunicorn_lines)
    assert any(message.startswith("Shutting down") for message in gunicorn_lines)
    (request,) = [entry for entry in entries if entry["logger"] == "app.request"]
    assert (request["path"], request["status"]) == ("/healthz", 200)
    assert [entry for entry in entries if "healthz" in json.dumps(entry)] == [request]


def test_gunicorn_builds_no_access_line_of_its_own() -> None:
    """The application writes the access line; gunicorn's logger would build one to discard.

    In a process of its own: a gunicorn logger applies its logging configuration there.
    """
    script = (
        "from gunicorn import glogging\n"
        "from gunicorn.config import Config\n"
        "from app.web.request_log import gunicorn_logconfig\n"
        "from app.web.worker import Logger\n"
        "config = Config()\n"
        "config.set('logconfig_dict', gunicorn_logconfig('json'))\n"
        "print(glogging.Logger(config).access_log_enabled, Logger(config).access_log_enabled)\n"
    )
    completed = _python(script)

    assert completed.stdout.split()[-2:] == ["True", "False"]
    assert _effective_config()["logger_class"] == "app.web.worker.Logger"


def test_the_master_freezes_the_preloaded_app_before_each_fork() -> None:
    """A worker's full garbage collections then skip the objects the preloaded app built."""
    script = (
        "import gc, runpy\n"
        "hooks = runpy.run_path('gunicorn.conf.py')\n"
        "import app, wsgi\n"
        "before = gc.get_freeze_count()\n"
        "hooks['pre_fork'](None, None)\n"
        "print(before, gc.get_freeze_count())\n"
    )
    completed = _python(script)

    before, after = map(int, completed.stdout.split()[-2:])
    assert before == 0
    assert after > 10_000
