"""The kiosk API (docs/api.md): bearer token per kiosk; pulls, transactions, heartbeat."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import ColumnElement, Row, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from loanserver import intake, remote, services
from loanserver.api import cursor
from loanserver.api.kiosk_auth import Db, KioskId
from loanserver.api.kiosk_schemas import (
    CommandOut,
    HeartbeatAnswer,
    HeartbeatIn,
    LoanOut,
    LoansAnswer,
    ReservationOut,
    ReservationsAnswer,
    StaffAnswer,
    StaffOut,
    TransactionBatch,
    TransactionsAnswer,
)
from loanserver.apply import LOAN_DAYS
from loanserver.models import (
    OPEN_RESERVATION_STATUSES,
    Borrower,
    Device,
    Heartbeat,
    Loan,
    Reservation,
    Staff,
    utcnow,
)

router = APIRouter(
    prefix="/api/v1/kiosk",
    tags=["kiosk"],
    responses={401: {"description": "unknown kiosk token"}},
)

SINCE = Query(
    default=None, max_length=cursor.CURSOR_MAX, description="the cursor of a previous answer"
)


def _pull(
    session: Session,
    query: Select[Any],
    since: str | None,
    *,
    open_rows: ColumnElement[bool],
    changed: InstrumentedAttribute[datetime],
) -> tuple[bool, str, Sequence[Row[Any]]]:
    """``query`` narrowed to the open rows (no cursor: a full answer) or to the rows changed
    since the cursor; returns (full, the next cursor, rows)."""
    start = cursor.decode(since) if since is not None else None
    now = utcnow()  # taken before reading: what changes during the read comes again next time
    condition = open_rows if start is None else changed >= start
    return start is None, cursor.encode(now), session.execute(query.where(condition)).all()


@router.get("/reservations", response_model=ReservationsAnswer)
def reservations(kiosk_id: KioskId, session: Db, since: str | None = SINCE) -> ReservationsAnswer:
    """This kiosk's open reservations, or every one changed since the cursor."""
    services.expire_reservations(session)  # so the answer tells of expiries too
    query = (
        select(Reservation, Device, Borrower.key)
        .join(Device, Device.id == Reservation.device_id)
        .join(Borrower, Borrower.id == Reservation.borrower_id)
        .where(Reservation.kiosk_id == kiosk_id)
        .order_by(Reservation.id)
    )
    full, next_cursor, rows = _pull(
        session,
        query,
        since,
        open_rows=Reservation.status.in_(OPEN_RESERVATION_STATUSES),
        changed=Reservation.updated_at,
    )
    items = [
        ReservationOut(
            id=str(r.id),
            asset_tag=d.asset_tag,
            status=r.status,
            borrower_key=key,
            code_hash=r.pickup_code_hash,
            device_type=d.type,
            size=d.size,
            charging=d.needs_charging,
            compartment=r.compartment,
            ready_by=r.ready_by,
            expires_at=r.expires_at,
            loan_days=LOAN_DAYS,
        )
        for r, d, key in rows
    ]
    return ReservationsAnswer(full=full, cursor=next_cursor, items=items)


@router.get("/loans", response_model=LoansAnswer)
def loans(kiosk_id: KioskId, session: Db, since: str | None = SINCE) -> LoansAnswer:
    """Every open loan (a device may come back at any kiosk), or every one changed since."""
    del kiosk_id  # authenticated; the reference server has one site
    borrower = aliased(Borrower)
    query = (
        select(Loan, Device, borrower.key)
        .join(Device, Device.id == Loan.device_id)
        .outerjoin(borrower, borrower.id == Loan.borrower_id)
        .order_by(Loan.id)
    )
    full, next_cursor, rows = _pull(
        session, query, since, open_rows=Loan.returned_at.is_(None), changed=Loan.updated_at
    )
    items = [
        LoanOut(
            id=loan.external_id or f"srv-{loan.id}",
            asset_tag=d.asset_tag,
            borrower_key=key,
            device_type=d.type,
            size=d.size,
            charging=d.needs_charging,
            started_at=loan.started_at,
            due_at=loan.due_at,
            returned_at=loan.returned_at,
            reservation_id=str(loan.reservation_id) if loan.reservation_id else None,
        )
        for loan, d, key in rows
    ]
    return LoansAnswer(full=full, cursor=next_cursor, items=items)


@router.get("/staff", response_model=StaffAnswer)
def staff(kiosk_id: KioskId, session: Db) -> StaffAnswer:
    """Every active staff member (always the full list)."""
    del kiosk_id
    rows = session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.id))
    return StaffAnswer(
        items=[
            StaffOut(
                id=str(s.id),
                name=s.name,
                role=s.role,
                pin_hash=s.pin_hash,
                borrower_key=s.borrower_key,
                code_hash=s.code_hash,
            )
            for s in rows
        ]
    )


@router.post(
    "/transactions",
    response_model=TransactionsAnswer,
    responses={422: {"description": "a malformed batch: nothing stored"}},
)
def transactions(kiosk_id: KioskId, session: Db, batch: TransactionBatch) -> TransactionsAnswer:
    """Store a batch exactly once and apply its new rows, in one database transaction."""
    stored = intake.store_batch(session, kiosk_id, batch.transactions)
    return TransactionsAnswer(accepted=stored.accepted, duplicates=stored.duplicates)


@router.post("/heartbeat", response_model=HeartbeatAnswer)
def heartbeat(kiosk_id: KioskId, session: Db, beat: HeartbeatIn) -> HeartbeatAnswer:
    """Store the kiosk's report, take its acknowledgements, answer the pending commands."""
    now = utcnow()
    session.add(
        Heartbeat(
            kiosk_id=kiosk_id,
            received_at=now,
            backlog=beat.backlog,
            payload=beat.model_dump(mode="json", exclude={"acked_commands"}),
        )
    )
    for ack in beat.acked_commands:
        # An unknown id (another kiosk's, or deleted) is ignored: nothing to mark.
        remote.acknowledge(session, kiosk_id, ack.id, ack.result, ack.detail, now)
    commands = [
        CommandOut(id=c.id, kind=c.kind, compartment=c.compartment, reason=c.reason)
        for c in remote.pending(session, kiosk_id, now)
    ]
    session.commit()
    return HeartbeatAnswer(server_time=now, commands=commands)
