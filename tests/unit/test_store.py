"""The local store on real SQLite files: pragmas, round trips, the journal, failures."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from kiosk.core.clock import ManualClock
from kiosk.core.model import (
    Alarm,
    AlarmKind,
    Compartment,
    CompartmentStatus,
    Loan,
    Reservation,
    ReservationStatus,
    StaffMember,
    TxKind,
)
from kiosk.core.ports import Store, StoreCorrupt, StoreError, StoreTx
from kiosk.store import SqlStore, open_store

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
CET = dt.timezone(dt.timedelta(hours=1))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "kiosk.db"


@pytest.fixture
def store(db: Path, clock: ManualClock) -> Iterator[SqlStore]:
    s = open_store(db, clock)
    yield s
    s.close()


def _statements(store: SqlStore) -> list[str]:
    seen: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _log(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    return seen


def _journal(store: SqlStore, n: int, kind: str = "pickup") -> list[str]:
    with store.transaction() as tx:
        return [tx.journal(kind, {"i": i}).uuid for i in range(n)]


# -- engine and connection setup -----------------------------------------------------------


def test_store_satisfies_the_core_protocols(store: SqlStore) -> None:
    s: Store = store
    with s.transaction() as tx:
        t: StoreTx = tx
        assert t.compartments() == []


def test_pragmas_are_set_on_every_pooled_connection(store: SqlStore) -> None:
    assert store.pragmas() == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "query_only": 0,
    }
    # Two connections at once: both come from the pool with the pragmas applied.
    with store.engine.connect() as a, store.engine.connect() as b:
        for conn in (a, b):
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert (db_mode := sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone())
    assert db_mode[0] == "wal"  # persistent in the file itself


def test_write_transactions_begin_immediate_reads_deferred(store: SqlStore) -> None:
    seen = _statements(store)
    with store.transaction() as tx:
        tx.set_meta("k", "v")
    store.journal_entries()
    assert "BEGIN IMMEDIATE" in seen
    assert seen.index("BEGIN IMMEDIATE") < seen.index("BEGIN DEFERRED")
    assert sum(s.startswith("BEGIN") for s in seen) == 2


def test_boot_counter_counts_every_open(db: Path, clock: ManualClock) -> None:
    for expected in (1, 2, 3):
        s = open_store(db, clock)
        assert s.boot == expected
        s.close()
    ro = open_store(db, clock, read_only=True)
    assert ro.boot == 3  # reading does not count as a start
    ro.close()
    again = open_store(db, clock)
    assert again.boot == 4
    again.close()


def test_close_is_idempotent_and_final(store: SqlStore) -> None:
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"), store.transaction():
        pass


# -- round trips ----------------------------------------------------------------------------


def test_every_value_type_round_trips(store: SqlStore) -> None:
    later = dt.datetime(2026, 11, 3, 10, 30, 15, 123456, tzinfo=CET)
    comp = Compartment(
        4,
        size="L",
        charging=True,
        status=CompartmentStatus.OUT_OF_SERVICE,
        asset_tag="DB-0042",
        reservation_id="R-1",
        note="lock jammed",
        opened_count=17,
        status_before=CompartmentStatus.LOADED,
    )
    res = Reservation(
        "R-1",
        "DB-0042",
        status=ReservationStatus.LOADED,
        borrower_key="k" * 64,
        code_hash="pbkdf2-sha256$20000$00$11",
        device_type="tablet",
        size="S",
        charging=True,
        compartment=4,
        ready_by=T0,
        expires_at=later,
        loan_days=21,
    )
    loan = Loan(
        "L-1",
        "DB-0007",
        borrower_key="b" * 64,
        device_type="tablet",
        size="L",
        charging=True,
        started_at=T0,
        due_at=later,
        returned_at=later,
        reservation_id="R-0",
    )
    member = StaffMember("S-1", "Ann", "pbkdf2-sha256$1$aa$bb", "admin", "s" * 64, "cc")
    alarm = Alarm(
        "A-1",
        AlarmKind.DOOR_FORCED,
        T0,
        compartment=4,
        detail="door 4 opened without a pulse",
        acknowledged_by="S-1",
        acknowledged_at=later,
        cleared_at=later,
    )
    with store.transaction() as tx:
        tx.put_compartment(comp)
        tx.put_reservation(res)
        tx.put_loan(loan)
        tx.replace_staff([member])
        tx.put_alarm(alarm)
    with store.reading() as tx:
        assert tx.compartment(4) == comp
        assert tx.compartments() == [comp]
        assert tx.reservation("R-1") == res
        assert tx.loan("L-1") == loan
        assert tx.loans(open_only=False) == [loan]
        assert tx.staff() == [member]
        assert tx.alarms(active_only=False) == [alarm]
        back = tx.reservation("R-1")
        assert back is not None and back.expires_at is not None
        assert back.expires_at.tzinfo == dt.UTC  # the same instant, given back in UTC
        assert tx.compartment(5) is None and tx.reservation("x") is None and tx.loan("x") is None


def test_defaults_round_trip(store: SqlStore) -> None:
    values = (
        Compartment(1),
        Reservation("R", "T"),
        Loan("L", "T"),
        Alarm("A", AlarmKind.JAMMED, T0),
    )
    with store.transaction() as tx:
        tx.put_compartment(values[0])
        tx.put_reservation(values[1])
        tx.put_loan(values[2])
        tx.put_alarm(values[3])
    with store.reading() as tx:
        assert (tx.compartment(1), tx.reservation("R"), tx.loan("L")) == values[:3]
        assert tx.alarms() == [values[3]]


def test_naive_datetime_is_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="naive"), store.transaction() as tx:
        tx.put_reservation(Reservation("R", "T", ready_by=dt.datetime(2026, 1, 1)))
    with store.reading() as tx:
        assert tx.reservation("R") is None


def test_put_replaces_the_row_with_the_same_key(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.put_compartment(Compartment(1, status=CompartmentStatus.LOADED))
        tx.put_compartment(Compartment(1, status=CompartmentStatus.EMPTY, opened_count=1))
        assert tx.compartments() == [Compartment(1, opened_count=1)]
    with store.transaction() as tx:
        tx.put_compartment(Compartment(1, status=CompartmentStatus.RETURNED))
        assert tx.compartments() == [Compartment(1, status=CompartmentStatus.RETURNED)]


def test_replace_makes_the_cache_exactly_the_given_rows(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.put_reservation(Reservation("old", "T0"))
        tx.put_reservation(Reservation("keep", "T1"))
        tx.put_loan(Loan("old", "T0"))
        tx.replace_staff([StaffMember("a", "A", "h")])
    with store.transaction() as tx:
        tx.put_reservation(Reservation("new-in-tx", "T9"))  # pending in the same transaction
        tx.replace_reservations([Reservation("keep", "T2"), Reservation("new", "T3")])
        tx.replace_loans([Loan("L2", "T4"), Loan("L2", "T5")])  # the last of an id wins
        tx.replace_staff([StaffMember("b", "B", "h")])
        assert [r.id for r in tx.reservations()] == ["keep", "new"]
    with store.reading() as tx:
        assert tx.reservation("keep") == Reservation("keep", "T2")
        assert tx.reservation("old") is None and tx.reservation("new-in-tx") is None
        assert tx.loans() == [Loan("L2", "T5")]
        assert [m.id for m in tx.staff()] == ["b"]
    with store.transaction() as tx:
        tx.replace_reservations([])
        assert tx.reservations() == []


def test_reservation_filters_and_order(store: SqlStore) -> None:
    day = dt.timedelta(days=1)
    rows = [
        Reservation("c", "T1", borrower_key="k1", ready_by=None),
        Reservation("b", "T2", borrower_key="k1", ready_by=T0 + day),
        Reservation("a", "T3", borrower_key="k2", ready_by=T0, status=ReservationStatus.LOADED),
        Reservation("d", "T1", borrower_key="k1", ready_by=T0, status=ReservationStatus.EXPIRED),
    ]
    with store.transaction() as tx:
        tx.replace_reservations(rows)
        assert [r.id for r in tx.reservations()] == ["a", "d", "b", "c"]  # unset ready_by last
        assert [r.id for r in tx.reservations(borrower_key="k1")] == ["d", "b", "c"]
        loaded = tx.reservations(statuses={ReservationStatus.LOADED, ReservationStatus.EXPIRED})
        assert [r.id for r in loaded] == ["a", "d"]
        assert [r.id for r in tx.reservations(asset_tag="T1", borrower_key="k1")] == ["d", "c"]
        assert tx.reservations(statuses=[]) == []


def test_loan_filters(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.replace_loans(
            [
                Loan("1", "T1", borrower_key="k", started_at=T0),
                Loan("2", "T2", borrower_key="k", started_at=T0, returned_at=T0),
                Loan("3", "T1", borrower_key="j", started_at=T0 - dt.timedelta(days=1)),
            ]
        )
        assert [v.id for v in tx.loans()] == ["3", "1"]
        assert [v.id for v in tx.loans(open_only=False, borrower_key="k")] == ["1", "2"]
        assert [v.id for v in tx.loans(asset_tag="T1")] == ["3", "1"]


def test_alarms_active_and_all(store: SqlStore) -> None:
    cleared = Alarm("1", AlarmKind.JAMMED, T0, cleared_at=T0)
    active = Alarm("2", AlarmKind.DOOR_FORCED, T0 + dt.timedelta(seconds=1))
    with store.transaction() as tx:
        tx.put_alarm(active)
        tx.put_alarm(cleared)
        assert tx.alarms() == [active]
        assert tx.alarms(active_only=False) == [cleared, active]


def test_meta_set_get_delete(store: SqlStore) -> None:
    with store.transaction() as tx:
        assert tx.meta("lockout") is None
        tx.set_meta("lockout", "3")
        tx.set_meta("lockout", "4")
        assert tx.meta("lockout") == "4"
    with store.transaction() as tx:
        assert tx.meta("lockout") == "4"
        tx.set_meta("lockout", None)
        tx.set_meta("never-set", None)
    with store.reading() as tx:
        assert tx.meta("lockout") is None


# -- the journal ----------------------------------------------------------------------------


def test_journal_row_fields(store: SqlStore, clock: ManualClock) -> None:
    clock.advance(5)
    with store.transaction() as tx:
        entry = tx.journal(TxKind.PICKUP, {"loan_id": "L1", "compartment": 3})
    assert entry.seq == 1 and entry.kind == "pickup"
    assert entry.payload == {"loan_id": "L1", "compartment": 3}
    assert entry.wall_time == T0 + dt.timedelta(seconds=5)
    assert entry.mono_time == 1005.0
    assert entry.boot == 1 and entry.sent_at is None and entry.attempts == 0
    assert len(entry.uuid) == 36
    assert store.journal_entries() == [entry]


def test_journal_seq_contiguous_across_reopen_and_rollback(db: Path, clock: ManualClock) -> None:
    s = open_store(db, clock)
    _journal(s, 3)
    with pytest.raises(RuntimeError), s.transaction() as tx:
        tx.journal("pickup", {})
        raise RuntimeError("flow failed")
    s.close()
    s = open_store(db, clock)
    _journal(s, 2)
    entries = s.journal_entries()
    s.close()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert [e.boot for e in entries] == [1, 1, 1, 2, 2]
    assert len({e.uuid for e in entries}) == 5


def test_given_uuid_is_kept_and_a_duplicate_refused(store: SqlStore) -> None:
    with store.transaction() as tx:
        assert tx.journal("load", {}, uuid="fixed-1").uuid == "fixed-1"
    with pytest.raises(StoreError, match="UNIQUE"), store.transaction() as tx:
        tx.journal("load", {}, uuid="fixed-1")
    assert [e.seq for e in store.journal_entries()] == [1]
    assert _journal(store, 1) and store.journal_entries()[-1].seq == 2


def test_rollback_writes_nothing(store: SqlStore) -> None:
    with pytest.raises(KeyError), store.transaction() as tx:
        tx.put_compartment(Compartment(1))
        tx.set_meta("x", "1")
        tx.journal("load", {"a": 1})
        raise KeyError("boom")
    with store.reading() as tx:
        assert tx.compartments() == [] and tx.meta("x") is None
    assert store.journal_entries() == []


def test_payload_must_be_json(store: SqlStore) -> None:
    with store.transaction() as tx:
        for bad in ({"when": T0}, {"x": float("nan")}, {"s": {1, 2}}):
            with pytest.raises(ValueError, match="not JSON-serialisable"):
                tx.journal("pickup", bad)
        with pytest.raises(ValueError, match="mapping"):
            tx.journal("pickup", ["not", "a", "mapping"])  # type: ignore[arg-type]
        assert tx.journal("pickup", {"ok": "é"}).seq == 1  # nothing consumed before


def test_returned_payload_is_a_copy(store: SqlStore) -> None:
    payload: dict[str, Any] = {"list": [1]}
    with store.transaction() as tx:
        entry = tx.journal("pickup", payload)
    payload["list"].append(2)
    assert entry.payload == {"list": [1]}
    assert store.journal_entries()[0].payload == {"list": [1]}


def test_checkpoints_around_commit_in_row_order(db: Path, clock: ManualClock) -> None:
    calls: list[tuple[str, int]] = []
    reader = open_store(db, clock)

    def checkpoint(name: str) -> None:
        calls.append((name, len(reader.journal_entries())))  # visible to another reader?

    store = open_store(db, clock, checkpoint=checkpoint)
    with store.transaction() as tx:
        tx.journal("open_requested", {"open_id": "o1"})
        tx.journal("open_outcome", {"open_id": "o1"})
    with store.transaction() as tx:
        tx.set_meta("no", "journal")  # no journal row: no checkpoint
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.journal("pickup", {})
        raise RuntimeError
    assert calls == [
        ("journal:open_requested:before_commit", 0),
        ("journal:open_outcome:before_commit", 0),
        ("journal:open_requested:committed", 2),
        ("journal:open_outcome:committed", 2),
    ]
    store.close()
    reader.close()


def test_unfinished_opens(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.journal(TxKind.OPEN_REQUESTED, {"open_id": "a", "compartment": 1})
        tx.journal(TxKind.OPEN_REQUESTED, {"open_id": "b", "compartment": 2})
        tx.journal(TxKind.OPEN_REQUESTED, {"open_id": "c", "compartment": 3})
        tx.journal(TxKind.OPEN_REQUESTED, {"compartment": 4})  # no id: cannot be matched
        tx.journal(TxKind.OPEN_OUTCOME, {"open_id": "a", "outcome": "opened"})
        tx.journal(TxKind.PICKUP, {"open_id": "b"})  # not an outcome
        assert [e.payload["open_id"] for e in tx.unfinished_opens()] == ["b", "c"]
    with store.transaction() as tx:
        tx.journal(TxKind.OPEN_INTERRUPTED, {"open_id": "c"})
    with store.reading() as tx:
        assert [e.payload["compartment"] for e in tx.unfinished_opens()] == [2]


def test_mark_sent_note_attempt_and_unsent_filter(store: SqlStore, clock: ManualClock) -> None:
    uuids = _journal(store, 4)
    store.note_attempt(uuids[:2])
    store.note_attempt(uuids[:1])
    ack = T0 + dt.timedelta(minutes=5)
    assert store.mark_sent([*uuids[:2], "unknown"], ack) == 2
    assert store.mark_sent(uuids[:3], ack + dt.timedelta(hours=1)) == 1  # only the unsent one
    assert store.mark_sent([], ack) == 0
    rows = store.journal_entries()
    assert [r.attempts for r in rows] == [2, 1, 0, 0]
    assert [r.sent_at for r in rows] == [ack, ack, ack + dt.timedelta(hours=1), None]
    assert [r.seq for r in store.journal_entries(unsent_only=True)] == [4]
    with pytest.raises(ValueError, match="timezone-aware"):
        store.mark_sent(uuids, dt.datetime(2026, 1, 1))


def test_mark_sent_many_uuids(store: SqlStore) -> None:
    uuids = _journal(store, 1200)  # more than one IN (...) chunk
    assert store.mark_sent(uuids, T0) == 1200
    assert store.journal_entries(unsent_only=True) == []


def test_journal_entries_filters(store: SqlStore, clock: ManualClock) -> None:
    _journal(store, 3)
    clock.advance(3600)
    _journal(store, 2)
    since = T0 + dt.timedelta(minutes=30)
    assert [e.seq for e in store.journal_entries(since=since)] == [4, 5]
    assert [e.seq for e in store.journal_entries(since=since.astimezone(CET))] == [4, 5]
    assert [e.seq for e in store.journal_entries(after_seq=2, limit=2)] == [3, 4]
    assert [e.seq for e in store.journal_entries(after_seq=5)] == []
    with pytest.raises(ValueError, match="timezone-aware"):
        store.journal_entries(since=dt.datetime(2026, 1, 1))


def test_nested_write_transaction_is_refused(store: SqlStore) -> None:
    with store.transaction(), pytest.raises(StoreError, match="already open"):
        store.mark_sent(["x"], T0)
    with store.transaction() as tx:  # the lock was released
        tx.set_meta("a", "b")


def test_read_only_store_refuses_writes(db: Path, clock: ManualClock) -> None:
    open_store(db, clock).close()
    ro = open_store(db, clock, read_only=True)
    with pytest.raises(StoreError, match="read-only"), ro.transaction():
        pass
    assert ro.pragmas()["query_only"] == 1
    ro.close()


# -- concurrency ----------------------------------------------------------------------------


def test_reader_reads_while_a_writer_holds_its_transaction(db: Path, clock: ManualClock) -> None:
    writer = open_store(db, clock)
    reader = open_store(db, clock)
    _journal(writer, 2)
    inside, release = threading.Event(), threading.Event()

    def write() -> None:
        with writer.transaction() as tx:
            tx.journal("pickup", {"late": True})
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert inside.wait(10)
        # WAL: the reader sees the committed rows at once, not the pending one.
        assert [e.seq for e in reader.journal_entries()] == [1, 2]
    finally:
        release.set()
        thread.join(10)
    assert [e.seq for e in reader.journal_entries()] == [1, 2, 3]
    writer.close()
    reader.close()


def test_two_writers_queue_up(db: Path, clock: ManualClock) -> None:
    first, second = open_store(db, clock), open_store(db, clock)
    inside = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        with first.transaction() as tx:
            tx.journal("a", {})
            inside.set()
            threading.Event().wait(0.3)

    def other() -> None:
        try:
            with second.transaction() as tx:
                tx.journal("b", {})
        except BaseException as exc:  # reported below
            errors.append(exc)

    t1 = threading.Thread(target=hold)
    t1.start()
    assert inside.wait(10)
    t2 = threading.Thread(target=other)
    t2.start()
    t1.join(10)
    t2.join(10)
    assert errors == []
    assert [(e.seq, e.kind) for e in first.journal_entries()] == [(1, "a"), (2, "b")]
    first.close()
    second.close()


def test_one_store_shared_by_threads(store: SqlStore) -> None:
    def work() -> None:
        for _ in range(20):
            _journal(store, 1)
            store.note_attempt([e.uuid for e in store.journal_entries(unsent_only=True)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [e.seq for e in store.journal_entries()] == list(range(1, 81))


# -- opening failures -----------------------------------------------------------------------


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_random_bytes_are_refused_and_kept(db: Path, clock: ManualClock) -> None:
    db.write_bytes(os.urandom(8192))
    before = _bytes(db)
    with pytest.raises(StoreCorrupt, match="not a SQLite database"):
        open_store(db, clock)
    assert _bytes(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["kiosk.db"]


def test_a_damaged_page_is_refused_and_kept(db: Path, clock: ManualClock) -> None:
    s = open_store(db, clock)
    with s.transaction() as tx:
        for i in range(400):
            tx.journal("pickup", {"i": i, "pad": "x" * 200})
    s.close()
    assert not Path(f"{db}-wal").exists()  # checkpointed into the file at close
    page = 4096
    data = bytearray(_bytes(db))
    assert len(data) > 10 * page
    data[5 * page : 6 * page] = os.urandom(page)
    db.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match="integrity check"):
        open_store(db, clock)
    assert _bytes(db) == bytes(data)


def test_a_newer_schema_is_refused_and_kept(db: Path, clock: ManualClock) -> None:
    open_store(db, clock).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    before = _bytes(db)
    with pytest.raises(StoreCorrupt, match="9999 is newer"):
        open_store(db, clock)
    assert _bytes(db) == before


def test_missing_directory(tmp_path: Path, clock: ManualClock) -> None:
    with pytest.raises(StoreError, match="does not exist; create it and make it writable"):
        open_store(tmp_path / "nope" / "kiosk.db", clock)
    assert not (tmp_path / "nope").exists()


def test_missing_file_without_create(db: Path, clock: ManualClock) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(db, clock, create=False)
    with pytest.raises(StoreError, match="does not exist"):
        open_store(db, clock, read_only=True)
    assert not db.exists()


def test_a_directory_in_place_of_the_file(db: Path, clock: ManualClock) -> None:
    db.mkdir()
    with pytest.raises(StoreError, match="not a regular file"):
        open_store(db, clock)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: root ignores file permissions, so nothing is unwritable",
)
def test_read_only_directory_and_file(tmp_path: Path, clock: ManualClock) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="not writable"):
            open_store(locked / "kiosk.db", clock)
    finally:
        locked.chmod(0o755)
    db = locked / "kiosk.db"
    open_store(db, clock).close()
    db.chmod(0o444)
    try:
        with pytest.raises(StoreError, match="not readable and writable"):
            open_store(db, clock)
    finally:
        db.chmod(0o644)


def test_disk_full_in_a_transaction_is_a_store_error(store: SqlStore) -> None:
    pages = sqlite3.connect(store.path).execute("PRAGMA page_count").fetchone()[0]

    def limit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    store.engine.dispose()
    event.listen(store.engine, "connect", limit)
    with pytest.raises(StoreError, match="disk is full"), store.transaction() as tx:
        for i in range(200):
            tx.journal("pickup", {"pad": "x" * 1000, "i": i})
    event.remove(store.engine, "connect", limit)
    store.engine.dispose()
    assert store.journal_entries() == []
    assert _journal(store, 1) and store.journal_entries()[0].seq == 1


def test_report(store: SqlStore, clock: ManualClock) -> None:
    uuids = _journal(store, 3)
    store.mark_sent(uuids[:1], T0)
    with store.transaction() as tx:
        tx.put_compartment(Compartment(1))
        tx.put_compartment(Compartment(2, status=CompartmentStatus.LOADED))
        tx.put_compartment(Compartment(3, status=CompartmentStatus.LOADED))
        tx.put_alarm(Alarm("a", AlarmKind.JAMMED, T0, compartment=2))
    report = store.report()
    assert report.revision == "0001" and report.boot == 1 and report.journal_mode == "wal"
    assert (report.journal_rows, report.unsent_rows, report.oldest_unsent) == (3, 2, T0)
    assert report.compartments == {"empty": 1, "loaded": 2}
    assert [a.id for a in report.active_alarms] == ["a"]
    assert store.integrity_check() == [] and store.integrity_check(full=False) == []
    assert json.dumps(report.compartments)


_CRASH = """
import os, signal, sys
from kiosk.core.clock import ManualClock
from kiosk.core.model import Compartment
from kiosk.store import open_store

