"""``SqlStoreTx``: one transaction of the store, as the core's ``StoreTx``.

Each method reads or writes through the transaction's ORM session and hands back the
core's frozen values; database errors become ``StoreError`` (``errors.translated``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol
from uuid import uuid4

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, aliased

from kiosk.core.clock import Clock
from kiosk.core.model import (
    Alarm,
    Compartment,
    JournalEntry,
    Loan,
    Reservation,
    ReservationStatus,
    StaffMember,
    TxKind,
)
from kiosk.store import convert
from kiosk.store.errors import translated
from kiosk.store.schema import (
    AlarmRow,
    CompartmentRow,
    JournalRow,
    LoanRow,
    MetaRow,
    ReservationRow,
    StaffRow,
)


class StoreContext(Protocol):
    """What a transaction needs of its store."""

    @property
    def path(self) -> Path: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def boot(self) -> int: ...


def aware(value: dt.datetime, what: str) -> dt.datetime:
    """``value``, or ValueError when it has no time zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value.isoformat()}")
    return value


class SqlStoreTx:
    """One transaction (``StoreTx``) of ``SqlStore.transaction()`` or ``reading()``.

    Use it only inside its ``with`` block and only on the thread that opened it.
    """

    def __init__(self, session: Session, store: StoreContext) -> None:
        self._session = session
        self._store = store
        self.written: list[str] = []  # kinds of the journal rows written, in order

    @property
    def path(self) -> Path:
        """The database file (for error messages)."""
        return self._store.path

    # -- compartments -----------------------------------------------------------------------
    @translated
    def compartments(self) -> list[Compartment]:
        """Every compartment, by number."""
        rows = self._session.scalars(select(CompartmentRow).order_by(CompartmentRow.number))
        return [convert.compartment(r) for r in rows]

    @translated
    def compartment(self, number: int) -> Compartment | None:
        """Compartment ``number``, or None."""
        row = self._session.get(CompartmentRow, number)
        return None if row is None else convert.compartment(row)

    @translated
    def put_compartment(self, compartment: Compartment) -> None:
        """Insert or replace the row of ``compartment.number``."""
        self._session.merge(convert.compartment_row(compartment))
        self._session.flush()

    # -- reservations and loans -------------------------------------------------------------
    @translated
    def reservation(self, reservation_id: str) -> Reservation | None:
        """The reservation with this id."""
        row = self._session.get(ReservationRow, reservation_id)
        return None if row is None else convert.reservation(row)

    @translated
    def reservations(
        self,
        *,
        borrower_key: str | None = None,
        statuses: Collection[ReservationStatus] | None = None,
        asset_tag: str | None = None,
    ) -> list[Reservation]:
        """Reservations matching every given filter, oldest ``ready_by`` first (unset last)."""
        stmt = select(ReservationRow)
        if borrower_key is not None:
            stmt = stmt.where(ReservationRow.borrower_key == borrower_key)
        if statuses is not None:
            stmt = stmt.where(ReservationRow.status.in_([str(s) for s in statuses]))
        if asset_tag is not None:
            stmt = stmt.where(ReservationRow.asset_tag == asset_tag)
        stmt = stmt.order_by(ReservationRow.ready_by.asc().nulls_last(), ReservationRow.id)
        return [convert.reservation(r) for r in self._session.scalars(stmt)]

    @translated
    def put_reservation(self, reservation: Reservation) -> None:
        """Insert or replace a reservation."""
        self._session.merge(convert.reservation_row(reservation))
        self._session.flush()

    @translated
    def replace_reservations(self, reservations: Iterable[Reservation]) -> None:
        """Make the cache hold exactly these reservations (the last of a repeated id wins)."""
        rows = {r.id: convert.reservation_row(r) for r in reservations}
        self._replace_all(ReservationRow, rows.values())

    @translated
    def loan(self, loan_id: str) -> Loan | None:
        """The loan with this id."""
        row = self._session.get(LoanRow, loan_id)
        return None if row is None else convert.loan(row)

    @translated
    def loans(
        self,
        *,
        borrower_key: str | None = None,
        asset_tag: str | None = None,
        open_only: bool = True,
    ) -> list[Loan]:
        """Loans matching the filters, oldest ``started_at`` first (unset last)."""
        stmt = select(LoanRow)
        if borrower_key is not None:
            stmt = stmt.where(LoanRow.borrower_key == borrower_key)
        if asset_tag is not None:
            stmt = stmt.where(LoanRow.asset_tag == asset_tag)
        if open_only:
            stmt = stmt.where(LoanRow.returned_at.is_(None))
        stmt = stmt.order_by(LoanRow.started_at.asc().nulls_last(), LoanRow.id)
        return [convert.loan(r) for r in self._session.scalars(stmt)]

    @translated
    def put_loan(self, loan: Loan) -> None:
        """Insert or replace a loan."""
        self._session.merge(convert.loan_row(loan))
        self._session.flush()

    @translated
    def replace_loans(self, loans: Iterable[Loan]) -> None:
        """Make the cache hold exactly these loans (the last of a repeated id wins)."""
        rows = {v.id: convert.loan_row(v) for v in loans}
        self._replace_all(LoanRow, rows.values())

    # -- staff ------------------------------------------------------------------------------
    @translated
    def staff(self) -> list[StaffMember]:
        """Everyone who may restock, by id."""
        rows = self._session.scalars(select(StaffRow).order_by(StaffRow.id))
        return [convert.staff(r) for r in rows]

    @translated
    def replace_staff(self, staff: Iterable[StaffMember]) -> None:
        """Make the staff list exactly this (the last of a repeated id wins)."""
        rows = {v.id: convert.staff_row(v) for v in staff}
        self._replace_all(StaffRow, rows.values())

    def _replace_all(self, table: type[Any], rows: Iterable[Any]) -> None:
        # Flush pending changes, then forget every loaded object: the bulk DELETE bypasses
        # the identity map, and a new row may reuse the id of a deleted one.
        self._session.flush()
        self._session.execute(delete(table).execution_options(synchronize_session=False))
        self._session.expunge_all()
        self._session.add_all(list(rows))
        self._session.flush()

    # -- alarms -----------------------------------------------------------------------------
    @translated
    def alarms(self, *, active_only: bool = True) -> list[Alarm]:
        """Alarms, oldest first."""
        stmt = select(AlarmRow)
        if active_only:
            stmt = stmt.where(AlarmRow.cleared_at.is_(None))
        stmt = stmt.order_by(AlarmRow.raised_at, AlarmRow.id)
        return [convert.alarm(r) for r in self._session.scalars(stmt)]

    @translated
    def put_alarm(self, alarm: Alarm) -> None:
        """Insert or replace an alarm."""
        self._session.merge(convert.alarm_row(alarm))
        self._session.flush()

    # -- meta -------------------------------------------------------------------------------
    @translated
    def meta(self, key: str) -> str | None:
        """A stored value, or None."""
        row = self._session.get(MetaRow, key)
        return None if row is None else row.value

    @translated
    def set_meta(self, key: str, value: str | None) -> None:
        """Store ``value`` under ``key``; None deletes it."""
        row = self._session.get(MetaRow, key)
        if value is None:
            if row is not None:
                self._session.delete(row)
        elif row is None:
            self._session.add(MetaRow(key=key, value=value))
        else:
            row.value = value
        self._session.flush()

    # -- journal ----------------------------------------------------------------------------
    @translated
    def journal(
        self, kind: str, payload: Mapping[str, Any], *, uuid: str | None = None
    ) -> JournalEntry:
        """Append a journal row: the next sequence number, ``uuid`` or a new UUID4.

        ValueError (before anything is written) when the payload is not JSON-serialisable.
        """
        kind = str(kind)
        if not kind:
            raise ValueError("journal kind is empty")
        body = convert.payload_text(kind, payload)
        wall = aware(self._store.clock.now(), "clock.now()")
        open_id = payload.get("open_id")
        row = JournalRow(
            uuid=uuid or str(uuid4()),
            kind=kind,
            payload=body,
            open_id=None if open_id is None else str(open_id),
            wall_time=wall,
            mono_time=float(self._store.clock.monotonic()),
            boot=self._store.boot,
            sent_at=None,
            attempts=0,
        )
        self._session.add(row)
        self._session.flush()  # assigns seq; a duplicate uuid fails here
        self.written.append(kind)
        return convert.journal_entry(row)

    @translated
    def unfinished_opens(self) -> list[JournalEntry]:
        """``open_requested`` rows whose ``open_id`` has no outcome/interrupted row yet.

        A row without ``open_id`` cannot be matched and is left out.
        """
        done = aliased(JournalRow)
        finished = exists().where(
            done.open_id == JournalRow.open_id,
            done.kind.in_([str(TxKind.OPEN_OUTCOME), str(TxKind.OPEN_INTERRUPTED)]),
        )
        stmt = (
            select(JournalRow)
            .where(
                JournalRow.kind == str(TxKind.OPEN_REQUESTED),
                JournalRow.open_id.is_not(None),
                ~finished,
            )
            .order_by(JournalRow.seq)
        )
        return [convert.journal_entry(r) for r in self._session.scalars(stmt)]
