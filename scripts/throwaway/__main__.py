"""The throwaway environment as a command: serve the app, or run a command against it.

``make throwaway``, scripts/fuzz.sh, scripts/conformance.sh and the end-to-end
tests (frontend/playwright.config.ts) run it::

    python -m scripts.throwaway [--database sqlite|postgresql] [--port N] [-- COMMAND …]

With a COMMAND, runs it with ``THROWAWAY_URL`` (the server's base URL, e.g.
``http://127.0.0.1:41234``) and ``THROWAWAY_DATABASE_URL`` set (and sealed
like the server), tears everything down and exits with its status, shell-style
(128+N when signal N ended it; 127 when it cannot be found). Without one,
serves until interrupted: Ctrl-C (SIGINT) is the way to stop it and exits 0
after cleaning up; SIGTERM and SIGHUP exit 128+N. With a command, Ctrl-C,
SIGTERM and SIGHUP are passed on to it and clean up as the normal end does.
SIGINT is handled even when the caller started this with it ignored (a
background job of a script), so a signal always stops it. A port that is taken, a failed
migration or a server that does not come up is one ``throwaway server: …``
line (with gunicorn's log) and exit 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from types import FrameType

from scripts.throwaway import (
    LOG_TAIL_CHARACTERS,
    Environment,
    Server,
    ThrowawayError,
    environment,
)

COMMAND_STOP_SECONDS = 10  # a command stopped by a signal has this long to finish


def main(argv: list[str] | None = None) -> int:
    """``python -m scripts.throwaway``: see this module's docstring."""
    arguments = _parser().parse_args(argv)
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    from app.config import seal_environment

    seal_environment()  # this process migrates with the app too
    from app.db.scratch import ScratchUnavailable

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    # Python leaves SIGINT ignored when it started ignored (a background job, a
    # test runner's worker): Ctrl-C and a passed-on SIGINT must stop this too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with environment(
            arguments.database, port=arguments.port, probe=arguments.probe, label="throwaway"
        ) as served:
            try:
                print(
                    f"throwaway server: gunicorn on {served.base_url} "
                    f"({arguments.database}, pid {served.server.process.pid})",
                    file=sys.stderr,
                    flush=True,
                )
                if command:
                    return _run(command, served)
                return _serve_until_stopped(served.server)
            except KeyboardInterrupt:
                if command:  # before the command started (_run answers for it once it has)
                    raise
                # Ctrl-C is how this mode ends, once the server is announced (a caller
                # may signal as soon as it reads the line): a clean exit, cleaned up below
    except (ThrowawayError, ScratchUnavailable) as error:
        print(f"throwaway server: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print("throwaway server: stopped; server and database removed", file=sys.stderr)
    return 0


def _run(command: list[str], served: Environment) -> int:
    """Run ``command`` against ``served``; its exit status, shell-style (128+N for signal N).

    Stopped while it runs (Ctrl-C, SIGTERM, SIGHUP), this passes the signal on
    and gives it :data:`COMMAND_STOP_SECONDS` to finish before killing it.
    """
    environment = {
        **os.environ,
        "THROWAWAY_URL": served.base_url,
        "THROWAWAY_DATABASE_URL": served.database_url,
    }
    try:
        child = subprocess.Popen(command, env=environment)  # noqa: S603 (the caller's own)
    except OSError as error:
        print(f"throwaway server: cannot run {command[0]}: {error.strerror}", file=sys.stderr)
        return 127 if isinstance(error, FileNotFoundError) else 126
    try:
        status = child.wait()
    except BaseException as stopped:
        signum = stopped.signum if isinstance(stopped, _Stopped) else signal.SIGINT
        if child.poll() is None:
            child.send_signal(signum)
        try:
            child.wait(timeout=COMMAND_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    return 128 - status if status < 0 else status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.throwaway",
        description="Serve the app on a fresh, migrated database; remove it all afterwards.",
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--port", type=tcp_port, default=0, help="default: a free port")
    parser.add_argument("--probe", default="/healthz", help="the path that answers 200 when up")
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        help="run it with THROWAWAY_URL set, then tear down (default: serve until Ctrl-C)",
    )
    return parser


def tcp_port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(text)
    return port


class _Stopped(SystemExit):
    """SIGTERM or SIGHUP: exit 128+N once the blocks unwind (server stopped, database gone)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise _Stopped(signum)


def _serve_until_stopped(server: Server) -> int:
    status = server.process.wait()
    tail = server.log()[-LOG_TAIL_CHARACTERS:]
    print(f"throwaway server: gunicorn stopped (exit {status}):\n{tail}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
