"""``SqlStore``: the core's ``Store`` on SQLite (its transactions are ``tx.SqlStoreTx``).

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from kiosk.core.clock import Clock
from kiosk.core.model import Alarm, JournalEntry
from kiosk.core.ports import StoreError
from kiosk.store import convert
from kiosk.store.errors import DB_ERRORS, translate, translated
from kiosk.store.schema import AlarmRow, CompartmentRow, JournalRow, MetaRow
from kiosk.store.tx import SqlStoreTx, aware

__all__ = ["SqlStore", "SqlStoreTx", "StoreReport"]

log = logging.getLogger("kiosk.store")

BEGIN_OPTION = "kiosk_begin"  # execution option read by db.py's "begin" event listener
WRITE_WAIT_S = 10.0  # how long a write waits for another thread's write to finish
_CHUNK = 500  # uuids per IN (...): well below SQLite's bound-parameter limit
BOOT_KEY = "boot"

Checkpoint = Callable[[str], None]


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
            stmt = stmt.where(JournalRow.wall_time >= aware(since, "since"))
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
        aware(at, "at")
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
