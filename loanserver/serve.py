"""``loanserver serve``: the HTTP API under uvicorn.

Configuration problems (an unusable database, a bad pepper or admin-token file, a port
that is taken) are one line on stderr and exit 2, before anything is served. Once
listening, one line ``serving on http://HOST:PORT`` is logged (tests and operators wait
for it); SIGTERM or SIGINT stops the server cleanly with exit 0. Logs go to stderr: the
access log is one JSON object per request (``loanserver.api.accesslog``).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import uvicorn
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from loanserver import db, keys
from loanserver.api.app import create_app
from loanserver.api.health import database_reason

EXIT_OK, EXIT_USAGE = 0, 2
ENV_PEPPER = "LOANSERVER_PEPPER_FILE"
ENV_ADMIN_TOKEN = "LOANSERVER_ADMIN_TOKEN_FILE"
GRACEFUL_TIMEOUT_S = 10  # open requests get this long to finish on SIGTERM
SHA256_HEX = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger("loanserver.serve")


class ConfigError(Exception):
    """The server cannot start as configured: one line for the operator, exit 2."""


class _Server(uvicorn.Server):
    """uvicorn's server, announcing itself once it accepts requests."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, then log the one line a supervisor or a test waits for."""
        await super().startup(sockets=sockets)
        if self.started and sockets:
            host, port = sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info("serving on http://%s:%d", shown, port)


class _NoDatabaseDetails(logging.Filter):
    """Server-error logs name a database failure without SQL parameters (a key ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace a database exception's traceback by its one-line reason."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, SQLAlchemyError):
            record.msg = f"database failure ({type(exc).__name__}): {database_reason(exc)}"
            record.args = ()
            record.exc_info = None
        return True


def _pepper(args: argparse.Namespace) -> bytes | None:
    path = getattr(args, "pepper_file", None) or os.environ.get(ENV_PEPPER)
    if not path:
        return None
    try:
        return keys.load_pepper(path)
    except keys.InvalidKeyInput as exc:
        raise ConfigError(str(exc)) from None


def _admin_token_sha256(args: argparse.Namespace) -> str | None:
    path = getattr(args, "admin_token_file", None) or os.environ.get(ENV_ADMIN_TOKEN)
    if not path:
        return None
    try:
        value = Path(path).read_text(encoding="ascii").strip().lower()
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
        raise ConfigError(f"cannot read the admin token file {path}: {reason}") from None
    if not SHA256_HEX.fullmatch(value):
        raise ConfigError(
            f"the admin token file {path} must hold a SHA-256 hex digest "
            "(write it with: loanserver admin make-admin-token FILE)"
        )
    return value


def _engine(args: argparse.Namespace) -> Engine:
    url = db.database_url(getattr(args, "database", None))
    try:
        engine = db.make_engine(url)
    except db.DatabaseError as exc:
        raise ConfigError(str(exc)) from None
    try:
        db.migrate(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = database_reason(exc)
        raise ConfigError(f"cannot use the database: {reason}; check --database") from None
    return engine


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a clear error (taken, no such address)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is not between 0 and 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


@contextmanager
def _logging() -> Iterator[None]:
    """Message-only lines on stderr for the server's loggers (access lines are JSON)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    quiet = _NoDatabaseDetails()
    ours, errors = logging.getLogger("loanserver"), logging.getLogger("uvicorn.error")
    old_level = ours.level
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    errors.addFilter(quiet)
    try:
        yield
    finally:
        errors.removeFilter(quiet)
        ours.removeHandler(handler)
        ours.setLevel(old_level)


@contextmanager
def _signals_end_cleanly() -> Iterator[None]:
    """uvicorn re-raises the stopping signal after a graceful shutdown (so the process
    would die of SIGTERM); with these handlers in place that re-raise is a no-op."""

    def ignore(_sig: int, _frame: FrameType | None) -> None:
        return None

    if threading.current_thread() is not threading.main_thread():
        yield  # signals belong to the main thread; uvicorn then installs none either
        return
    old = {sig: signal.signal(sig, ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code (2: configuration error)."""
    try:
        pepper = _pepper(args)
        admin_hash = _admin_token_sha256(args)
        engine = _engine(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sock = _listen(args.host, args.port)
    except ConfigError as exc:
        engine.dispose()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app = create_app(engine, pepper=pepper, admin_token_sha256=admin_hash)
    config = uvicorn.Config(
        app,
        log_config=None,  # our handlers; uvicorn's default would log every request again
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S,
    )
    server = _Server(config)
    try:
        with _logging(), _signals_end_cleanly():
            server.run(sockets=[sock])
            if server.started:
                log.info("stopped")
    finally:
        sock.close()
        engine.dispose()
    if not server.started:
        print("error: the server did not start", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
