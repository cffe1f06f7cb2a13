"""The demo's embedded loan server: ``loanserver serve`` in a child process on 127.0.0.1.

The kiosk never imports ``loanserver`` (DESIGN rule 3): the demo starts the server as
the operator would (``python -m loanserver serve``) with a SQLite database and a pepper
file in a temporary directory, waits until ``/health`` answers, and sets up its data
with ``python -m loanserver admin ...`` commands. ``stop()`` ends the child on every exit
path (the context manager; an ``atexit`` hook when the demo dies of an exception; on
Linux the kernel's parent-death signal when the demo is killed outright).
The server's request log goes to a file beside the database, shown when it fails.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

START_TIMEOUT_S = 30.0  # interpreter, FastAPI, migration: seconds on a Pi
ADMIN_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
HEALTH_TIMEOUT_S = 2.0
START_ATTEMPTS = 3  # the free port may be taken between choosing and binding it
LOG_TAIL_LINES = 5
# Run first in the server's process, then exec'd away (Linux): the kernel sends the server
# SIGTERM when the demo dies, even by SIGKILL, so no server is ever left behind. The
# check of the parent's pid covers a demo that died before prctl took effect.
ORPHAN_GUARD = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class ServerError(Exception):
    """The embedded server would not start, or an admin command failed (one line)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoanServerProcess:
    """A loan server child on a free 127.0.0.1 port, its database in a temporary directory."""

    def __init__(self, pepper: bytes, *, python: str = sys.executable) -> None:
        self.python = python
        self.dir = Path(tempfile.mkdtemp(prefix="digibank-demo-server-"))
        self.database = f"sqlite:///{self.dir / 'loanserver.db'}"
        self.pepper_file = self.dir / "pepper"
        self.pepper_file.write_bytes(pepper)
        self.pepper_file.chmod(0o600)
        self.log_path = self.dir / "server.log"
        self.port = 0
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> LoanServerProcess:
        """Start serving and wait for ``/health``; ServerError when it will not."""
        atexit.register(self.stop)
        # ``serve`` migrates before it answers /health; admin commands come after that.
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port()
            self._spawn()
            if self._wait_healthy():
                return self
            self._end_child()
            if attempt == START_ATTEMPTS or "address already in use" not in self.log_tail():
                break
        raise ServerError(f"the loan server did not start: {self.log_tail() or 'no output'}")

    def _spawn(self) -> None:
        command = [
            self.python,
            "-m",
            "loanserver",
            "serve",
            "--database",
            self.database,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--pepper-file",
            str(self.pepper_file),
        ]
        if sys.platform == "linux":
            command = [self.python, "-c", ORPHAN_GUARD, str(os.getpid()), *command]
        with self.log_path.open("ab") as log:
            self._child = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._child is None or self._child.poll() is not None:
                return False
            if self.health().get("status") == "ok":
                return True
            time.sleep(0.1)
        return False

    def health(self) -> dict[str, object]:
        """The ``/health`` answer, or ``{}`` when the server does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=HEALTH_TIMEOUT_S) as answer:
                body = json.loads(answer.read())
        except (OSError, ValueError, urllib.error.URLError):
            return {}
        return body if isinstance(body, dict) else {}

    @property
    def running(self) -> bool:
        """True while the child runs."""
        return self._child is not None and self._child.poll() is None

    def _end_child(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call twice."""
        self._end_child()
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LoanServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self) -> str:
        """The last lines of the server's output, on one line (for an error message)."""
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-LOG_TAIL_LINES:])

    # -- admin commands -----------------------------------------------------------------------
    def _loanserver(self, *args: str) -> str:
        command = [self.python, "-m", "loanserver", *args, "--database", self.database]
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=ADMIN_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise ServerError(f"loanserver {args[0]} took over {ADMIN_TIMEOUT_S:g} s") from None
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise ServerError(f"loanserver {' '.join(args[:2])}: {reason}")
        return done.stdout

    def admin(self, *args: str) -> str:
        """Run ``loanserver admin ARGS`` on this server's database; its standard output.

        A command given a national number gets the pepper file too.
        """
        pepper = ("--pepper-file", str(self.pepper_file)) if "--national-number" in args else ()
        return self._loanserver("admin", *args, *pepper)

    def admin_last(self, *args: str) -> str:
        """``admin`` and the last line of its output (the token, id or code it printed)."""
        lines = self.admin(*args).strip().splitlines()
        return lines[-1].strip() if lines else ""
