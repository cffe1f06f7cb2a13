"""Rows <-> the core's frozen value types (``kiosk.core.model``).

Enums are stored by value and read back into the core's ``StrEnum`` types; a value this
program does not know (written by a newer version) raises ``ValueError``.
"""

from __future__ import annotations

import json
from typing import Any

from kiosk.core.model import (
    Alarm,
    AlarmKind,
    Compartment,
    CompartmentStatus,
    JournalEntry,
    Loan,
    Reservation,
    ReservationStatus,
    StaffMember,
)
from kiosk.store.schema import (
    AlarmRow,
    CompartmentRow,
    JournalRow,
    LoanRow,
    ReservationRow,
    StaffRow,
)


def compartment_row(c: Compartment) -> CompartmentRow:
    """The row for ``c``."""
    return CompartmentRow(
        number=c.number,
        size=c.size,
        charging=c.charging,
        status=str(c.status),
        asset_tag=c.asset_tag,
        reservation_id=c.reservation_id,
        note=c.note,
        opened_count=c.opened_count,
        status_before=None if c.status_before is None else str(c.status_before),
    )


def compartment(r: CompartmentRow) -> Compartment:
    """The value of row ``r``."""
    return Compartment(
        number=r.number,
        size=r.size,
        charging=r.charging,
        status=CompartmentStatus(r.status),
        asset_tag=r.asset_tag,
        reservation_id=r.reservation_id,
        note=r.note,
        opened_count=r.opened_count,
        status_before=None if r.status_before is None else CompartmentStatus(r.status_before),
    )


def reservation_row(v: Reservation) -> ReservationRow:
    """The row for ``v``."""
    return ReservationRow(
        id=v.id,
        asset_tag=v.asset_tag,
        status=str(v.status),
        borrower_key=v.borrower_key,
        code_hash=v.code_hash,
        device_type=v.device_type,
        size=v.size,
        charging=v.charging,
        compartment=v.compartment,
        ready_by=v.ready_by,
        expires_at=v.expires_at,
        loan_days=v.loan_days,
    )


def reservation(r: ReservationRow) -> Reservation:
    """The value of row ``r``."""
    return Reservation(
        id=r.id,
        asset_tag=r.asset_tag,
        status=ReservationStatus(r.status),
        borrower_key=r.borrower_key,
        code_hash=r.code_hash,
        device_type=r.device_type,
        size=r.size,
        charging=r.charging,
        compartment=r.compartment,
        ready_by=r.ready_by,
        expires_at=r.expires_at,
        loan_days=r.loan_days,
    )


def loan_row(v: Loan) -> LoanRow:
    """The row for ``v``."""
    return LoanRow(
        id=v.id,
        asset_tag=v.asset_tag,
        borrower_key=v.borrower_key,
        device_type=v.device_type,
        size=v.size,
        charging=v.charging,
        started_at=v.started_at,
        due_at=v.due_at,
        returned_at=v.returned_at,
        reservation_id=v.reservation_id,
    )


def loan(r: LoanRow) -> Loan:
    """The value of row ``r``."""
    return Loan(
        id=r.id,
        asset_tag=r.asset_tag,
        borrower_key=r.borrower_key,
        device_type=r.device_type,
        size=r.size,
        charging=r.charging,
        started_at=r.started_at,
        due_at=r.due_at,
        returned_at=r.returned_at,
        reservation_id=r.reservation_id,
    )


def staff_row(v: StaffMember) -> StaffRow:
    """The row for ``v``."""
    return StaffRow(
        id=v.id,
        name=v.name,
        pin_hash=v.pin_hash,
        role=v.role,
        borrower_key=v.borrower_key,
        code_hash=v.code_hash,
    )


def staff(r: StaffRow) -> StaffMember:
    """The value of row ``r``."""
    return StaffMember(
        id=r.id,
        name=r.name,
        pin_hash=r.pin_hash,
        role=r.role,
        borrower_key=r.borrower_key,
        code_hash=r.code_hash,
    )


def alarm_row(v: Alarm) -> AlarmRow:
    """The row for ``v``."""
    return AlarmRow(
        id=v.id,
        kind=str(v.kind),
        raised_at=v.raised_at,
        compartment=v.compartment,
        detail=v.detail,
        acknowledged_by=v.acknowledged_by,
        acknowledged_at=v.acknowledged_at,
        cleared_at=v.cleared_at,
    )


def alarm(r: AlarmRow) -> Alarm:
    """The value of row ``r``."""
    return Alarm(
        id=r.id,
        kind=AlarmKind(r.kind),
        raised_at=r.raised_at,
        compartment=r.compartment,
        detail=r.detail,
        acknowledged_by=r.acknowledged_by,
        acknowledged_at=r.acknowledged_at,
        cleared_at=r.cleared_at,
    )


def payload_text(kind: str, payload: Any) -> str:
    """``payload`` as JSON text; ValueError (naming the kind, not the values) when it is not
    a JSON object of JSON values."""
    if not isinstance(payload, dict) and not hasattr(payload, "items"):
        raise ValueError(f"journal payload of {kind!r} must be a mapping")
    try:
        return json.dumps(dict(payload), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"journal payload of {kind!r} is not JSON-serialisable: {exc}") from None


def journal_entry(r: JournalRow) -> JournalEntry:
    """The value of row ``r`` (the payload decoded afresh: callers cannot alias it)."""
    return JournalEntry(
        seq=r.seq,
        uuid=r.uuid,
        kind=r.kind,
        payload=json.loads(r.payload),
        wall_time=r.wall_time,
        mono_time=r.mono_time,
        boot=r.boot,
        sent_at=r.sent_at,
        attempts=r.attempts,
    )
