"""The FastAPI application: ``create_app(engine, ...)``; routers live in small modules."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from loanserver import db
from loanserver.api import backoffice, kiosk


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
    app.include_router(kiosk.router)
    app.include_router(backoffice.router)
    return app
