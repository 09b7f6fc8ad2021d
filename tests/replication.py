"""A PostgreSQL primary and a streaming replica of its own, for the replica-routing tests.

The shared test server (tests/databases.py) has no replication entry in its
``pg_hba.conf``, so the suite starts its own pair from the installed
PostgreSQL binaries (``initdb``, ``pg_ctl``, ``pg_basebackup -R``): both on
free loopback ports, in a temporary directory removed afterwards. ``initdb``
refuses to run as root; as root every command runs as the ``postgres`` user
(``runuser``), which owns the directory.

:func:`unavailable_reason` says why a pair cannot be started (no binaries,
root without a ``postgres`` user); the fixture skips then, or fails under
``CI=true``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.listening import DEADLINE_SECONDS

DATABASE = "conduit"
START_SECONDS = 30


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` (``PG_BINDIR`` overrides), or ``None``."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: (
            int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _run_as() -> str | None:
    """The user to run the server as: ``postgres`` when we are root, else ourselves."""
    return "postgres" if os.geteuid() == 0 else None


def unavailable_reason() -> str | None:
    """``None`` when a primary and replica can be started here, else why not."""
    binaries = bin_dir()
    if binaries is None or not (binaries / "initdb").exists():
        return "no PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) found: install PostgreSQL"
    if _run_as() is not None:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and initdb refuses root: no 'postgres' user to run it as"
        if shutil.which("runuser") is None:
            return "running as root without runuser: cannot run initdb as 'postgres'"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """One PostgreSQL server of the pair."""

    directory: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def conninfo(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


class Pair:
    """A primary and one streaming replica (hot standby)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.binaries = bin_dir()
        self.primary = Server(root / "primary", _free_port(), root / "primary.log")
        self.replica = Server(root / "replica", _free_port(), root / "replica.log")
        self.extra: list[Server] = []

    # -- running commands as the server's user --------------------------------

    def _command(self, name: str, *args: str) -> list[str]:
        command = [str(self.binaries / name), *args] if self.binaries else [name, *args]
        user = _run_as()
        return ["runuser", "-u", user, "--", *command] if user else command

    def run(self, name: str, *args: str) -> None:
        result = subprocess.run(
            self._command(name, *args), capture_output=True, text=True, cwd=self.root, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed: {result.stderr or result.stdout}")

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        primary, replica = self.primary, self.replica
        self.run("initdb", "-D", str(primary.directory), "-U", "postgres", "--auth=trust",
                 "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        with open(primary.directory / "postgresql.conf", "a") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "wal_level = replica\nmax_wal_senders = 4\n"
                "fsync = off\nfull_page_writes = off\nshared_buffers = 16MB\n"
                "max_connections = 60\n"
            )
        self.start_new_server(primary)
        with psycopg.connect(primary.conninfo("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                 "-D", str(replica.directory), "-R", "-X", "stream", "-c", "fast",
                 "--no-sync")  # fmt: skip
        with open(replica.directory / "postgresql.conf", "a") as conf:
            conf.write("hot_standby = on\n")
        self.start_new_server(replica)
        self.wait_until_streaming()

    def start_new_server(self, server: Server, attempts: int = 5) -> None:
        """Start a server for the first time on a free port, another if that one is taken.

        PostgreSQL cannot listen on port 0 and say which port it got, so the
        port is found free first; another process may take it before the server
        binds it, and then the next free one is tried (the last ``port =`` line
        of postgresql.conf wins).
        """
        for attempt in range(attempts):
            with open(server.directory / "postgresql.conf", "a") as conf:
                conf.write(f"port = {server.port}\n")
            logged = server.log.stat().st_size if server.log.exists() else 0
            try:
                self.start_server(server)
                return
            except RuntimeError:
                with open(server.log, "rb") as log:
                    log.seek(logged)
                    taken = b"already in use" in log.read()
                if not taken or attempt == attempts - 1:
                    raise
                server.port = _free_port()

    def start_server(self, server: Server) -> None:
        self.run("pg_ctl", "-D", str(server.directory), "-l", str(server.log), "-w",
                 "-t", str(START_SECONDS), "start")  # fmt: skip

    def stop_server(self, server: Server) -> None:
        self.run("pg_ctl", "-D", str(server.directory), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        for server in (*self.extra, self.replica, self.primary):
            if (server.directory / "postmaster.pid").exists():
                with suppress(RuntimeError):
                    self.stop_server(server)

    def add_replica(self, label: str) -> Server:
        """Another streaming replica of the primary (the tests may promote it)."""
        server = Server(self.root / label, _free_port(), self.root / f"{label}.log")
        self.extra.append(server)
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U",
                 "postgres", "-D", str(server.directory), "-R", "-X", "stream", "-c", "fast",
                 "--no-sync")  # fmt: skip
        with open(server.directory / "postgresql.conf", "a") as conf:
            conf.write("hot_standby = on\n")
        self.start_new_server(server)
        return server

    def promote(self, server: Server) -> None:
        self.run("pg_ctl", "-D", str(server.directory), "-w", "promote")

    # -- what the tests do to the replica -----------------------------------

    def wait_until_streaming(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.replica.conninfo(), connect_timeout=2) as connection:
                    row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
                with psycopg.connect(self.primary.conninfo(), connect_timeout=2) as connection:
                    senders = connection.execute("SELECT count(*) FROM pg_stat_replication")
                    streaming = senders.fetchone()
                if row and row[0] and streaming and streaming[0] > 0:
                    return
            except psycopg.OperationalError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the replica did not start streaming: see {self.replica.log}")

    def replica_sql(self, statement: str) -> object:
        with psycopg.connect(self.replica.conninfo(), autocommit=True) as connection:
            row = connection.execute(statement).fetchone()
            return row[0] if row else None

    def pause_replay(self) -> None:
        self.replica_sql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + DEADLINE_SECONDS  # a busy machine stalls, it does not fail
        while self.replica_sql("SELECT pg_get_wal_replay_pause_state()") != "paused":
            if time.monotonic() > deadline:
                raise RuntimeError("replay did not pause")
            time.sleep(0.02)

    def resume_replay(self) -> None:
        self.replica_sql("SELECT pg_wal_replay_resume()")

    def wait_for_replay(self) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        with psycopg.connect(self.primary.conninfo(), autocommit=True) as connection:
            row = connection.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        target = row[0] if row else None
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            caught_up = self.replica_sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
            if caught_up:
                return
            time.sleep(0.02)
        raise RuntimeError("the replica did not catch up")


@contextmanager
def primary_and_replica() -> Iterator[Pair]:
    """Start a pair in a fresh temporary directory; stop it and remove the directory after."""
    root = Path(tempfile.mkdtemp(prefix="conduit-replication-"))
    user = _run_as()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    root.chmod(0o700)
    pair = Pair(root)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()
        shutil.rmtree(root, ignore_errors=True)
