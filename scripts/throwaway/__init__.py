"""The throwaway environment: a fresh database, migrated to head, served by gunicorn on loopback.

Everything that needs the app served for a while starts it here: the test
suite (``served_app``, ``served_module`` and its scratch PostgreSQL databases),
the benchmarks (bench/harness.py), ``make fuzz`` and ``make conformance``
(scripts/fuzz.sh, scripts/conformance.sh), the end-to-end tests
(frontend/playwright.config.ts) and ``make throwaway``. Each piece works alone:

- :func:`database`: a new SQLite file or PostgreSQL database (app/db/scratch.py);
- :func:`migrate`: ``flask db upgrade``'s Alembic upgrade to head, in this process;
- :func:`serve`: ``gunicorn -c gunicorn.conf.py`` on 127.0.0.1, on a free port
  unless one is named, until the block ends;
- :func:`environment`: the three in a row, torn down in reverse.

The server is sealed from the developer's settings: it reads no ``.env`` and
none of the app's settings exported in the shell; it gets the caller's
``settings`` on top of :data:`DEFAULT_SETTINGS`, where ``None`` leaves a
setting unset, to the app's own default (``GUNICORN_CMD_ARGS`` still passes
through, for extra gunicorn options).

As a command: ``python -m scripts.throwaway`` (``make throwaway``,
scripts/throwaway/__main__.py).
"""

from __future__ import annotations

import io
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
HOST = "127.0.0.1"  # a throwaway server never listens beyond loopback
STARTUP_SECONDS = 30
STOP_SECONDS = 30
LOG_TAIL_CHARACTERS = 3000

# Two worker processes (each a connection pool of its own), development logs, and no
# throttling: what drives a throwaway server (the test suite, the Postman run, the
# end-to-end tests, the fuzzer) signs up and in many times from one address. A caller
# that wants it passes RATELIMIT_ENABLED=on (the throttling tests do).
Settings = Mapping[str, str | None]  # None: unset, the app's own default

DEFAULT_SETTINGS: dict[str, str] = {
    "APP_ENV": "development",
    "WEB_CONCURRENCY": "2",
    "LOG_LEVEL": "WARNING",
    "LOG_FORMAT": "text",
    "RATELIMIT_ENABLED": "off",
}
_LISTENING = re.compile(r"Listening at: http://[\d.]+:(\d+)")


class ThrowawayError(RuntimeError):
    """The server could not be set up: a taken port, a failed migration, a dead gunicorn."""


@dataclass(frozen=True)
class Server:
    """A running gunicorn: where it answers, and the file its log goes to."""

    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass(frozen=True)
class Environment:
    """A served, migrated throwaway database."""

    database_url: str
    server: Server
    settings: Settings  # the app's settings, SECRET_KEY included

    @property
    def base_url(self) -> str:
        return self.server.base_url


def database(
    kind: str,
    *,
    label: str = "throwaway",
    server_url: str | None = None,
    directory: Path | None = None,
    icu_locale: str | None = None,
) -> AbstractContextManager[str]:
    """A new, empty database's URL, removed afterwards (``app.db.scratch.scratch_database``).

    ``kind`` is ``sqlite`` or ``postgresql``; the PostgreSQL database is named
    ``conduit_<label>_<hex>`` on ``server_url``. Entering raises
    ``ScratchUnavailable`` when PostgreSQL cannot be reached.
    """
    from app.db.scratch import scratch_database

    return scratch_database(
        kind, label=label, server_url=server_url, directory=directory, icu_locale=icu_locale
    )


def migrate(database_url: str, settings: Settings | None = None, target: str = "heads") -> None:
    """Upgrade ``database_url`` to ``target`` (default: the migrations' head), quietly.

    Runs in this process with an app built from ``settings``; raises
    :class:`ThrowawayError` naming the revision's error when the upgrade fails.
    """
    from alembic import command

    from app import close_app, create_app
    from app.db.alembic_setup import alembic_config

    # It migrates and serves no one: no throttling (nor its warning about memory://).
    app = create_app(
        {**_chosen(settings or {}), "DATABASE_URL": database_url, "RATELIMIT_ENABLED": "off"}
    )
    said = io.StringIO()  # what revisions print (a backfill's progress): quiet unless it fails
    try:
        with app.app_context(), redirect_stdout(said), redirect_stderr(said):
            command.upgrade(alembic_config(), target)
    except Exception as error:
        raise ThrowawayError(f"migrating to {target} failed: {error}\n{said.getvalue()}") from error
    finally:
        close_app(app)