def checkpoint(name):
    if name == sys.argv[2]:
        os.kill(os.getpid(), signal.SIGKILL)

store = open_store(sys.argv[1], ManualClock(), checkpoint=checkpoint)
with store.transaction() as tx:
    tx.put_compartment(Compartment(7))
    tx.journal("pickup", {"n": 1})
"""


@pytest.mark.parametrize(("point", "kept"), [("before_commit", 0), ("committed", 1)])
def test_sigkill_at_a_checkpoint(db: Path, clock: ManualClock, point: str, kept: int) -> None:
    open_store(db, clock).close()
    done = subprocess.run(
        [sys.executable, "-c", _CRASH, str(db), f"journal:pickup:{point}"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -9, done.stderr
    store = open_store(db, clock)
    assert len(store.journal_entries()) == kept
    with store.reading() as tx:
        assert (tx.compartment(7) is not None) == bool(kept)
    _journal(store, 1)
    assert [e.seq for e in store.journal_entries()] == list(range(1, kept + 2))
    assert store.boot == 3
    store.close()


def test_empty_file_is_not_a_database_to_read(db: Path, clock: ManualClock) -> None:
    db.touch()
    with pytest.raises(StoreError, match="empty file"):
        open_store(db, clock, read_only=True)


def test_another_programs_database_is_refused_and_kept(db: Path, clock: ManualClock) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    conn.close()
    before = _bytes(db)
    with pytest.raises(StoreCorrupt, match="not a kiosk database"):
        open_store(db, clock)
    assert _bytes(db) == before


def test_an_empty_sqlite_database_becomes_the_store(db: Path, clock: ManualClock) -> None:
    sqlite3.connect(db).execute("PRAGMA user_version=0").connection.close()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")  # a valid SQLite file with no tables
    conn.close()
    assert db.stat().st_size > 0
    store = open_store(db, clock)
    assert store.boot == 1 and store.report().revision == "0001"
    store.close()


def test_unwritable_location_messages(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The permission checks themselves, also when the tests run as root (access() faked)."""
    db = tmp_path / "kiosk.db"
    open_store(db, clock).close()
    real_access = os.access
    monkeypatch.setattr("kiosk.store.db.os.access", lambda p, m: Path(p) != tmp_path)
    with pytest.raises(StoreError, match=f"directory {tmp_path} is not writable"):
        open_store(db, clock)
    monkeypatch.setattr("kiosk.store.db.os.access", lambda p, m: Path(p) != db)
    with pytest.raises(StoreError, match="not readable and writable"):
        open_store(db, clock)
    monkeypatch.setattr("kiosk.store.db.os.access", real_access)
    open_store(db, clock, read_only=True).close()  # reading needs no write access
