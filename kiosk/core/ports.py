"""What the core needs of its store, as protocols: the core never imports SQLAlchemy.

``kiosk.store`` implements ``Store``. A flow decision and its journal row are written in
ONE ``transaction()``: both commit, or neither does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from kiosk.core.model import (
    Alarm,
    Compartment,
    JournalEntry,
    Loan,
    Reservation,
    ReservationStatus,
    StaffMember,
)


class StoreError(Exception):
    """The store cannot be used (locked, unwritable, disk full ...): refuse service."""


class StoreCorrupt(StoreError):
    """The database file fails its integrity check; it is kept for rescue, never replaced."""


class StoreTx(Protocol):
    """One database transaction: reads see its own writes; all commit together."""

    # -- compartments ---------------------------------------------------------------------
    def compartments(self) -> list[Compartment]:
        """Every compartment, by number."""
        ...

    def compartment(self, number: int) -> Compartment | None:
        """Compartment ``number``, or None when the store has none."""
        ...

    def put_compartment(self, compartment: Compartment) -> None:
        """Insert or replace the row of ``compartment.number``."""
        ...

    # -- reservations and loans (the server's cache) --------------------------------------
    def reservation(self, reservation_id: str) -> Reservation | None:
        """The reservation with this id."""
        ...

    def reservations(
        self,
        *,
        borrower_key: str | None = None,
        statuses: Collection[ReservationStatus] | None = None,
        asset_tag: str | None = None,
    ) -> list[Reservation]:
        """Reservations matching every given filter (None: any), oldest ready_by first."""
        ...

    def put_reservation(self, reservation: Reservation) -> None:
        """Insert or replace a reservation."""
        ...

    def replace_reservations(self, reservations: Iterable[Reservation]) -> None:
        """Make the cache hold exactly these reservations (a full pull from the server)."""
        ...

    def loan(self, loan_id: str) -> Loan | None:
        """The loan with this id."""
        ...

    def loans(
        self,
        *,
        borrower_key: str | None = None,
        asset_tag: str | None = None,
        open_only: bool = True,
    ) -> list[Loan]:
        """Loans matching the filters, oldest first; ``open_only``: not returned yet."""
        ...

    def put_loan(self, loan: Loan) -> None:
        """Insert or replace a loan."""
        ...

    def replace_loans(self, loans: Iterable[Loan]) -> None:
        """Make the cache hold exactly these loans."""
        ...

    # -- staff -------------------------------------------------------------------------------
    def staff(self) -> list[StaffMember]:
        """Everyone who may restock."""
        ...

    def replace_staff(self, staff: Iterable[StaffMember]) -> None:
        """Make the staff list exactly this."""
        ...

    # -- alarms ------------------------------------------------------------------------------
    def alarms(self, *, active_only: bool = True) -> list[Alarm]:
        """Alarms, oldest first."""
        ...

    def put_alarm(self, alarm: Alarm) -> None:
        """Insert or replace an alarm."""
        ...

    # -- small persistent values (lockout state, counters) -----------------------------------
    def meta(self, key: str) -> str | None:
        """A stored value, or None."""
        ...

    def set_meta(self, key: str, value: str | None) -> None:
        """Store ``value`` under ``key`` (None deletes it)."""
        ...

    # -- the journal -------------------------------------------------------------------------
    def journal(
        self, kind: str, payload: Mapping[str, Any], *, uuid: str | None = None
    ) -> JournalEntry:
        """Append a journal row (next sequence number, a new UUID unless given)."""
        ...

    def unfinished_opens(self) -> list[JournalEntry]:
        """``open_requested`` rows with no ``open_outcome``/``open_interrupted`` for their id.

        Matched by ``payload["open_id"]``.
        """
        ...


class Store(Protocol):
    """The kiosk's durable store."""

    @property
    def boot(self) -> int:
        """How many times the store was opened: 1 on the first start."""
        ...

    def transaction(self) -> AbstractContextManager[StoreTx]:
        """A read-write transaction, committed (with fsync) when the block ends normally."""
        ...

    def reading(self) -> AbstractContextManager[StoreTx]:
        """A read-only transaction: a consistent view that never blocks writers."""
        ...

    def journal_entries(
        self,
        *,
        after_seq: int = 0,
        since: dt.datetime | None = None,
        unsent_only: bool = False,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Journal rows in sequence order."""
        ...

    def mark_sent(self, uuids: Sequence[str], at: dt.datetime) -> int:
        """Record the server's acknowledgement of these rows; returns how many changed."""
        ...

    def note_attempt(self, uuids: Sequence[str]) -> None:
        """Count one more send attempt for these rows."""
        ...

    def close(self) -> None:
        """Release the database; safe to call twice."""
        ...
