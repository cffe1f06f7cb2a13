"""``MemoryStore``: the ``Store`` protocol in plain Python memory (tests, benchmarks, demo).

Like gpiozero's mock pin factory it ships with the product: the flows can be run and
measured without SQLite. Nothing survives the process; the real store is ``kiosk.store``.
A transaction works on copies and swaps them in at the end, so a failing block leaves
no trace, as in the database.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import uuid as uuidlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

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
from kiosk.core.ports import StoreError

_CLOSING = (TxKind.OPEN_OUTCOME.value, TxKind.OPEN_INTERRUPTED.value)


@dataclass
class _Data:
    compartments: dict[int, Compartment] = field(default_factory=dict)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    loans: dict[str, Loan] = field(default_factory=dict)
    staff: dict[str, StaffMember] = field(default_factory=dict)
    alarms: dict[str, Alarm] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    journal: list[JournalEntry] = field(default_factory=list)


class MemoryTx:
    """One transaction over a private copy of the data."""

    def __init__(self, data: _Data, clock: Clock, boot: int) -> None:
        self.d = data
        self._clock = clock
        self._boot = boot

    def compartments(self) -> list[Compartment]:
        return [self.d.compartments[n] for n in sorted(self.d.compartments)]

    def compartment(self, number: int) -> Compartment | None:
        return self.d.compartments.get(number)

    def put_compartment(self, compartment: Compartment) -> None:
        self.d.compartments[compartment.number] = compartment

    def reservation(self, reservation_id: str) -> Reservation | None:
        return self.d.reservations.get(reservation_id)

    def reservations(
        self,
        *,
        borrower_key: str | None = None,
        statuses: Collection[ReservationStatus] | None = None,
        asset_tag: str | None = None,
    ) -> list[Reservation]:
        found = [
            r
            for r in self.d.reservations.values()
            if (borrower_key is None or r.borrower_key == borrower_key)
            and (statuses is None or r.status in statuses)
            and (asset_tag is None or r.asset_tag == asset_tag)
        ]
        far = dt.datetime.max.replace(tzinfo=dt.UTC)
        return sorted(found, key=lambda r: (r.ready_by or far, r.id))

    def put_reservation(self, reservation: Reservation) -> None:
        self.d.reservations[reservation.id] = reservation

    def replace_reservations(self, reservations: Iterable[Reservation]) -> None:
        self.d.reservations = {r.id: r for r in reservations}

    def loan(self, loan_id: str) -> Loan | None:
        return self.d.loans.get(loan_id)

    def loans(
        self,
        *,
        borrower_key: str | None = None,
        asset_tag: str | None = None,
        open_only: bool = True,
    ) -> list[Loan]:
        found = [
            loan
            for loan in self.d.loans.values()
            if (borrower_key is None or loan.borrower_key == borrower_key)
            and (asset_tag is None or loan.asset_tag == asset_tag)
            and (not open_only or loan.returned_at is None)
        ]
        far = dt.datetime.max.replace(tzinfo=dt.UTC)
        return sorted(found, key=lambda loan: (loan.started_at or far, loan.id))

    def put_loan(self, loan: Loan) -> None:
        self.d.loans[loan.id] = loan

    def replace_loans(self, loans: Iterable[Loan]) -> None:
        self.d.loans = {loan.id: loan for loan in loans}

    def staff(self) -> list[StaffMember]:
        return list(self.d.staff.values())

    def replace_staff(self, staff: Iterable[StaffMember]) -> None:
        self.d.staff = {m.id: m for m in staff}

    def alarms(self, *, active_only: bool = True) -> list[Alarm]:
        found = [a for a in self.d.alarms.values() if a.active or not active_only]
        return sorted(found, key=lambda a: (a.raised_at, a.id))

    def put_alarm(self, alarm: Alarm) -> None:
        self.d.alarms[alarm.id] = alarm

    def meta(self, key: str) -> str | None:
        return self.d.meta.get(key)

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.d.meta.pop(key, None)
        else:
            self.d.meta[key] = value

    def journal(
        self, kind: str, payload: Mapping[str, Any], *, uuid: str | None = None
    ) -> JournalEntry:
        seq = self.d.journal[-1].seq + 1 if self.d.journal else 1
        entry = JournalEntry(
            seq=seq,
            uuid=uuid or str(uuidlib.uuid4()),
            kind=str(kind),
            payload=copy.deepcopy(dict(payload)),
            wall_time=self._clock.now(),
            mono_time=self._clock.monotonic(),
            boot=self._boot,
        )
        self.d.journal.append(entry)
        return entry

    def unfinished_opens(self) -> list[JournalEntry]:
        closed = {e.payload.get("open_id") for e in self.d.journal if e.kind in _CLOSING}
        return [
            e
            for e in self.d.journal
            if e.kind == TxKind.OPEN_REQUESTED.value and e.payload.get("open_id") not in closed
        ]


class MemoryStore:
    """A ``Store`` in memory; ``boot`` counts ``restart()`` calls (tests of start-up)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._data = _Data()
        self._lock = threading.RLock()
        self._writer: int | None = None  # thread id inside transaction(), to refuse nesting
        self._boot = 1

    @property
    def boot(self) -> int:
        return self._boot

    def restart(self) -> None:
        """Pretend the kiosk restarted: same data, next boot number."""
        self._boot += 1

    @contextmanager
    def transaction(self) -> Iterator[MemoryTx]:
        """A write transaction; like the SQLite store, one inside another is refused."""
        if self._writer == threading.get_ident():
            raise StoreError("a write transaction is already open on this thread")
        with self._lock:
            self._writer = threading.get_ident()
            work = _Data(**{name: copy.copy(value) for name, value in vars(self._data).items()})
            try:
                yield MemoryTx(work, self._clock, self._boot)
                self._data = work  # only reached when the block did not raise
            finally:
                self._writer = None

    @contextmanager
    def reading(self) -> Iterator[MemoryTx]:
        """A read-only view (writes to it are thrown away)."""
        with self._lock:
            copies = {name: copy.copy(value) for name, value in vars(self._data).items()}
            yield MemoryTx(_Data(**copies), self._clock, self._boot)

    def journal_entries(
        self,
        *,
        after_seq: int = 0,
        since: dt.datetime | None = None,
        unsent_only: bool = False,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        with self._lock:
            rows = [
                e
                for e in self._data.journal
                if e.seq > after_seq
                and (since is None or (e.wall_time is not None and e.wall_time >= since))
                and (not unsent_only or e.sent_at is None)
            ]
        return rows[:limit] if limit is not None else rows

    def mark_sent(self, uuids: Sequence[str], at: dt.datetime) -> int:
        wanted, changed = set(uuids), 0
        with self._lock:
            for index, entry in enumerate(self._data.journal):
                if entry.uuid in wanted and entry.sent_at is None:
                    self._data.journal[index] = replace(entry, sent_at=at)
                    changed += 1
        return changed

    def note_attempt(self, uuids: Sequence[str]) -> None:
        wanted = set(uuids)
        with self._lock:
            for index, entry in enumerate(self._data.journal):
                if entry.uuid in wanted:
                    self._data.journal[index] = replace(entry, attempts=entry.attempts + 1)

    def close(self) -> None:
        """Nothing to release."""
