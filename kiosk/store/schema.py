"""The tables of the kiosk's local store (SQLAlchemy 2.0 typed ORM).

``migrations/versions`` creates exactly these tables (a test compares them). Enum values
are stored as plain strings, not SQL enums: a new value in ``kiosk.core.model`` then needs
no migration. Datetimes go through ``UTCDateTime`` so they always come back UTC-aware.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, Index, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Named constraints and indexes, so migrations can refer to them (SQLite batch mode needs it).
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime stored as naive UTC text (SQLite has no time zones).

    A naive datetime is refused: guessing its zone would shift journal times silently.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        """Aware datetime -> naive UTC for the database."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; the store needs UTC")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        """Naive UTC from the database -> aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every table in the store."""

    metadata = MetaData(naming_convention=NAMING)


class CompartmentRow(Base):
    """What the kiosk believes each compartment holds (``model.Compartment``)."""

    __tablename__ = "compartments"

    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    size: Mapped[str] = mapped_column(String)
    charging: Mapped[bool]
    status: Mapped[str] = mapped_column(String)
    asset_tag: Mapped[str | None] = mapped_column(String)
    reservation_id: Mapped[str | None] = mapped_column(String)
    note: Mapped[str] = mapped_column(Text)
    opened_count: Mapped[int]
    status_before: Mapped[str | None] = mapped_column(String)


class ReservationRow(Base):
    """The server's reservations for this kiosk, cached (``model.Reservation``)."""

    __tablename__ = "reservations"
    __table_args__ = (
        Index("ix_reservations_borrower_key", "borrower_key"),
        Index("ix_reservations_asset_tag", "asset_tag"),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    asset_tag: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    borrower_key: Mapped[str | None] = mapped_column(String)
    code_hash: Mapped[str | None] = mapped_column(String)
    device_type: Mapped[str] = mapped_column(String)
    size: Mapped[str] = mapped_column(String)
    charging: Mapped[bool]
    compartment: Mapped[int | None]
    ready_by: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    loan_days: Mapped[int]


class LoanRow(Base):
    """Loans out, cached from the server or started here (``model.Loan``)."""

    __tablename__ = "loans"
    __table_args__ = (
        Index("ix_loans_borrower_key", "borrower_key"),
        Index("ix_loans_asset_tag", "asset_tag"),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    asset_tag: Mapped[str] = mapped_column(String)
    borrower_key: Mapped[str | None] = mapped_column(String)
    device_type: Mapped[str] = mapped_column(String)
    size: Mapped[str] = mapped_column(String)
    charging: Mapped[bool]
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    returned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reservation_id: Mapped[str | None] = mapped_column(String)


class StaffRow(Base):
    """Who may restock (``model.StaffMember``)."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    pin_hash: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String)
    borrower_key: Mapped[str | None] = mapped_column(String)
    code_hash: Mapped[str | None] = mapped_column(String)


class AlarmRow(Base):
    """Raised alarms, active until cleared (``model.Alarm``)."""

    __tablename__ = "alarms"
    __table_args__ = (Index("ix_alarms_cleared_at", "cleared_at"),)

    id: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    compartment: Mapped[int | None]
    detail: Mapped[str] = mapped_column(Text)
    acknowledged_by: Mapped[str | None] = mapped_column(String)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cleared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class MetaRow(Base):
    """Small persistent values: the boot counter, lockout state ..."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class JournalRow(Base):
    """The journal, which is also the outbox: rows are appended, marked sent, never deleted.

    ``sqlite_autoincrement``: a sequence number is never reused, even if the newest row were
    ever removed by hand; a rolled-back insert gives its number back (no gap).
    """

    __tablename__ = "journal"
    __table_args__ = (
        Index("ix_journal_uuid", "uuid", unique=True),
        # "unsent, in order" (the relay's query) is a range scan of this index.
        Index("ix_journal_sent_at_seq", "sent_at", "seq"),
        Index("ix_journal_open_id", "open_id"),
        Index("ix_journal_kind", "kind"),
        Index("ix_journal_wall_time", "wall_time"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    payload: Mapped[str] = mapped_column(Text)  # JSON text
    open_id: Mapped[str | None] = mapped_column(String)  # payload["open_id"], for matching
    wall_time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    mono_time: Mapped[float]
    boot: Mapped[int]
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int]
