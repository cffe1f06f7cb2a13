"""Request logs: one JSON object per request on the ``loanserver.access`` logger.

Fields: time, method, path (never the query string), status, ms, kiosk (the kiosk id once
its token was accepted). Never a body, a header, a token, a key or a code. A plain ASGI
middleware (no body buffering); the kiosk id comes from the request state the kiosk
authentication fills in.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGGER = "loanserver.access"
log = logging.getLogger(LOGGER)


class AccessLog:
    """ASGI middleware writing one access line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request and log it, also when the app raised (status 500)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        state = scope.setdefault("state", {})  # shared with the handlers' Request.state
        status = 500  # unless the app starts a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            line = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "ms": round((time.monotonic() - started) * 1000, 1),
                "kiosk": state.get("kiosk_id"),
            }
            log.info(json.dumps(line))
