"""A real HTTP proxy on 127.0.0.1 between the kiosk's sync link and the loan server, whose
misbehaviour a test switches at will.

``FaultProxy(target_url)`` listens on a free port (``url``) and forwards every request to
the target with ``http.client``. ``set_mode`` picks what it does with the next requests:

- ``pass``: forward and answer as the server did.
- ``down``: the listening socket is closed: connections are refused (ECONNREFUSED).
- ``reset``: the connection is accepted, then reset before any answer.
- ``error500``: a 500 answer, nothing forwarded.
- ``slow``: nothing for ``slow_s`` seconds (past the client's read timeout), then the
  request is forwarded (the server applies it after the client gave up) and the late
  answer is thrown away.
- ``garbage``: a 200 with a body that is not JSON (``garbage_body``, a captive portal).
- ``wrong_shape``: a 200 with a JSON object that is not the documented answer.
- ``drop_after_apply``: forwarded and answered by the server, then the connection is cut
  before the kiosk hears anything (the server applied the batch, the kiosk never got the
  ack). ``hold_s`` keeps the kiosk's request open that long first (a kill moment).

``only`` limits a fault to request paths starting with one of the given prefixes (the
rest pass). Every request is counted in ``arrivals`` as soon as it comes in, and in
``seen`` (method, path, mode applied) once handled. The proxy answers one request per
connection (HTTP/1.0), so a mode switch applies to the next request at once. No body,
token or header value is ever logged.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

MODES = ("pass", "down", "reset", "error500", "slow", "garbage", "wrong_shape", "drop_after_apply")
WRONG_SHAPE = b'{"status": "ok"}'  # JSON, an object, but not the documented answer
UPSTREAM_TIMEOUT_S = 30.0
REBIND_TIMEOUT_S = 5.0
# Headers that belong to one connection, not to the message (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True)
class Seen:
    """One request the proxy received, and what it did with it."""

    method: str
    path: str
    mode: str
    forwarded: bool
    status: int | None  # the server's status when forwarded


class FaultProxy:
    """The switchable proxy (see the module docstring). Use as a context manager."""

    def __init__(
        self,
        target_url: str,
        *,
        slow_s: float = 3.0,
        garbage_body: bytes = b"<html>captive portal: please log in</html>",
        garbage_type: str = "text/html",
        port: int = 0,
    ) -> None:
        target = urlsplit(target_url)
        if target.scheme != "http" or not target.hostname or not target.port:
            raise ValueError(f"target must be http://host:port, got {target_url!r}")
        self.target_host, self.target_port = target.hostname, target.port
        self.slow_s = slow_s
        self.garbage_body = garbage_body
        self.garbage_type = garbage_type
        self.hold_s = 0.0
        self._lock = threading.Lock()
        self._mode = "pass"
        self._only: tuple[str, ...] = ()
        self._seen: list[Seen] = []
        self._arrived: list[tuple[str, str]] = []  # (path, mode) as each request came in
        self._stopping = threading.Event()
        self._release = threading.Event()
        self.applied = threading.Event()  # set when a fault request reached the server
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self._bind()

    # -- life cycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The proxy's base URL (give this to the kiosk instead of the server's)."""
        return f"http://127.0.0.1:{self.port}"

    def _bind(self) -> None:
        deadline = time.monotonic() + REBIND_TIMEOUT_S
        while True:
            try:
                server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
                break
            except OSError:
                # The same port again after "down": a socket in TIME_WAIT may hold it briefly.
                if self.port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._server = server

    def start(self) -> FaultProxy:
        """Start accepting connections (unless the mode is ``down``)."""
        if self._server is None:
            self._bind()
        assert self._server is not None
        server = self._server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def _close_listener(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            if thread is not None:
                server.shutdown()
                thread.join(REBIND_TIMEOUT_S)
            server.server_close()

    def stop(self) -> None:
        """Stop listening and wake every held or slow request; safe to call twice."""
        self._stopping.set()
        self._release.set()
        self._close_listener()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- control ----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """The current mode."""
        with self._lock:
            return self._mode

    def set_mode(self, mode: str, *, only: tuple[str, ...] = (), hold_s: float = 0.0) -> None:
        """Switch to ``mode`` for the requests from now on (``only``: these path prefixes)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        with self._lock:
            previous, self._mode, self._only = self._mode, mode, only
            self.hold_s = hold_s
            self._release.clear()
            self.applied.clear()
        if mode == "down" and previous != "down":
            self._close_listener()
        elif mode != "down" and previous == "down":
            self._bind()
            self.start()

    def release(self) -> None:
        """Let a request held by ``hold_s`` go on now."""
        self._release.set()

    @property
    def seen(self) -> list[Seen]:
        """Every request so far, oldest first."""
        with self._lock:
            return list(self._seen)

    def count(self, path_prefix: str = "", *, mode: str | None = None) -> int:
        """How many requests under ``path_prefix`` (with ``mode`` applied, if given)."""
        return sum(
            1
            for s in self.seen
            if s.path.startswith(path_prefix) and (mode is None or s.mode == mode)
        )

    def arrivals(self, path_prefix: str = "", *, mode: str | None = None) -> int:
        """Requests under ``path_prefix`` received so far (held or slow ones included)."""
        with self._lock:
            return sum(
                1
                for path, applied in self._arrived
                if path.startswith(path_prefix) and (mode is None or applied == mode)
            )

    def _mode_for(self, path: str) -> str:
        with self._lock:
            mode = "pass" if self._only and not path.startswith(self._only) else self._mode
            self._arrived.append((path, mode))
            return mode

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    # -- forwarding -------------------------------------------------------------------------
    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send one request to the server; its status, headers and body."""
        conn = http.client.HTTPConnection(
            self.target_host, self.target_port, timeout=UPSTREAM_TIMEOUT_S
        )
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, kept, data
        finally:
            conn.close()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` unless released or stopped first."""
        if seconds > 0:
            self._release.wait(seconds)


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = proxy

    return Handler


class _Handler(BaseHTTPRequestHandler):
    """One request: apply the proxy's mode for its path."""

    owner: FaultProxy
    protocol_version = "HTTP/1.0"  # one request per connection: a mode switch acts at once

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the test reads ``seen``; nothing of a request reaches the log."""

    def do_GET(self) -> None:
        """Handle a GET."""
        self._handle()

    def do_POST(self) -> None:
        """Handle a POST."""
        self._handle()

    def _handle(self) -> None:
        proxy = self.owner
        path = self.path
        mode = proxy._mode_for(path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if mode in ("reset", "down"):  # "down" here: a connection accepted just before
            proxy._record(Seen(self.command, path, mode, False, None))
            self._reset()
            return
        if mode == "error500":
            proxy._record(Seen(self.command, path, mode, False, None))
            self._answer(500, [("Content-Type", "application/json")], b'{"detail":"boom"}')
            return
        if mode == "garbage":
            proxy._record(Seen(self.command, path, mode, False, None))
            self._answer(200, [("Content-Type", proxy.garbage_type)], proxy.garbage_body)
            return
        if mode == "wrong_shape":
            proxy._record(Seen(self.command, path, mode, False, None))
            self._answer(200, [("Content-Type", "application/json")], WRONG_SHAPE)
            return
        if mode == "slow":
            proxy.wait(proxy.slow_s)
        status, out_headers, data = proxy.forward(self.command, path, headers, body)
        proxy._record(Seen(self.command, path, mode, True, status))
        if mode == "drop_after_apply":
            proxy.applied.set()
            proxy.wait(proxy.hold_s)
            self._reset()
            return
        if mode == "slow":
            proxy.applied.set()
        with contextlib.suppress(OSError):  # a slow answer's client may be gone: fine
            self._answer(status, out_headers, data)

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        # SO_LINGER 0: close sends RST, the client sees a reset instead of a clean end.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()
