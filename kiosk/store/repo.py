"""``SqlStore`` and ``SqlStoreTx``: the core's ``Store``/``StoreTx`` on SQLite.

Threads: one ``SqlStore`` may be shared by threads (the core's worker and the sync relay).
Each call takes its own pooled connection; write transactions are serialised by a lock in
the process (and by ``BEGIN IMMEDIATE`` between processes); reads run beside a writer
(WAL). A ``SqlStoreTx`` belongs to the thread that opened it, and a thread may not open a
second write transaction inside the first (that would wait for itself): it gets StoreError.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import Engine, delete, exists, func, select, text, update
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
from kiosk.core.ports import StoreError
from kiosk.store import convert
from kiosk.store.errors import DB_ERRORS, translate, translated
from kiosk.store.schema import (
    AlarmRow,
    CompartmentRow,
    JournalRow,
    LoanRow,
    MetaRow,
    ReservationRow,
    StaffRow,
)

log = logging.getLogger("kiosk.store")

BEGIN_OPTION = "kiosk_begin"  # execution option read by db.py's "begin" event listener
WRITE_WAIT_S = 10.0  # how long a write waits for another thread's write to finish
_CHUNK = 500  # uuids per IN (...): well below SQLite's bound-parameter limit
BOOT_KEY = "boot"

Checkpoint = Callable[[str], None]


def _aware(value: dt.datetime, what: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value.isoformat()}")
    return value


class SqlStoreTx:
    """One write transaction (``StoreTx``); use it only inside ``SqlStore.transaction()``."""

    def __init__(self, session: Session, store: SqlStore) -> None:
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
        wall = _aware(self._store.clock.now(), "clock.now()")
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


@dataclass(frozen=True)
class StoreReport:
    """What ``db check`` prints: the state of a store at one moment."""

    path: Path
    revision: str | None
    boot: int
    journal_mode: str
    journal_rows: int
    unsent_rows: int
    oldest_unsent: dt.datetime | None
    compartments: dict[str, int] = field(default_factory=dict)  # by status
    active_alarms: list[Alarm] = field(default_factory=list)


class SqlStore:
    """The kiosk's durable store (``Store``); build it with ``kiosk.store.open_store``."""

    def __init__(
        self,
        engine: Engine,
        *,
        path: Path,
        clock: Clock,
        checkpoint: Checkpoint | None = None,
        read_only: bool = False,
    ) -> None:
        self._engine = engine
        self.path = path
        self.clock = clock
        self._checkpoint = checkpoint
        self.read_only = read_only
        self._boot = 0
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._closed = False

    @property
    def boot(self) -> int:
        """How many times the store was opened for writing: 1 on the first start."""
        return self._boot

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (tests and ``db`` commands only; the core never sees it)."""
        return self._engine

    # -- sessions ---------------------------------------------------------------------------
    @contextmanager
    def _session(self, *, write: bool) -> Iterator[tuple[Session, Callable[[], None]]]:
        """A session in one transaction; the caller calls ``commit`` to keep its writes."""
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        if write and self.read_only:
            raise StoreError(f"{self.path}: opened read-only; writes are refused")
        if write and getattr(self._local, "writing", False):
            raise StoreError("a write transaction is already open in this thread")
        if write and not self._write_lock.acquire(timeout=WRITE_WAIT_S):
            raise StoreError(f"{self.path}: another write did not finish in {WRITE_WAIT_S:.0f} s")
        try:
            if write:
                self._local.writing = True
            with self._engine.connect() as conn:
                conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE" if write else "DEFERRED"})
                conn.begin()
                with Session(bind=conn, expire_on_commit=False) as session:
                    yield session, conn.commit
                # Not committed: the connection's close rolls the transaction back.
        finally:
            if write:
                self._local.writing = False
                self._write_lock.release()

    @contextmanager
    def transaction(self) -> Iterator[SqlStoreTx]:
        """A write transaction: committed (fsync'd) at normal exit, rolled back on exception.

        The checkpoint hook sees ``journal:<kind>:before_commit`` for each journal row just
        before COMMIT and ``journal:<kind>:committed`` after it, in row order.
        """
        try:
            with self._session(write=True) as (session, commit):
                tx = SqlStoreTx(session, self)
                yield tx
                session.flush()
                if self._checkpoint is not None:
                    for kind in tx.written:
                        self._checkpoint(f"journal:{kind}:before_commit")
                commit()
        except DB_ERRORS as exc:
            raise translate(exc, self.path) from exc
        if self._checkpoint is not None:
            for kind in tx.written:
                self._checkpoint(f"journal:{kind}:committed")
        if tx.written:
            log.debug("committed %d journal row(s)", len(tx.written))

    @contextmanager
    def reading(self) -> Iterator[SqlStoreTx]:
        """A read transaction (a consistent snapshot, not blocking writers); nothing commits."""
        try:
            with self._session(write=False) as (session, _commit):
                yield SqlStoreTx(session, self)
        except DB_ERRORS as exc:
            raise translate(exc, self.path) from exc

    # -- the outbox -------------------------------------------------------------------------
    @translated
    def journal_entries(
        self,
        *,
        after_seq: int = 0,
        since: dt.datetime | None = None,
        unsent_only: bool = False,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Journal rows after ``after_seq``, written at or after ``since``, in sequence order."""
        stmt = select(JournalRow).where(JournalRow.seq > after_seq)
        if since is not None:
            stmt = stmt.where(JournalRow.wall_time >= _aware(since, "since"))
        if unsent_only:
            stmt = stmt.where(JournalRow.sent_at.is_(None))
        stmt = stmt.order_by(JournalRow.seq)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._session(write=False) as (session, _commit):
            return [convert.journal_entry(r) for r in session.scalars(stmt)]

    @translated
    def mark_sent(self, uuids: Sequence[str], at: dt.datetime) -> int:
        """Set ``sent_at`` on these rows where it is not set yet; returns how many changed."""
        _aware(at, "at")
        changed = 0
        with self._session(write=True) as (session, commit):
            for chunk in _chunks(uuids):
                result = session.execute(
                    update(JournalRow)
                    .where(JournalRow.uuid.in_(chunk), JournalRow.sent_at.is_(None))
                    .values(sent_at=at)
                    .execution_options(synchronize_session=False)
                )
                changed += int(getattr(result, "rowcount", 0))
            commit()
        return changed

    @translated
    def note_attempt(self, uuids: Sequence[str]) -> None:
        """Count one more send attempt on each of these rows."""
        with self._session(write=True) as (session, commit):
            for chunk in _chunks(uuids):
                session.execute(
                    update(JournalRow)
                    .where(JournalRow.uuid.in_(chunk))
                    .values(attempts=JournalRow.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
            commit()

    # -- start-up and inspection ------------------------------------------------------------
    @translated
    def start(self) -> int:
        """Count this start in ``meta`` (read-only: just read the count); returns it."""
        if self.read_only:
            with self._session(write=False) as (session, _commit):
                row = session.get(MetaRow, BOOT_KEY)
                self._boot = int(row.value) if row is not None else 0
            return self._boot
        with self.transaction() as tx:
            boot = int(tx.meta(BOOT_KEY) or 0) + 1
            tx.set_meta(BOOT_KEY, str(boot))
        self._boot = boot
        return boot

    @translated
    def pragmas(self) -> dict[str, Any]:
        """journal_mode, synchronous, foreign_keys and busy_timeout of a pooled connection."""
        names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "query_only")
        with self._engine.connect() as conn:
            return {n: conn.exec_driver_sql(f"PRAGMA {n}").scalar() for n in names}

    @translated
    def integrity_check(self, *, full: bool = True) -> list[str]:
        """The problems ``PRAGMA integrity_check`` (or ``quick_check``) finds; [] when none."""
        pragma = "integrity_check" if full else "quick_check"
        with self._engine.connect() as conn:
            found = [" ".join(str(r[0]).split()) for r in conn.exec_driver_sql(f"PRAGMA {pragma}")]
        return [] if found == ["ok"] else found

    @translated
    def report(self) -> StoreReport:
        """Counts for ``db check``, read in one snapshot."""
        with self._session(write=False) as (session, _commit):
            revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
            boot_row = session.get(MetaRow, BOOT_KEY)
            rows = session.scalar(select(func.count()).select_from(JournalRow)) or 0
            unsent = select(JournalRow).where(JournalRow.sent_at.is_(None))
            unsent_count = session.scalar(select(func.count()).select_from(unsent.subquery()))
            oldest = session.scalars(unsent.order_by(JournalRow.seq).limit(1)).first()
            statuses = Counter(session.scalars(select(CompartmentRow.status)))
            alarms = session.scalars(
                select(AlarmRow).where(AlarmRow.cleared_at.is_(None)).order_by(AlarmRow.raised_at)
            )
            active = [convert.alarm(a) for a in alarms]
            mode = session.execute(text("PRAGMA journal_mode")).scalar()
        return StoreReport(
            path=self.path,
            revision=revision,
            boot=int(boot_row.value) if boot_row is not None else 0,
            journal_mode=str(mode),
            journal_rows=int(rows),
            unsent_rows=int(unsent_count or 0),
            oldest_unsent=None if oldest is None else oldest.wall_time,
            compartments=dict(sorted(statuses.items())),
            active_alarms=active,
        )

    def close(self) -> None:
        """Close every pooled connection (SQLite then checkpoints the WAL); safe twice."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    items = list(items)
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
