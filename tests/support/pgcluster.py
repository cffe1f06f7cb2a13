"""A throwaway PostgreSQL cluster for tests: Debian's server binaries, a temp dir, a free port.

``PgCluster.start()`` runs ``initdb`` into a fresh temporary directory and starts the server
on 127.0.0.1 and a free port, its unix socket in that directory (not /run), trust auth for
127.0.0.1 only, fsync off (a test database need not survive a power cut). ``stop()`` stops
it at once (``-m immediate``) and removes the directory; an ``atexit`` hook does the same
if the test process ends without calling it. ``fresh_database()`` creates an empty database
and returns its SQLAlchemy URL (``postgresql+psycopg://postgres@127.0.0.1:PORT/NAME``).

PostgreSQL refuses to run as root: as root the server binaries run as the ``postgres``
system user the Debian package creates (the temp dir is handed to it); otherwise as the
current user. When the binaries or that user are missing, or the server will not start,
``PgUnavailable`` says why in one line (the fixtures turn it into a skip, or a failure
under CI).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

START_TIMEOUT_S = 30  # pg_ctl -w -t: a cold start on a slow CI disk takes a few seconds
COMMAND_TIMEOUT_S = 60.0  # initdb, pg_ctl: every wait has a timeout
CONNECT_TIMEOUT_S = 10  # psycopg connect_timeout (seconds, an integer for libpq)
START_ATTEMPTS = 3  # a free port can be taken between choosing it and binding it
WATCHDOG_POLL_S = 0.5
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
# Server settings for a test cluster: speed over durability; no stray log files.
SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=100 -c shared_buffers=32MB -c logging_collector=off"
)


class PgUnavailable(Exception):
    """PostgreSQL cannot be used here (not installed, no postgres user, will not start)."""


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: the newest Debian version first."""
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass  # pg_config from libpq-dev alone: fall through to "not found"
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PgUnavailable(
        "PostgreSQL server binaries not found (initdb, pg_ctl, postgres in "
        "/usr/lib/postgresql/*/bin or pg_config --bindir): apt-get install postgresql"
    )


def _version_key(name: str) -> tuple[int, ...]:
    """'15' -> (15,), '9.6' -> (9, 6); anything else sorts first."""
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


