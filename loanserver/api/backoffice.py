"""The back-office API (docs/api.md): ``/api/v1/admin/...`` behind the admin bearer token.

Every route shares the operations of ``loanserver admin`` (``loanserver.services``,
``commands``, ``reports``): a refused request is 409 with the CLI's one-line message, a
malformed one 422. A 422 never echoes the input (a national number, a PIN, a code: the
app's validation handler, ``loanserver.api.app``) and nothing here logs a body.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loanserver import commands, reports, services
from loanserver.api import backoffice_schemas as s
from loanserver.api.deps import db_session
from loanserver.keys import token_hash

UNKNOWN_TOKEN = "unknown admin token"
BACK_OFFICE_OFF = "the back office is off: start the server with --admin-token-file"
NO_PEPPER = (
    "this server has no pepper, so it cannot register a national register number: "
    "start it with --pepper-file (or LOANSERVER_PEPPER_FILE), or register code-only"
)
RACE_LOST = "the change conflicts with data stored meanwhile; retry"
TOKEN_MAX = 200  # a real token is 43 characters; anything far longer is not one
NO_STORE = "no-store"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminBearer",
    description="the back-office token (loanserver admin make-admin-token)",
)


def require_admin(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the bearer token's SHA-256 is the configured one (constant-time).

    Answers let through are marked ``no-store``: they carry tokens, pickup codes and loans
    that no proxy or browser cache should keep.
    """
    expected: str | None = request.app.state.admin_token_sha256
    if expected is None:
        raise _unauthorized(BACK_OFFICE_OFF)
    if credentials is None or not 0 < len(credentials.credentials) <= TOKEN_MAX:
        raise _unauthorized(UNKNOWN_TOKEN)
    digest = token_hash(credentials.credentials)
    if not hmac.compare_digest(digest.encode("ascii"), expected.strip().lower().encode("ascii")):
        raise _unauthorized(UNKNOWN_TOKEN)
    response.headers["Cache-Control"] = NO_STORE


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


router = APIRouter(
    prefix="/api/v1/admin",
    tags=["back office"],
    dependencies=[Depends(require_admin)],
    responses={
        401: {"description": "no or wrong admin token, or the back office is off"},
        409: {"description": "refused: the data does not allow it (one-line detail)"},
        422: {"description": "malformed request (the values sent are not echoed)"},
    },
)
Db = Annotated[Session, Depends(db_session)]


@contextmanager
def _answers(session: Session) -> Iterator[None]:
    """Service errors as HTTP answers: Refused 409, InvalidInput 422, a lost race 409."""
    try:
        yield
    except services.Refused as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except services.InvalidInput as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except IntegrityError:
        # A concurrent request stored the same name / tag / key first. The database's
        # message may quote the values (a key): not passed on.
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, RACE_LOST) from None


def _pepper(request: Request, national_number: str | None) -> bytes | None:
    """The pepper when a national number is given; 503 when this server has none."""
    if national_number is None:
        return None
    pepper: bytes | None = request.app.state.pepper
    if pepper is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NO_PEPPER)
    return pepper


@router.post("/kiosks", status_code=201, response_model=s.KioskCreated)
def add_kiosk(body: s.KioskIn, session: Db) -> s.KioskCreated:
    """Add a kiosk; its token is in this answer only."""
    with _answers(session):
        kiosk = services.add_kiosk(session, body.name)
    return s.KioskCreated(id=kiosk.id, name=kiosk.name, token=kiosk.token)


@router.post("/devices", status_code=201, response_model=s.DeviceOut)
def add_device(body: s.DeviceIn, session: Db) -> s.DeviceOut:
    """Add a lendable device (409 when the asset tag exists)."""
    with _answers(session):
        device = services.add_device(session, **body.model_dump())
    return s.DeviceOut(
        id=device.id,
        asset_tag=device.asset_tag,
        type=device.type,
        size=device.size,
        charging=device.needs_charging,
        status=device.status,
    )


@router.post("/borrowers", status_code=201, response_model=s.BorrowerOut)
def add_borrower(body: s.BorrowerIn, request: Request, session: Db) -> s.BorrowerOut:
    """Register a borrower by national number (only its key is kept) or code-only."""
    pepper = _pepper(request, body.national_number)
    with _answers(session):
        # The body's fields are the service's keyword arguments (one contract, CLI and API).
        borrower = services.register_borrower(session, pepper=pepper, **body.model_dump())
    return s.BorrowerOut(id=borrower.id, code_only=borrower.key is None, language=borrower.language)


@router.post("/reservations", status_code=201, response_model=s.ReservationCreated)
def reserve(body: s.ReservationIn, session: Db) -> s.ReservationCreated:
    """Reserve an available device; the pickup code is in this answer only."""
    with _answers(session):
        new = services.reserve(session, body.borrower_id, body.asset_tag, body.kiosk)
    return s.ReservationCreated(id=new.id, expires_at=new.expires_at, pickup_code=new.pickup_code)


@router.post("/reservations/{reservation_id}/cancel", response_model=s.ReservationOut)
def cancel(
    reservation_id: Annotated[int, Path(ge=1, le=s.INT32_MAX)], session: Db
) -> s.ReservationOut:
    """Cancel an open reservation (409 when unknown or no longer open)."""
    with _answers(session):
        reservation = services.cancel(session, reservation_id)
    return s.ReservationOut(id=reservation.id, status=reservation.status)


@router.get("/loans", response_model=s.LoanList)
def loans(session: Db, overdue: bool = False) -> s.LoanList:
    """Open loans, oldest due first; ``overdue=true``: only those past their due date."""
    rows = services.list_loans(session, overdue_only=overdue)
    return s.LoanList(items=[s.LoanOut.model_validate(r, from_attributes=True) for r in rows])


@router.post("/staff", status_code=201, response_model=s.StaffOut)
def add_staff(body: s.StaffIn, request: Request, session: Db) -> s.StaffOut:
    """Add a staff member (eID by national number, or a staff code) with a PIN."""
    pepper = _pepper(request, body.national_number)
    with _answers(session):
        staff = services.add_staff(session, pepper=pepper, **body.model_dump())
    return s.StaffOut(id=staff.id, name=staff.name, role=staff.role)


@router.post("/kiosks/{name}/commands", status_code=201, response_model=s.CommandOut)
def send_command(
    name: Annotated[str, Path(max_length=100)], body: s.CommandIn, session: Db
) -> s.CommandOut:
    """Queue a remote command; the kiosk gets it with its next heartbeat (409: no such kiosk)."""
    with _answers(session):
        command = commands.send_command(session, name, body.kind, body.compartment, body.reason)
    return s.CommandOut(
        id=command.id,
        kiosk=name,
        kind=command.kind,
        compartment=command.compartment,
        reason=command.reason,
        created_at=command.created_at,
    )


@router.get(
    "/reports",
    response_model=s.Report,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def report(
    session: Db,
    month: Annotated[str | None, Query(max_length=7, description="YYYY-MM (UTC)")] = None,
    output: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """The figures of one month (default: this UTC month), as JSON or as CSV (text/csv)."""
    with _answers(session):
        figures = reports.report(session, month)
    if output == "csv":
        return Response(
            reports.to_csv(figures),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="report-{figures["month"]}.csv"',
                "Cache-Control": NO_STORE,  # a Response of its own: the dependency's is unused
            },
        )
    return figures
