"""Kiosk authentication: ``Authorization: Bearer <token>``, looked up by its SHA-256.

A missing, malformed or unknown token gets 401 ``unknown kiosk token`` and nothing else
(no hint which kiosks exist). The token itself is never logged nor stored; the kiosk id is
put on the request state so that the access log can name the kiosk.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loanserver.api.deps import db_session
from loanserver.keys import token_hash
from loanserver.models import Kiosk, utcnow

UNKNOWN_TOKEN = "unknown kiosk token"
TOKEN_MAX = 200  # a real token is 43 characters; anything far longer is not one

_bearer = HTTPBearer(auto_error=False, description="the kiosk's token (admin add-kiosk)")


def unauthorized() -> HTTPException:
    """The one answer to a bad token."""
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=UNKNOWN_TOKEN,
        headers={"WWW-Authenticate": "Bearer"},
    )


def current_kiosk(
    request: Request,
    response: Response,
    session: Annotated[Session, Depends(db_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> int:
    """The id of the calling kiosk; records when it was last seen (own short transaction).

    Answers are marked ``no-store``: they carry borrower keys and code hashes.
    """
    if credentials is None or not 0 < len(credentials.credentials) <= TOKEN_MAX:
        raise unauthorized()
    digest = token_hash(credentials.credentials)
    kiosk_id = session.scalar(select(Kiosk.id).where(Kiosk.token_hash == digest))
    if kiosk_id is None:
        raise unauthorized()
    request.state.kiosk_id = kiosk_id
    response.headers["Cache-Control"] = "no-store"
    session.execute(update(Kiosk).where(Kiosk.id == kiosk_id).values(last_seen_at=utcnow()))
    session.commit()
    return kiosk_id


KioskId = Annotated[int, Depends(current_kiosk)]
Db = Annotated[Session, Depends(db_session)]
