"""Back-office operations on the loan server's data, shared by the CLI and (later) the API.

Each function takes a ``Session``, checks its input and either commits its change or
raises ``Refused`` (a valid request the data does not allow: exit 1) or ``InvalidInput``
(a malformed request: exit 2) and changes nothing. Secrets are returned once and stored
only as hashes; a national register number is turned into the key at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loanserver import keys
from loanserver.models import (
    DEVICE_TYPES,
    LANGUAGES,
    OPEN_RESERVATION_STATUSES,
    SIZES,
    STAFF_ROLES,
    Borrower,
    Device,
    Kiosk,
    Loan,
    Reservation,
    Staff,
    utcnow,
)

RESERVATION_LIFETIME = timedelta(days=7)  # unpicked after this: expired, device freed
NAME_MAX = 100


class ServiceError(Exception):
    """Base of the operations' errors; the message is one clear line for the operator."""


class InvalidInput(ServiceError):
    """The request itself is malformed (a usage error)."""


class Refused(ServiceError):
    """The request is well formed but the data does not allow it."""


@dataclass(frozen=True)
class NewKiosk:
    """A kiosk just added; ``token`` exists only here, never in the database."""

    id: int
    name: str
    token: str


@dataclass(frozen=True)
class NewReservation:
    """A reservation just made; ``pickup_code`` exists only here."""

    id: int
    expires_at: datetime
    pickup_code: str


@dataclass(frozen=True)
class LoanRow:
    """One open loan for listing (no personal data beyond the borrower id)."""

    loan_id: int
    asset_tag: str
    borrower_id: int
    started_at: datetime
    due_at: datetime
    overdue: bool


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > NAME_MAX or not value.isprintable():
        raise InvalidInput(f"{what} must be 1 to {NAME_MAX} printable characters")
    return value


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"{what} must be one of {', '.join(allowed)} (got {value!r})")
    return value


def _kiosk_by_name(session: Session, name: str) -> Kiosk:
    kiosk = session.scalar(select(Kiosk).where(Kiosk.name == name))
    if kiosk is None:
        raise Refused(f"unknown kiosk {name!r}")
    return kiosk


def _device_by_tag(session: Session, asset_tag: str) -> Device:
    device = session.scalar(select(Device).where(Device.asset_tag == asset_tag))
    if device is None:
        raise Refused(f"unknown device {asset_tag!r}")
    return device


def _borrower_key(pepper: bytes | None, national_number: str) -> str:
    if pepper is None:
        raise InvalidInput(
            "a national register number needs the pepper: pass --pepper-file or set "
            "LOANSERVER_PEPPER_FILE"
        )
    try:
        return keys.borrower_key(pepper, national_number)
    except keys.InvalidKeyInput as exc:
        raise InvalidInput(str(exc)) from None


def add_kiosk(session: Session, name: str) -> NewKiosk:
    """Add a kiosk; its bearer token is returned once and stored as a SHA-256 hash."""
    name = _name(name, "a kiosk name")
    if session.scalar(select(Kiosk.id).where(Kiosk.name == name)) is not None:
        raise Refused(f"a kiosk named {name!r} already exists")
    token = keys.new_token()
    kiosk = Kiosk(name=name, token_hash=keys.token_hash(token))
    session.add(kiosk)
    session.commit()
    return NewKiosk(id=kiosk.id, name=kiosk.name, token=token)


def add_device(
    session: Session, asset_tag: str, *, type: str, size: str = "M", charging: bool = False
) -> Device:
    """Add a lendable device; the asset tag must be new."""
    asset_tag = _name(asset_tag, "an asset tag")
    _choice(type, DEVICE_TYPES, "the device type")
    _choice(size, SIZES, "the size")
    if session.scalar(select(Device.id).where(Device.asset_tag == asset_tag)) is not None:
        raise Refused(f"duplicate asset tag {asset_tag!r}: a device with it already exists")
    device = Device(asset_tag=asset_tag, type=type, size=size, needs_charging=charging)
    session.add(device)
    session.commit()
    return device


def register_borrower(
    session: Session,
    *,
    pepper: bytes | None = None,
    national_number: str | None = None,
    code_only: bool = False,
    first_name: str | None = None,
    language: str = "nl",
    contact: str | None = None,
) -> Borrower:
    """Register a borrower by national number (only its key is kept) or code-only."""
    if (national_number is None) == (not code_only):
        raise InvalidInput("give either a national register number or code-only, not both")
    _choice(language, LANGUAGES, "the language")
    if first_name is not None:
        first_name = _name(first_name, "a first name")
    key = None
    if national_number is not None:
        key = _borrower_key(pepper, national_number)
        if session.scalar(select(Borrower.id).where(Borrower.key == key)) is not None:
            raise Refused("this person is already registered as a borrower")
    borrower = Borrower(key=key, first_name=first_name, language=language, contact=contact)
    session.add(borrower)
    session.commit()
    return borrower


