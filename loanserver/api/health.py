"""``GET /health`` (no token): is the database answering?"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from loanserver.api.deps import db_session

router = APIRouter(tags=["health"])


def database_reason(exc: SQLAlchemyError) -> str:
    """The driver's one-line reason, without SQLAlchemy's statement and parameters."""
    orig = getattr(exc, "orig", None)
    lines = str(orig).strip().splitlines() if orig is not None else []
    return (lines[0] if lines else type(exc).__name__)[:200]


@router.get(
    "/health",
    responses={503: {"description": "the database does not answer"}},
)
def health(session: Annotated[Session, Depends(db_session)]) -> JSONResponse:
    """200 ``{"status": "ok", "database": "ok"}``, or 503 with the database's reason."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "error", "database": database_reason(exc)}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