@contextmanager
def serve(
    database_url: str,
    *,
    settings: Settings | None = None,
    app: str = "wsgi:app",
    port: int = 0,
    probe: str = "/healthz",
    workdir: Path | None = None,
    root: Path = ROOT,
) -> Iterator[Server]:
    """gunicorn serving ``app`` on ``database_url`` at 127.0.0.1 until the block ends.

    ``root`` is the checkout whose code and ``gunicorn.conf.py`` serve (default:
    this one; the previous-release gate serves a released commit's worktree).

    ``port`` 0 lets the kernel pick a free one (read back from gunicorn's log,
    so parallel runs never collide). The block starts once ``probe`` answers
    200. On the way out gunicorn gets SIGTERM (graceful), then SIGKILL after
    30 s. Its log is ``gunicorn-<random>.log`` in ``workdir`` (default: a
    temporary folder, removed afterwards).

    Raises :class:`ThrowawayError` when ``port`` is taken, or gunicorn exits or
    does not answer within 30 s (the message ends with its log).
    """
    _check_port(port)
    with _folder(workdir) as folder:
        environment = server_environment(database_url, settings or {}, port, root)
        log_path = folder / f"gunicorn-{secrets.token_hex(4)}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
                [
                    str(GUNICORN),
                    "-c",
                    str(root / "gunicorn.conf.py"),
                    # Several servers may run at once: none takes another's control socket.
                    "--no-control-socket",
                    # Its "Listening at" line tells the port, whatever LOG_LEVEL says.
                    "--log-level",
                    "info",
                    app,
                ],
                cwd=folder,
                env=environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C or hang-up meant for the caller does not
                # reach it, only the orderly SIGTERM below does (gthread workers
                # signalled twice at once can deadlock until the graceful timeout).
                start_new_session=True,
            )
        try:
            base_url = _wait_until_answering(process, log_path, probe)
            yield Server(base_url=base_url, log_path=log_path, process=process)
        finally:
            _stop(process)


def server_environment(
    database_url: str, settings: Settings, port: int, root: Path = ROOT
) -> dict[str, str]:
    """The server's environment: this one without the app's settings, then ``settings``."""
    from app.config import sealed_environment

    return {
        **sealed_environment(os.environ),
        "PYTHONPATH": str(root),
        **_chosen(settings),
        "DATABASE_URL": database_url,
        "HOST": HOST,
        "PORT": str(port),
    }


@contextmanager
def environment(
    kind: str = "sqlite",
    *,
    settings: Settings | None = None,
    port: int = 0,
    probe: str = "/healthz",
    workdir: Path | None = None,
    label: str = "throwaway",
    server_url: str | None = None,
) -> Iterator[Environment]:
    """A fresh ``kind`` database, migrated to head and served; all of it gone afterwards.

    ``settings`` go to the migration and the server on top of
    :data:`DEFAULT_SETTINGS` and a random ``SECRET_KEY``. The other arguments
    are :func:`database`'s and :func:`serve`'s.
    """
    _check_port(port)  # before any work
    chosen = {"SECRET_KEY": secrets.token_urlsafe(32), **(settings or {})}
    with (
        _folder(workdir) as folder,
        database(kind, label=label, server_url=server_url, directory=folder) as url,
    ):
        migrate(url, chosen)
        with serve(url, settings=chosen, port=port, probe=probe, workdir=folder) as server:
            yield Environment(database_url=url, server=server, settings=chosen)


def _chosen(settings: Settings) -> dict[str, str]:
    """:data:`DEFAULT_SETTINGS` under ``settings``, without the ones set to ``None``."""
    merged = {**DEFAULT_SETTINGS, **settings}
    return {name: value for name, value in merged.items() if value is not None}


@contextmanager
def _folder(given: Path | None) -> Iterator[Path]:
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="conduit-throwaway-") as folder:
        yield Path(folder)


def _check_port(port: int) -> None:
    if not port:
        return
    with socket.socket() as probe:
        # As gunicorn binds: a port whose last connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise ThrowawayError(
                f"port {port} is taken: pick another, or leave it unset for a free one"
            ) from None


def _wait_until_answering(process: subprocess.Popen[bytes], log_path: Path, probe: str) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ThrowawayError(f"gunicorn exited at startup:\n{_tail(log_path)}")
        listening = _LISTENING.search(log_path.read_text(errors="replace"))
        if listening:
            base_url = f"http://{HOST}:{listening[1]}"
            if _answers(base_url + probe):
                return base_url
        time.sleep(0.1)
    raise ThrowawayError(
        f"gunicorn did not answer {probe} within {STARTUP_SECONDS} s:\n{_tail(log_path)}"
    )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback http)
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-LOG_TAIL_CHARACTERS:]
