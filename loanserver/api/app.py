"""The FastAPI application: ``create_app(engine, ...)``; routers live in small modules."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from loanserver import db
from loanserver.api import backoffice, health, kiosk
from loanserver.api.accesslog import AccessLog


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 saying what is wrong, without echoing the values sent (a key, a number ...)."""
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


def create_app(
    engine: Engine,
    *,
    pepper: bytes | None = None,
    admin_token_sha256: str | None = None,
) -> FastAPI:
    """The loan server app on ``engine`` (already migrated).

    ``pepper``: the site pepper, needed only to register borrowers by national number
    through the back office. ``admin_token_sha256``: the back-office token's hash; None
    turns the back-office API off (401 to every call).
    """
    app = FastAPI(title="digibank loan server", version="1")
    app.state.engine = engine
    app.state.sessions = db.session_factory(engine)
    app.state.pepper = pepper
    app.state.admin_token_sha256 = admin_token_sha256
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(AccessLog)
    app.include_router(health.router)
    app.include_router(kiosk.router)
    app.include_router(backoffice.router)
    return app
