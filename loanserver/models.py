"""The loan server's tables: SQLAlchemy 2.0 typed ORM, portable to SQLite and PostgreSQL.

No national register number is ever stored: a borrower is known by the HMAC key only
(``loanserver.keys``). Secrets (kiosk tokens, pickup codes, staff codes, PINs) are stored
as hashes. Enumerations are plain strings checked by a CHECK constraint, so a new value is
a small migration on both databases (no PostgreSQL ENUM type to alter).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

DEVICE_TYPES = ("laptop", "tablet")
SIZES = ("S", "M", "L")
DEVICE_STATUSES = (
    "available",
    "reserved",
    "loaded",
    "on_loan",
    "to_check",
    "in_repair",
    "retired",
)
LANGUAGES = ("nl", "fr", "en")
STAFF_ROLES = ("staff", "admin")
COMMAND_KINDS = ("open", "out_of_service", "back_in_service", "refresh")
COMMAND_RESULTS = ("done", "refused", "failed")
RESERVATION_STATUSES = ("requested", "loaded", "picked_up", "expired", "cancelled")
OPEN_RESERVATION_STATUSES = ("requested", "loaded")

# Named constraints: Alembic can then alter or drop them on both databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    """A portable CHECK expression: ``column IN ('a', 'b')``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store UTC; a naive value is refused, a local time would silently shift."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Give back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING)


class Site(Base):
    """A digibank location (one or more kiosks)."""

    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Kiosk(Base):
    """A locker terminal; authenticates with a bearer token stored as SHA-256 hex."""

    __tablename__ = "kiosks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Device(Base):
    """A lendable laptop or tablet, known by its asset tag."""

    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint(_in("type", DEVICE_TYPES), name="type"),
        CheckConstraint(_in("size", SIZES), name="size"),
        CheckConstraint(_in("status", DEVICE_STATUSES), name="status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_tag: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    size: Mapped[str] = mapped_column(String(1), default="M")
    needs_charging: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="available")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Borrower(Base):
    """A resident: HMAC key of the national number, or NULL for a code-only borrower."""

    __tablename__ = "borrowers"
    __table_args__ = (CheckConstraint(_in("language", LANGUAGES), name="language"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(64), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(2), default="nl")
    contact: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Staff(Base):
    """A staff member: identified by eID (borrower key) or a staff code, then a PIN."""

    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint(_in("role", STAFF_ROLES), name="role"),
        CheckConstraint("borrower_key IS NOT NULL OR code_hash IS NOT NULL", name="identity"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    borrower_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_hash: Mapped[str | None] = mapped_column(String(200))
    pin_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="staff")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Reservation(Base):
    """A device set aside for a borrower at a kiosk, with a hashed pickup code."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint(_in("status", RESERVATION_STATUSES), name="status"),
        Index("ix_reservations_kiosk_status", "kiosk_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosks.id"))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    pickup_code_hash: Mapped[str | None] = mapped_column(String(200))
    compartment: Mapped[int | None] = mapped_column(Integer)  # where it was loaded (kiosk fact)
    ready_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Loan(Base):
    """A device in a borrower's hands, from pickup to return."""

    __tablename__ = "loans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The loan id the kiosk made at pickup (the kiosk API's loan id); unique when known.
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey("borrowers.id"), index=True)
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"))
    pickup_kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosks.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    return_kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosks.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Transaction(Base):
    """The raw log of every kiosk transaction; the UUID makes a repeat harmless."""

    __tablename__ = "transactions"
    # (kiosk, seq) is indexed, not unique: a kiosk whose store was rebuilt restarts its
    # sequence, and a physical fact is stored rather than rejected; the UUID is the key.
    __table_args__ = (Index("ix_transactions_kiosk_seq", "kiosk_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosks.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alarm(Base):
    """An alarm raised by a kiosk or by the server (e.g. a conflicting physical fact)."""

    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosks.id"), index=True)
    # The kiosk's own alarm id (alarm_raised / alarm_cleared rows); None for server alarms.
    external_id: Mapped[str | None] = mapped_column(String(64), index=True)
    compartment: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(500))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Heartbeat(Base):
    """One heartbeat of a kiosk: compartment states, versions, backlog."""

    __tablename__ = "heartbeats"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosks.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    backlog: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Command(Base):
    """A remote command for one kiosk, delivered in heartbeat answers until acknowledged."""

    __tablename__ = "commands"
    __table_args__ = (
        CheckConstraint(_in("kind", COMMAND_KINDS), name="kind"),
        CheckConstraint(f"result IS NULL OR {_in('result', COMMAND_RESULTS)}", name="result"),
        Index("ix_commands_kiosk_done", "kiosk_id", "done_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosks.id"))
    kind: Mapped[str] = mapped_column(String(20))
    compartment: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(200))
