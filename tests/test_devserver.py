"""The development server (make run): reloads, one readable line per request, schema warnings."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from app import MIGRATIONS_DIRECTORY, close_app
from app.web.devserver import DatabaseUnreachable, schema_warnings
from tests.apps import make_app

ROOT = Path(__file__).resolve().parent.parent
REVISIONS = len(list((Path(MIGRATIONS_DIRECTORY) / "versions").glob("*.py")))


@pytest.fixture
def app_on(tmp_path: Path) -> Iterator:
    """``app_on(url, migrations=None)``: an app on that database, engines disposed after."""
    made: list[Flask] = []

    def build(url: str, migrations: Path | None = None) -> Flask:
        app = make_app(url, MIGRATIONS_DIRECTORY=str(migrations or MIGRATIONS_DIRECTORY))
        made.append(app)
        return app

    yield build
    for app in made:
        close_app(app)


MODEL_CHANGE = "234cf5ebce0c"  # users.username_key and email_key


@pytest.fixture
def migrations_without_the_last_revision(tmp_path: Path) -> Path:
    """A copy of migrations/ as if the identity keys (a model change) had no migration yet.

    That revision and every one after it are left out (later ones, such as the
    PostgreSQL change triggers, change nothing the models describe).
    """
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIRECTORY, copy, ignore=shutil.ignore_patterns("__pycache__"))
    revisions = sorted((copy / "versions").glob("*.py"))
    (first_left_out,) = [path for path in revisions if f"_{MODEL_CHANGE}_" in path.name]
    for path in revisions[revisions.index(first_left_out) :]:
        path.unlink()
    return copy


def test_pending_migrations_are_a_warning(app_on, tmp_path: Path) -> None:
    app = app_on(f"sqlite:///{tmp_path / 'conduit.db'}")

    (warning,) = schema_warnings(app)

    assert warning.startswith(f"{REVISIONS} migration(s) pending (")
    assert warning.endswith("): run make migration-run")


def test_models_that_differ_from_the_migrations_are_a_warning(
    app_on, tmp_path: Path, migrations_without_the_last_revision: Path
) -> None:
    app = app_on(f"sqlite:///{tmp_path / 'conduit.db'}", migrations_without_the_last_revision)
    with app.app_context():
        upgrade(directory=str(migrations_without_the_last_revision))

    (warning,) = schema_warnings(app)

    assert warning.startswith("the models changed without a migration (make migration-generate")
    assert warning.split("): ", 1)[1]  # the differences, listed


def test_a_database_at_head_that_matches_the_models_has_no_warning(app_on, tmp_path: Path) -> None:
    app = app_on(f"sqlite:///{tmp_path / 'conduit.db'}")
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIRECTORY)

    assert schema_warnings(app) == []


def test_a_postgresql_database_that_does_not_exist_names_createdb(
    app_on, postgres_url: str
) -> None:
    url = make_url(postgres_url).set(database="conduit_no_such_database")
    app = app_on(url.render_as_string(hide_password=False))

    with pytest.raises(DatabaseUnreachable) as raised:
        schema_warnings(app)

    message = str(raised.value)
    assert message.startswith('DATABASE_URL names the database "conduit_no_such_database"')
    assert "createdb " in message
    assert message.endswith("conduit_no_such_database`, or point DATABASE_URL at another")


@pytest.mark.served
def test_flask_db_run_on_a_missing_database_is_one_line(postgres_url: str) -> None:
    url = make_url(postgres_url).set(database="conduit_no_such_database")
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "db", "run"],
        cwd=ROOT,
        env={
            **os.environ,
            "FLASK_APP": "wsgi",
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": url.render_as_string(hide_password=False),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 1
    (line,) = completed.stderr.strip().splitlines()
    assert line.startswith('Error: DATABASE_URL names the database "conduit_no_such_database"')
    assert "createdb" in line


# --- the server itself --------------------------------------------------------------


# werkzeug's start-up line: the port it bound, which PORT=0 left to the kernel.
RUNNING_ON = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


class DevServer:
    def __init__(self, process: subprocess.Popen[str], log: Path) -> None:
        self.process, self.log = process, log
        self.port = 0

    def get(self, path: str) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as reply:
            return int(reply.status)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text not in (output := self.log.read_text()):
            assert self.process.poll() is None, output
            assert time.monotonic() < deadline, f"{text!r} not in:\n{output}"
            time.sleep(0.2)
        return output

    def wait_until_serving(self) -> None:
        found = RUNNING_ON.search(self.wait_for("Running on http://"))
        assert found is not None, self.log.read_text()
        self.port = int(found.group(1))
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/healthz")
                return
            except OSError:
                assert self.process.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.2)


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """python -m app.web.devserver on an empty SQLite database, set up by .env as make run is.

    ``PORT=0``: the kernel picks the port as the server binds it (a port found
    free beforehand may be taken by then), and werkzeug's log line tells it.
    """
    folder = tmp_path_factory.mktemp("devserver")
    env_file = folder / ".env"
    env_file.write_text(f"PORT=0\nDATABASE_URL=sqlite:///{folder / 'conduit.db'}\n")
    log = folder / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.web.devserver"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "ENV_FILE": str(env_file)},
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = DevServer(process, log)
    try:
        server.wait_until_serving()
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_development_server_warns_at_start_about_pending_migrations(
    dev_server: DevServer,
) -> None:
    pending = f"WARNING app.web.devserver: schema: {REVISIONS} migration(s) pending"
    assert pending in dev_server.log.read_text()


def test_the_development_server_logs_one_readable_line_per_request(dev_server: DevServer) -> None:
    dev_server.get("/healthz?probe=one-line")

    output = dev_server.wait_for("GET /healthz 200")
    assert output.count("GET /healthz") == output.count(" INFO    GET /healthz 200 ")
    assert "HTTP/1.1" not in output  # werkzeug's own access line


def test_the_development_server_reloads_when_a_source_file_changes(dev_server: DevServer) -> None:
    source = ROOT / "app" / "health" / "routes.py"
    before = dev_server.log.read_text().count("Detected change in")
    original = source.stat()
    # Later than any modification time the reloader has seen, without waiting out
    # its one-second polling or the file system's timestamp granularity.
    later = original.st_mtime_ns + 60 * 10**9
    os.utime(source, ns=(original.st_atime_ns, later))
    try:
        dev_server.wait_for("Detected change in")
    finally:
        os.utime(source, ns=(original.st_atime_ns, original.st_mtime_ns))
    assert dev_server.log.read_text().count("Detected change in") == before + 1
    dev_server.wait_until_serving()


@pytest.mark.served
def test_the_development_server_does_not_serve_production() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "app.web.devserver"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "APP_ENV": "production"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines() == [
        "configuration error: the development server does not serve APP_ENV=production; "
        "use make serve (gunicorn)"
    ]