class PgCluster:
    """One throwaway PostgreSQL server; use ``start()``/``stop()`` or ``with``."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.run_as = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PgUnavailable(
                    f"running as root and there is no {SYSTEM_USER!r} system user to run "
                    "PostgreSQL as (the Debian postgresql package creates it)"
                ) from None
        self.dir: Path | None = None
        self.port = 0
        self._counter = 0
        self._lock = threading.Lock()
        self._stopped = True
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        """The cluster's data directory (inside the temp dir)."""
        assert self.dir is not None, "cluster not started"
        return self.dir / "data"

    def _parent_dir(self) -> str | None:
        """Where the temp dir goes: the usual place, unless the owner cannot reach it.

        As root, TMPDIR may be a private directory (mode 0700) the postgres user cannot
        enter; /tmp is then used instead.
        """
        if self.run_as is None:
            return None
        usual = Path(tempfile.gettempdir()).resolve()
        if all(p.stat().st_mode & 0o001 for p in (usual, *usual.parents)):
            return None
        return "/tmp"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the cluster's owner; PgUnavailable with its last line."""
        extra: dict[str, Any] = {}
        if self.run_as is not None:
            extra = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        try:
            result = subprocess.run(
                [str(self.bindir / argv[0]), *argv[1:]],
                cwd=self.dir,  # the owner can read it (root's cwd may be closed to it)
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                **extra,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PgUnavailable(f"{argv[0]} could not run: {exc}") from None
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
            raise PgUnavailable(f"{argv[0]} failed (exit {result.returncode}): {lines[-1]}")
        return result

    def start(self) -> PgCluster:
        """initdb into a new temp dir and start the server; PgUnavailable if it cannot."""
        self.dir = Path(tempfile.mkdtemp(prefix="pgtest-", dir=self._parent_dir()))
        self._stopped = False
        atexit.register(self.stop)
        try:
            if self.run_as is not None:
                os.chown(self.dir, self.run_as.pw_uid, self.run_as.pw_gid)
            self._run(
                "initdb",
                "-D",
                str(self.datadir),
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=reject",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
            # Trust on 127.0.0.1 only (initdb's default pg_hba also trusts ::1: replaced).
            (self.datadir / "pg_hba.conf").write_text(
                "local all all trust\nhost all all 127.0.0.1/32 trust\n"
            )
            self._start_on_a_free_port()
            self._watchdog = _start_watchdog(self)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_on_a_free_port(self) -> None:
        """pg_ctl start, again on another port if the chosen one was taken meanwhile."""
        error: PgUnavailable | None = None
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            options = f"{SERVER_OPTIONS} -c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}"
            try:
                self._run(
                    "pg_ctl",
                    "start",
                    "-D",
                    str(self.datadir),
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "-l",
                    str(self.dir / "server.log"),
                    "-o",
                    options,
                )
                return
            except PgUnavailable as exc:
                error = PgUnavailable(f"{exc}; server log: {self._log_tail()}")
                if not _port_in_use(self.port):
                    break  # not a port race: trying again would fail the same way
        assert error is not None
        raise error

    def _log_tail(self) -> str:
        """The server log's last line (why it did not start)."""
        assert self.dir is not None
        try:
            lines = (self.dir / "server.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "none"
        return lines[-1] if lines else "empty"

    def stop(self) -> None:
        """Stop the server at once and remove its directory (idempotent, never raises)."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        if self.dir is None:
            return
        watchdog, self._watchdog = self._watchdog, None
        pid_file = self.datadir / "postmaster.pid"
        if pid_file.exists():
            try:
                self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", "immediate", "-w")
            except PgUnavailable:
                # SIGQUIT is what "-m immediate" sends: no server outlives its directory.
                with contextlib.suppress(OSError, ValueError, IndexError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        shutil.rmtree(self.dir, ignore_errors=True)
        if watchdog is not None:  # it sees the directory gone and ends; no need to wait
            with contextlib.suppress(subprocess.TimeoutExpired):
                watchdog.wait(timeout=WATCHDOG_POLL_S * 4)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this cluster (TCP, trust auth)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the maintenance database (CREATE/DROP DATABASE)."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
        )

    def fresh_database(self) -> str:
        """Create a new empty database; returns its SQLAlchemy URL."""
        with self._lock:
            self._counter += 1
            name = f"test_{os.getpid()}_{self._counter}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (a cluster holds hundreds; keeps the temp dir small).

        WITH (FORCE) ends sessions a test left open (a live server's pool, say).
        """
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# Run by a separate process: when the test process dies without stop() (SIGKILL, or
# SIGTERM from `timeout`, which skips atexit), stop the server and remove its directory.
# It ends by itself once stop() removed the directory.
_WATCHDOG = """
import os, shutil, subprocess, sys, time
parent, poll = int(sys.argv[1]), float(sys.argv[2])
tmpdir, owner, argv = sys.argv[3], sys.argv[4], sys.argv[5:]
ids = {} if owner == "-" else dict(zip(("user", "group"), map(int, owner.split(":"))))
while os.path.isdir(tmpdir):
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        extra = {"extra_groups": []} if ids else {}
        subprocess.run(argv, cwd=tmpdir, capture_output=True, timeout=60, **ids, **extra)
        shutil.rmtree(tmpdir, ignore_errors=True)
        break
    except PermissionError:
        pass
    time.sleep(poll)
"""


def _start_watchdog(cluster: PgCluster) -> subprocess.Popen[bytes]:
    """A process that stops ``cluster`` if this process dies first (see ``_WATCHDOG``)."""
    assert cluster.dir is not None
    owner = "-" if cluster.run_as is None else f"{cluster.run_as.pw_uid}:{cluster.run_as.pw_gid}"
    stop = [str(cluster.bindir / "pg_ctl"), "stop", "-D", str(cluster.datadir), "-m", "immediate"]
    watch = [str(os.getpid()), str(WATCHDOG_POLL_S), str(cluster.dir), owner]
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, *watch, *stop],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal to the test's process group leaves it alive
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (kept apart from live_server: no uvicorn here)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port now."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def in_ci() -> bool:
    """Whether the ``CI`` environment variable asks for every part of the suite to run."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
