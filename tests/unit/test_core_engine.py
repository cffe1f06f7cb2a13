"""KioskCore as a whole: queue and worker, eID events, start-up after a crash, store trouble.

The flows themselves are tested as scenarios (tests/scenarios); these tests cover what a
scenario cannot express: threads, the real simulated eID reader, a failing store.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest

from hardware.eid.cardmaker import TestPki, make_card
from hardware.eid.privacy import borrower_key
from hardware.eid.simulated import SimulatedReader
from hardware.locker.layout import CompartmentSpec, OpenTiming, PollTiming, SimulationSpec
from hardware.locker.simulated import SimulatedLocker
from kiosk.core.clock import ManualClock
from kiosk.core.engine import KioskCore
from kiosk.core.events import Screen, Snapshot
from kiosk.core.identify import CardRules
from kiosk.core.memstore import MemoryStore
from kiosk.core.model import (
    AlarmKind,
    Compartment,
    CompartmentStatus,
    Reservation,
    ReservationStatus,
    TxKind,
)
from kiosk.core.ports import StoreError

PEPPER = b"test-pepper"
NATIONAL_NUMBER = "71010112345"
KEY = borrower_key(PEPPER, NATIONAL_NUMBER)


def cabinet(latency_s: float = 0.0) -> SimulatedLocker:
    specs = [CompartmentSpec(n, size="M", charging=True, item_sensor=True) for n in range(1, 5)]
    return SimulatedLocker(
        specs,
        OpenTiming(watch_s=0.3, cooldown_s=0.0, check_interval_s=0.01),
        PollTiming(interval_s=0.02, stable_reads=1),
        SimulationSpec(latency_s=latency_s),
    )


def seed_loaded(store: MemoryStore, number: int = 2) -> None:
    with store.transaction() as tx:
        for n in range(1, 5):
            tx.put_compartment(Compartment(n, "M", True))
        tx.put_compartment(Compartment(number, "M", True, CompartmentStatus.LOADED, "LAP-7", "R7"))
        tx.put_reservation(
            Reservation("R7", "LAP-7", ReservationStatus.LOADED, KEY, compartment=number)
        )


@contextlib.contextmanager
def running(store: object, locker: SimulatedLocker, **kw: object) -> Iterator[KioskCore]:
    locker.start()
    core = KioskCore(store=store, locker=locker, pepper=PEPPER, clock=ManualClock(), **kw)  # type: ignore[arg-type]
    core.start()
    try:
        yield core
    finally:
        core.stop()
        locker.close()


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create("ec")


def test_commands_return_while_a_door_is_being_opened() -> None:
    store = MemoryStore(ManualClock())
    seed_loaded(store)
    seen: list[Snapshot] = []
    locker = cabinet(latency_s=0.2)
    locker.set_item(2, True)
    with running(store, locker) as core:
        core.subscribe(seen.append)
        core.present(KEY, "Ann")
        assert core.settle(5)
        core.tap("open")
        core.tap("cancel")  # not offered while opening: queued, then ignored
        assert core.settle(10)
        screens = [s.screen for s in seen]
        assert Screen.OPENING in screens
        assert core.snapshot().screen is Screen.TAKE_ITEM
        assert [s.seq for s in seen] == sorted({s.seq for s in seen})  # one per change


def test_an_eid_card_becomes_a_key_and_a_first_name_only(pki: TestPki) -> None:
    store = MemoryStore(ManualClock())
    seed_loaded(store)
    reader = SimulatedReader(trusted_roots=[pki.root_certificate])
    reader.start()
    try:
        locker = cabinet()
        locker.set_item(2, True)
        with running(store, locker, card_rules=CardRules()) as core:
            core.attach_reader(reader)
            reader.insert(
                make_card(
                    pki, national_number=NATIONAL_NUMBER, given_names="Jan Peter", surname="X"
                )
            )
            assert reader.wait_idle(10) and core.settle(5)
            snap = core.snapshot()
            assert snap.screen is Screen.CHOOSE_RESERVATION
            assert snap.first_name == "Jan"
            assert NATIONAL_NUMBER not in repr(snap)
            reader.remove()
            assert reader.wait_idle(10) and core.settle(5)
            assert core.snapshot().screen is Screen.MESSAGE
            assert core.snapshot().message == "session.card_removed"
            assert core.snapshot().first_name == ""
            rows = store.journal_entries()
            assert not any(re.search(NATIONAL_NUMBER, repr(e.payload)) for e in rows)
    finally:
        reader.close()


def test_a_card_under_an_unknown_root_is_refused_unless_allowed(pki: TestPki) -> None:
    other = TestPki.create("ec", name="someone else")
    card = make_card(other, national_number=NATIONAL_NUMBER, given_names="Jan", surname="X")
    for rules, expected in ((CardRules(), "card.refused"), (CardRules(accept_unverified=True), "")):
        store = MemoryStore(ManualClock())
        seed_loaded(store)
        reader = SimulatedReader(trusted_roots=[pki.root_certificate])
        reader.start()
        try:
            with running(store, cabinet(), card_rules=rules) as core:
                core.attach_reader(reader)
                reader.insert(card)
                assert reader.wait_idle(10) and core.settle(5)
                snap = core.snapshot()
                if expected:
                    assert (snap.screen, snap.message) == (Screen.MESSAGE, expected)
                    assert snap.param("reason") == "card.not_verified"
                else:
                    assert snap.screen is Screen.CHOOSE_RESERVATION
        finally:
            reader.close()


def test_restart_turns_an_unfinished_opening_into_interrupted_and_never_pulses() -> None:
    store = MemoryStore(ManualClock())
    seed_loaded(store, number=3)
    with store.transaction() as tx:  # what a power cut right after journalling leaves
        tx.journal(TxKind.OPEN_REQUESTED, {"open_id": "o1", "compartment": 3, "purpose": "pickup"})
    store.restart()
    locker = cabinet()
    with running(store, locker) as core:
        assert core.settle(5)
        assert core.report.interrupted == [3]
        kinds = [e.kind for e in store.journal_entries()]
        assert kinds[-1] == TxKind.KIOSK_STARTED
        assert TxKind.OPEN_INTERRUPTED in kinds
        view = {c.number: c for c in core.snapshot().compartments}
        assert view[3].stored_status == "unknown" and view[3].status == "alarm"
        assert [a.kind for a in core.snapshot().alarms] == [AlarmKind.INTERRUPTED_OPEN.value]
        assert locker.pulses(3) == 0
    with store.transaction() as tx:
        assert tx.unfinished_opens() == []


def test_start_up_alarms_for_an_open_door_and_a_loaded_compartment_found_empty() -> None:
    store = MemoryStore(ManualClock())
    seed_loaded(store, number=2)  # the store says LAP-7 is in 2; the cabinet's 2 is empty
    locker = cabinet()
    locker.open_by_hand(4)
    with running(store, locker) as core:
        assert core.settle(5)
        kinds = sorted((a.kind, a.compartment) for a in core.snapshot().alarms)
        assert kinds == [("door_left_open", 4), ("item_missing", 2)]
        assert sum(locker.pulses(n) for n in range(1, 5)) == 0


class FailingStore(MemoryStore):
    """A store whose disk dies after ``ok`` write transactions."""

    def __init__(self, clock: ManualClock, ok: int) -> None:
        super().__init__(clock)
        self.ok = ok

    @contextlib.contextmanager
    def transaction(self):  # type: ignore[override]
        if self.ok <= 0:
            raise StoreError("disk I/O error")
        self.ok -= 1
        with super().transaction() as tx:
            yield tx


def test_a_store_failure_puts_the_kiosk_out_of_order_and_nothing_opens() -> None:
    store = FailingStore(ManualClock(), ok=100)
    seed_loaded(store)
    locker = cabinet()
    with running(store, locker) as core:
        core.present(KEY, "Ann")
        assert core.settle(5)
        store.ok = 0
        core.tap("open")  # open_requested cannot be journalled: no pulse
        assert core.settle(5)
        snap = core.snapshot()
        assert snap.screen is Screen.OUT_OF_ORDER and snap.actions == ()
        assert [a.kind for a in snap.alarms] == ["database"]
        core.present(KEY, "Ann")
        core.tap("return")
        assert core.settle(5)
        assert core.snapshot().screen is Screen.OUT_OF_ORDER
        assert locker.pulses(2) == 0


def test_no_store_at_start_means_out_of_order_with_the_reason() -> None:
    locker = cabinet()
    with running(None, locker, store_problem="kiosk.db is damaged") as core:
        assert core.settle(5)
        snap = core.snapshot()
        assert snap.screen is Screen.OUT_OF_ORDER
        assert snap.alarms[0].detail == "kiosk.db is damaged"
        assert core.report.refused == "kiosk.db is damaged"


def test_snapshots_are_immutable() -> None:
    store = MemoryStore(ManualClock())
    with running(store, cabinet()) as core:
        snap = core.snapshot()
        with pytest.raises(AttributeError):
            snap.screen = Screen.STAFF_MAP  # type: ignore[misc]
        assert replace(snap, seq=0).compartments == snap.compartments


def test_a_loaded_compartment_that_reads_empty_is_not_opened() -> None:
    store = MemoryStore(ManualClock())
    seed_loaded(store, number=2)
    locker = cabinet()  # the item sensor of 2 reads empty: someone took the device
    with running(store, locker) as core:
        core.present(KEY, "Ann")
        assert core.settle(5)
        core.tap("open")
        assert core.settle(5)
        snap = core.snapshot()
        assert snap.message == "pickup.compartment_unavailable"
        assert ("item_missing", 2) in {(a.kind, a.compartment) for a in snap.alarms}
        assert locker.pulses(2) == 0


def test_disk_nearly_full_raises_an_alarm_and_clears_when_space_is_back(tmp_path) -> None:
    from kiosk.core.policy import CorePolicy

    store = MemoryStore(ManualClock())
    locker = cabinet()
    huge = CorePolicy(disk_min_free_mb=10**12)  # more than any disk has: "nearly full"
    with running(store, locker, policy=huge, disk_path=tmp_path) as core:
        core.tick()
        assert core.settle(5)
        assert [a.kind for a in core.snapshot().alarms] == ["disk_full"]
        core.machine.policy = CorePolicy(disk_min_free_mb=0)
        core.clock.advance(61)  # type: ignore[attr-defined]
        core.tick()
        assert core.settle(5)
        assert core.snapshot().alarms == ()
    kinds = [e.kind for e in store.journal_entries()]
    assert kinds.count(TxKind.ALARM_RAISED) == 1 and kinds.count(TxKind.ALARM_CLEARED) == 1
