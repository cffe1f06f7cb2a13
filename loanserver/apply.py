"""The server-side state change of each kiosk transaction kind (docs/api.md, the table).

Physical facts win: a row that conflicts with the server's view (a pickup of a cancelled
reservation, a return of a closed loan or of an unknown device ...) is applied as far as
it makes sense and raises a server alarm ``conflict`` for the kiosk with a one-line
detail; it is never refused. A payload value of the wrong type counts as unknown. Nothing
here commits: the caller holds the whole batch in one database transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanserver import payload as p
from loanserver import remote
from loanserver.models import (
    COMMAND_RESULTS,
    OPEN_RESERVATION_STATUSES,
    Alarm,
    Borrower,
    Device,
    Loan,
    Reservation,
    Transaction,
)

LOAN_DAYS = 14  # when a pickup carries no usable due date
DETAIL_MAX = 500
CONFLICT = "conflict"


@dataclass
class _Row:
    """One stored transaction being applied, and what went against the server's view."""

    session: Session
    kiosk_id: int
    at: datetime
    payload: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    def device(self, reservation: Reservation | None = None) -> Device | None:
        """The payload's device (asset tag); without a tag, the reservation's device.

        A tag of the wrong type, or one the server does not know, is a problem.
        """
        raw = self.payload.get("asset_tag")
        if raw is None:
            return self.session.get(Device, reservation.device_id) if reservation else None
        tag = p.text(self.payload, "asset_tag")
        if tag is None:
            self.problems.append(f"asset tag {p.show(self.payload, 'asset_tag')} unusable")
            return None
        device = self.session.scalar(select(Device).where(Device.asset_tag == tag))
        if device is None:
            self.problems.append(f"unknown asset tag {tag!r}")
        return device

    def reservation(self, required: bool = True) -> Reservation | None:
        """The payload's reservation (kiosk id = server id as a string)."""
        rid = p.number(self.payload, "reservation_id")
        reservation = self.session.get(Reservation, rid) if rid is not None else None
        if reservation is None:
            if required or self.payload.get("reservation_id") is not None:
                shown = p.show(self.payload, "reservation_id")
                self.problems.append(f"unknown reservation {shown}")
        elif reservation.kiosk_id != self.kiosk_id:
            self.problems.append(f"reservation {reservation.id} is for another kiosk")
        return reservation


def apply(session: Session, kiosk_id: int, row: Transaction) -> None:
    """Apply one stored transaction ``row`` of kiosk ``kiosk_id`` (unknown kinds: log only)."""
    handler = HANDLERS.get(row.kind)
    if handler is None:
        return
    payload = row.payload if isinstance(row.payload, dict) else {}
    work = _Row(session, kiosk_id, row.occurred_at or datetime.now(UTC), payload)
    summary = handler(work)
    if work.problems:
        detail = f"{row.kind} #{row.seq}: {'; '.join(work.problems)}"
        if summary:
            detail += f" ({summary})"
        session.add(
            Alarm(
                kiosk_id=kiosk_id,
                kind=CONFLICT,
                compartment=p.number(payload, "compartment"),
                detail=p.clip(detail, DETAIL_MAX),
                raised_at=datetime.now(UTC),
            )
        )


def _pair(work: _Row, reservation: Reservation | None, device: Device | None) -> bool:
    """True when the reservation and the device agree (or one of them is unknown)."""
    if reservation is None or device is None or reservation.device_id == device.id:
        return True
    work.problems.append(f"{device.asset_tag!r} is not the device of reservation {reservation.id}")
    return False


def _load(work: _Row) -> str:
    reservation = work.reservation()
    device = work.device(reservation)
    if _pair(work, reservation, device) and reservation is not None:
        if reservation.status in OPEN_RESERVATION_STATUSES:
            reservation.status = "loaded"
            reservation.compartment = p.number(work.payload, "compartment")
        else:
            work.problems.append(f"reservation {reservation.id} was {reservation.status}")
    if device is None:
        return ""
    if device.status == "on_loan":
        work.problems.append(f"{device.asset_tag!r} was on loan")
    device.status = "loaded"  # it is in a compartment now, whatever the paperwork says
    return "device marked loaded"


def _unload(work: _Row) -> str:
    reservation = work.reservation(required=False)
    device = work.device(reservation)
    if device is None:
        if not work.problems:
            work.problems.append("no asset tag")
        return ""
    if reservation is None and device.status == "loaded":
        # The kiosk lost the link; the device's open reservation is the one unloaded.
        reservation = work.session.scalar(
            select(Reservation).where(
                Reservation.device_id == device.id, Reservation.status == "loaded"
            )
        )
    if not _pair(work, reservation, device):
        return ""
    if reservation is not None and reservation.status in OPEN_RESERVATION_STATUSES:
        reservation.status = "requested"
        reservation.compartment = None
        device.status = "reserved"
    elif reservation is not None and reservation.status == "picked_up":
        work.problems.append(f"reservation {reservation.id} was already picked up")
    elif device.status == "loaded":
        device.status = "available"  # cancelled or expired meanwhile: back on the shelf
    return ""  # a returned device stays to_check: staff check it before the next loan


def _pickup(work: _Row) -> str:
    reservation = work.reservation()
    device = work.device(reservation)
    matched = _pair(work, reservation, device)
    if matched and reservation is not None:
        if reservation.status in OPEN_RESERVATION_STATUSES:
            reservation.status = "picked_up"
            reservation.compartment = None
        else:
            work.problems.append(f"reservation {reservation.id} was {reservation.status}")
    if device is None:
        return "no loan recorded"
    return _start_loan(work, device, reservation if matched else None)