def reserve(session: Session, borrower_id: int, asset_tag: str, kiosk_name: str) -> NewReservation:
    """Reserve an available device for a borrower at a kiosk; the code is returned once."""
    expire_reservations(session)  # a device whose reservation lapsed is available again
    borrower = session.get(Borrower, borrower_id)
    if borrower is None:
        raise Refused(f"borrower {borrower_id} unknown")
    device = _device_by_tag(session, asset_tag)
    kiosk = _kiosk_by_name(session, kiosk_name)
    if device.status != "available":
        raise Refused(f"device {asset_tag!r} is not available (status {device.status})")
    # Compare-and-set: of two concurrent reservations of one device only one wins, on
    # PostgreSQL's READ COMMITTED too (a plain read-then-write would let both through).
    taken = session.execute(
        update(Device)
        .where(Device.id == device.id, Device.status == "available")
        .values(status="reserved")
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        session.rollback()
        raise Refused(f"device {asset_tag!r} is not available (reserved meanwhile)")
    code = keys.new_pickup_code()
    now = utcnow()
    reservation = Reservation(
        borrower_id=borrower.id,
        device_id=device.id,
        kiosk_id=kiosk.id,
        status="requested",
        pickup_code_hash=keys.hash_code(code),
        expires_at=now + RESERVATION_LIFETIME,
        created_at=now,
    )
    session.add(reservation)
    session.commit()
    session.refresh(device)
    return NewReservation(
        id=reservation.id, expires_at=now + RESERVATION_LIFETIME, pickup_code=code
    )


def expire_reservations(session: Session, now: datetime | None = None) -> int:
    """Open reservations past ``expires_at`` become ``expired``; returns how many.

    A device never loaded goes back to ``available``. A loaded one stays ``loaded``: it
    is still in the compartment until staff take it out (the ``unload`` row frees it).
    Called before the kiosk pulls, so the kiosk learns of the expiry in its next answer.
    """
    now = now or utcnow()
    due = session.scalars(
        select(Reservation).where(
            Reservation.status.in_(OPEN_RESERVATION_STATUSES),
            Reservation.expires_at.is_not(None),
            Reservation.expires_at <= now,
        )
    ).all()
    for reservation in due:
        if reservation.status == "requested":
            session.execute(
                update(Device)
                .where(Device.id == reservation.device_id, Device.status == "reserved")
                .values(status="available")
                .execution_options(synchronize_session=False)
            )
        reservation.status = "expired"
        reservation.updated_at = now
    if due:
        session.commit()
    return len(due)


def cancel(session: Session, reservation_id: int) -> Reservation:
    """Cancel an open reservation; a device not yet loaded becomes available again."""
    reservation = session.get(Reservation, reservation_id)
    if reservation is None:
        raise Refused(f"reservation {reservation_id} unknown")
    if reservation.status not in OPEN_RESERVATION_STATUSES:
        raise Refused(f"reservation {reservation_id} is already {reservation.status}")
    was_loaded = reservation.status == "loaded"
    reservation.status = "cancelled"
    device = session.get(Device, reservation.device_id)
    # A loaded device is still in a compartment: staff take it out, the kiosk reports it.
    if device is not None and device.status == "reserved" and not was_loaded:
        device.status = "available"
    session.commit()
    return reservation


def list_loans(
    session: Session, *, overdue_only: bool = False, now: datetime | None = None
) -> list[LoanRow]:
    """Open loans (not returned), oldest due first; ``overdue_only``: past their due date."""
    now = now or utcnow()
    query = (
        select(Loan, Device.asset_tag)
        .join(Device, Device.id == Loan.device_id)
        .where(Loan.returned_at.is_(None))
        .order_by(Loan.due_at, Loan.id)
    )
    if overdue_only:
        query = query.where(Loan.due_at < now)
    return [
        LoanRow(
            loan_id=loan.id,
            asset_tag=tag,
            borrower_id=loan.borrower_id,
            started_at=loan.started_at,
            due_at=loan.due_at,
            overdue=loan.due_at < now,
        )
        for loan, tag in session.execute(query).all()
    ]


def add_staff(
    session: Session,
    *,
    name: str,
    pin: str,
    role: str = "staff",
    pepper: bytes | None = None,
    national_number: str | None = None,
    code: str | None = None,
) -> Staff:
    """Add a staff member identified by eID (key) or a staff code, with a PIN."""
    name = _name(name, "a staff name")
    _choice(role, STAFF_ROLES, "the role")
    if (national_number is None) == (code is None):
        raise InvalidInput("give either a national register number or a staff code, not both")
    if not (pin.isdigit() and pin.isascii() and 4 <= len(pin) <= 12):
        raise InvalidInput("a PIN has 4 to 12 digits")
    key = code_hash = None
    if national_number is not None:
        key = _borrower_key(pepper, national_number)
        if session.scalar(select(Staff.id).where(Staff.borrower_key == key)) is not None:
            raise Refused("this person is already registered as staff")
    else:
        assert code is not None
        if not (code.isascii() and code.isalnum() and 4 <= len(code) <= 32):
            raise InvalidInput("a staff code has 4 to 32 letters or digits")
        for stored in session.scalars(select(Staff.code_hash).where(Staff.code_hash.is_not(None))):
            if keys.check_code(code, stored):
                raise Refused("this staff code is already in use")
        code_hash = keys.hash_code(code)
    staff = Staff(
        name=name, borrower_key=key, code_hash=code_hash, pin_hash=keys.hash_code(pin), role=role
    )
    session.add(staff)
    session.commit()
    return staff
