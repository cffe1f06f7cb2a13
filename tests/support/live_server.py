"""A real loan server on 127.0.0.1 for tests: uvicorn in a thread, real HTTP.

``LiveServer(engine)`` serves ``loanserver.api.app.create_app(engine)`` on a free port;
``url`` is its base URL. Used by the sync, end-to-end and fault tests (the kiosk side
talks to it over real sockets; nothing is mocked).
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from sqlalchemy import Engine

from loanserver import services
from loanserver.api.app import create_app
from loanserver.db import session_factory

START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """The loan server API served by uvicorn in a background thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        pepper: bytes | None = None,
        admin_token_sha256: str | None = None,
        port: int | None = None,
    ) -> None:
        self.engine = engine
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(engine, pepper=pepper, admin_token_sha256=admin_token_sha256)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="live-loanserver")

    def start(self) -> LiveServer:
        """Start serving; returns when the port accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the live loan server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT_S)

    def add_kiosk(self, name: str = "kiosk-1") -> str:
        """Register a kiosk in the server's database; returns its bearer token."""
        with session_factory(self.engine)() as session:
            return services.add_kiosk(session, name).token

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
