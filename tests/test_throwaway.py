"""The throwaway environment (scripts/throwaway/): fresh, migrated, served, and gone afterwards.

The concurrency tests, the benchmarks, ``make fuzz``, ``make conformance`` and
the end-to-end tests all stand on it, so what it promises is pinned here: the
database is new and at head, the server answers on loopback, and everything
is removed when the block ends, also when the block fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from sqlalchemy import create_engine, text

from app.config import normalize_database_url
from scripts import throwaway
from scripts.throwaway import Environment
from tests import databases
from tests.databases import require_postgres

pytestmark = pytest.mark.served  # gunicorn and the throwaway command, in subprocesses

ROOT = Path(__file__).resolve().parent.parent
HEAD = (ROOT / "migrations" / "HEAD").read_text().strip()


@pytest.fixture(params=databases.PARAMS)
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)


def _environment(kind: str, tmp_path: Path, **options: Any) -> AbstractContextManager[Environment]:
    return throwaway.environment(
        kind, workdir=tmp_path, label="test_throwaway", server_url=databases.POSTGRES_URL, **options
    )


def _revision(database_url: str) -> str:
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


def _exists(database_url: str) -> bool:
    if database_url.startswith("sqlite"):
        return Path(database_url.removeprefix("sqlite:///")).exists()
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(databases.POSTGRES_URL) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None


def _refused(base_url: str) -> bool:
    try:
        requests.get(base_url + "/healthz", timeout=2)
    except requests.ConnectionError:
        return True
    return False


def test_the_database_is_migrated_to_head_and_served_on_loopback(kind: str, tmp_path: Path) -> None:
    with _environment(kind, tmp_path) as served:
        assert _revision(served.database_url) == HEAD
        assert served.base_url.startswith("http://127.0.0.1:")
        response = requests.get(served.base_url + "/api/articles", timeout=10)

    assert response.json() == {"articles": [], "articlesCount": 0}


def test_everything_is_gone_after_the_block(kind: str) -> None:
    with throwaway.environment(
        kind, label="test_throwaway", server_url=databases.POSTGRES_URL
    ) as served:
        assert _exists(served.database_url)

    assert served.server.process.poll() is not None
    assert _refused(served.base_url)
    assert not _exists(served.database_url)


def test_a_failing_block_still_stops_the_server_and_drops_the_database(kind: str) -> None:
    with (
        pytest.raises(RuntimeError, match="the block failed"),
        throwaway.environment(
            kind, label="test_throwaway", server_url=databases.POSTGRES_URL
        ) as served,
    ):
        raise RuntimeError("the block failed")

    assert served.server.process.poll() is not None
    assert not _exists(served.database_url)


def test_the_settings_given_reach_the_server(tmp_path: Path) -> None:
    with _environment(
        "sqlite", tmp_path, settings={"CORS_ORIGINS": "http://front.example"}
    ) as served:
        response = requests.get(
            served.base_url + "/api/tags", headers={"Origin": "http://front.example"}, timeout=10
        )

    assert response.headers["Access-Control-Allow-Origin"] == "http://front.example"


def test_the_server_reads_neither_env_files_nor_exported_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENV_FILE", "/somewhere/.env")
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("CORS_ORIGINS", "http://exported.example")

    environment = throwaway.server_environment("sqlite:///x.db", {"APP_ENV": "testing"}, 0)

    assert environment["ENV_FILE"] == ""
    assert environment["LOG_FORMAT"] == throwaway.DEFAULT_SETTINGS["LOG_FORMAT"]
    assert "CORS_ORIGINS" not in environment
    assert environment["APP_ENV"] == "testing"
    assert environment["DATABASE_URL"] == "sqlite:///x.db"


def test_a_setting_given_as_none_is_left_to_the_apps_default() -> None:
    environment = throwaway.server_environment("sqlite:///x.db", {"LOG_FORMAT": None}, 0)

    assert "LOG_FORMAT" not in environment
    assert environment["WEB_CONCURRENCY"] == throwaway.DEFAULT_SETTINGS["WEB_CONCURRENCY"]


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with (
            pytest.raises(throwaway.ThrowawayError, match=f"port {port} is taken"),
            _environment("sqlite", tmp_path, port=port),
        ):
            pass

    assert not (tmp_path / "conduit.db").exists()


def _command(*arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.throwaway", *arguments],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_runs_against_the_server_and_its_status_is_passed_on() -> None:
    completed = _command("--", "bash", "-c", 'curl -fsS "$THROWAWAY_URL/api/tags" && exit 7')

    assert completed.returncode == 7, completed.stderr
    assert completed.stdout == '{"tags":[]}\n'


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (["sh", "-c", "kill -9 $$"], 128 + 9),
        (["/no/such/command"], 127),
    ],
    ids=["killed by a signal", "not found"],
)
def test_the_commands_end_is_reported_as_a_shell_would(command: list[str], status: int) -> None:
    completed = _command("--", *command)

    assert completed.returncode == status, completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stopped_run_passes_the_signal_on_and_removes_everything(
    signum: signal.Signals, tmp_path: Path
) -> None:
    told = tmp_path / "told"
    script = (  # the trap is set before the file says the command started
        f"trap 'echo stopped >> {told}; exit 0' TERM HUP INT; "
        f'echo "$THROWAWAY_URL $THROWAWAY_DATABASE_URL" > {told}; '
        "while :; do sleep 0.1; done"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.throwaway", "--", "bash", "-c", script],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not told.exists() or not told.read_text().strip():
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.1)
        base_url, database_url = told.read_text().split()
        process.send_signal(signum)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 128 + signum
    assert told.read_text().splitlines()[-1] == "stopped"
    assert _refused(base_url)
    assert not _exists(database_url)


def test_a_server_that_does_not_come_up_is_one_line_with_its_log() -> None:
    completed = _command("--", "echo", "served", GUNICORN_CMD_ARGS="--worker-class no.such.Worker")

    assert completed.returncode == 1
    assert "served" not in completed.stdout
    assert "throwaway server: gunicorn exited at startup:" in completed.stderr
    assert "no.such.Worker" in completed.stderr


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 0)],
    ids=["terminated: 128+15", "ctrl-c: a clean exit"],
)
def test_without_a_command_it_serves_until_stopped_and_then_cleans_up(
    signum: signal.Signals, status: int
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.throwaway", "--database", "sqlite"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        announced = process.stderr.readline()
        assert announced.startswith("throwaway server: gunicorn on http://127.0.0.1:"), announced
        base_url = announced.split(" on ", 1)[1].split(" ", 1)[0]
        assert requests.get(base_url + "/healthz", timeout=10).status_code == 200

        process.send_signal(signum)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    assert process.returncode == status
    assert _refused(base_url)