def _start_loan(work: _Row, device: Device, reservation: Reservation | None) -> str:
    """The device left the cabinet: a loan, whatever else was wrong."""
    session = work.session
    loan_id = p.text(work.payload, "loan_id")
    if loan_id is not None and session.scalar(select(Loan.id).where(Loan.external_id == loan_id)):
        work.problems.append(f"loan {loan_id!r} already recorded")
        return "no new loan"
    if device.status == "on_loan":
        work.problems.append(f"{device.asset_tag!r} was already on loan")
    borrower_id = reservation.borrower_id if reservation is not None else None
    key = p.text(work.payload, "borrower_key")
    if borrower_id is None and key is not None:
        borrower_id = session.scalar(select(Borrower.id).where(Borrower.key == key))
    started = p.moment(work.payload, "started_at") or work.at
    due_day = p.day(work.payload, "due_date")
    if due_day is None:
        work.problems.append(f"due date {p.show(work.payload, 'due_date')} unusable")
        due_day = (started + timedelta(days=LOAN_DAYS)).date()
    session.add(
        Loan(
            external_id=loan_id,
            device_id=device.id,
            borrower_id=borrower_id,
            reservation_id=reservation.id if reservation is not None else None,
            pickup_kiosk_id=work.kiosk_id,
            started_at=started,
            due_at=datetime.combine(due_day, time(23, 59), tzinfo=UTC),
        )
    )
    device.status = "on_loan"
    return "loan recorded"


def _find_loan(work: _Row, device: Device | None) -> Loan | None:
    """The loan the kiosk named (its id or ``srv-N``), else the device's open loan."""
    session, loan_id = work.session, p.text(work.payload, "loan_id")
    loan = None
    if loan_id is not None:
        loan = session.scalar(select(Loan).where(Loan.external_id == loan_id))
        if loan is None and loan_id.startswith("srv-"):
            server_id = p.number({"id": loan_id.removeprefix("srv-")}, "id")
            loan = session.get(Loan, server_id) if server_id is not None else None
        if loan is None:
            work.problems.append(f"unknown loan {loan_id!r}")
    elif work.payload.get("loan_id") is not None:
        work.problems.append(f"unknown loan {p.show(work.payload, 'loan_id')}")
    if loan is not None and device is not None and loan.device_id != device.id:
        work.problems.append(f"loan {loan_id!r} is of another device")
        loan = None
    if loan is None and device is not None:
        loan = session.scalar(
            select(Loan)
            .where(Loan.device_id == device.id, Loan.returned_at.is_(None))
            .order_by(Loan.started_at.desc(), Loan.id.desc())
        )
        if loan is None:
            work.problems.append(f"{device.asset_tag!r} had no open loan")
    return loan


def _return(work: _Row) -> str:
    device = work.device()
    loan = _find_loan(work, device)
    if device is None and loan is None and not work.problems:
        work.problems.append("neither an asset tag nor a loan id")
    if device is None and loan is not None:
        device = work.session.get(Device, loan.device_id)
    if loan is not None:
        if loan.returned_at is not None:
            work.problems.append("loan already returned")
        else:
            loan.returned_at = work.at
            loan.return_kiosk_id = work.kiosk_id
    if device is None:
        return "device taken in, unknown to the server"
    device.status = "to_check"
    return "device marked to check"


def _alarm_raised(work: _Row) -> str:
    alarm_id = p.text(work.payload, "alarm_id")
    kind = p.text(work.payload, "kind", 40)
    if alarm_id is None or kind is None:
        work.problems.append(
            f"alarm id {p.show(work.payload, 'alarm_id')} or kind {p.show(work.payload, 'kind')}"
            " unusable"
        )
        return "alarm not stored"
    known = work.session.scalar(
        select(Alarm.id).where(Alarm.kiosk_id == work.kiosk_id, Alarm.external_id == alarm_id)
    )
    if known is None:
        detail = work.payload.get("detail")
        work.session.add(
            Alarm(
                kiosk_id=work.kiosk_id,
                external_id=alarm_id,
                kind=kind,
                compartment=p.number(work.payload, "compartment"),
                detail=p.clip(detail, DETAIL_MAX) if detail else None,
                raised_at=work.at,
            )
        )
    return ""


def _alarm_cleared(work: _Row) -> str:
    alarm_id = p.text(work.payload, "alarm_id")
    if alarm_id is None:
        work.problems.append(f"alarm id {p.show(work.payload, 'alarm_id')} unusable")
        return ""
    for alarm in work.session.scalars(
        select(Alarm).where(
            Alarm.kiosk_id == work.kiosk_id,
            Alarm.external_id == alarm_id,
            Alarm.cleared_at.is_(None),
        )
    ):
        alarm.cleared_at = work.at
    return ""  # an alarm raised before the server knew the kiosk: nothing to clear


def _remote_command(work: _Row) -> str:
    command_id = p.number(work.payload, "command_id")
    result = work.payload.get("result")
    if command_id is None or result not in COMMAND_RESULTS:
        work.problems.append(
            f"command {p.show(work.payload, 'command_id')} result {p.show(work.payload, 'result')}"
            " unusable"
        )
        return ""
    detail = work.payload.get("detail")
    detail = detail if isinstance(detail, str) else ""
    known = remote.acknowledge(
        work.session, work.kiosk_id, command_id, str(result), detail, work.at
    )
    if not known:
        work.problems.append(f"unknown command {command_id}")
    return ""


HANDLERS: dict[str, Callable[[_Row], str]] = {
    "load": _load,
    "unload": _unload,
    "pickup": _pickup,
    "return": _return,
    "alarm_raised": _alarm_raised,
    "alarm_cleared": _alarm_cleared,
    "remote_command": _remote_command,
}
