"""Random sequences of commands and cabinet events: the core stays consistent and says why.

Hypothesis plays a confused resident, a prankster and a flaky cabinet at once: taps that
the screen does not offer, garbage scans, codes with letters, doors shut and forced at odd
moments, time jumping ahead. After every sequence the journal must still tell the truth.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hardware.locker.layout import CompartmentSpec, OpenTiming, PollTiming
from hardware.locker.simulated import SimulatedLocker
from kiosk.core.clock import ManualClock
from kiosk.core.codes import hash_code
from kiosk.core.engine import KioskCore
from kiosk.core.memstore import MemoryStore
from kiosk.core.model import (
    Compartment,
    CompartmentStatus,
    Loan,
    Reservation,
    ReservationStatus,
    StaffMember,
    TxKind,
)
from kiosk.core.ports import Store
from kiosk.core.views import ACTIONS
from kiosk.store import open_store

CODE = "482913"
STAFF_CODE, STAFF_PIN = "777777", "2468"
ALL_ACTIONS = sorted({a for actions in ACTIONS.values() for a in actions} | {"done", "bogus"})

intent = st.one_of(
    st.tuples(st.just("pickup")),
    st.tuples(st.just("staff_login")),
    st.tuples(st.just("scan"), st.just("LAP-2")),
    st.tuples(st.just("close"), st.integers(1, 3)),
    st.tuples(st.just("take_out"), st.integers(1, 3)),
    st.tuples(st.just("put_in"), st.integers(1, 3)),
)
step = st.one_of(
    intent,
    intent,
    st.tuples(
        st.just("tap"),
        st.sampled_from(ALL_ACTIONS),
        st.sampled_from([None, "1", "2", "R1", "99", "check", "x"]),
    ),
    st.tuples(
        st.just("text"),
        st.sampled_from([CODE, "12ab56", "", "000000", STAFF_CODE, STAFF_PIN, "LAP-2", "ééé"]),
    ),
    st.tuples(
        st.just("scan"),
        st.sampled_from(["LAP-1", "lap-2\r\n", "\x00\x1b[A", "UNKNOWN-9", "x" * 80]),
    ),
    st.tuples(st.just("card"), st.sampled_from(["key-ann", "key-staff", "key-nobody"])),
    st.tuples(st.just("card_out")),
    st.tuples(st.just("close"), st.integers(1, 3)),
    st.tuples(st.just("force"), st.integers(1, 3)),
    st.tuples(st.just("item"), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 30.0, 200.0])),
    # Whole intentions, so that doors really open in most runs:
    st.tuples(st.just("pickup")),
    st.tuples(st.just("staff_login")),
    st.tuples(st.just("scan"), st.just("LAP-2")),
)


def build(database: Path | None = None) -> tuple[KioskCore, Store, SimulatedLocker]:
    clock = ManualClock()
    store: Store = MemoryStore(clock) if database is None else open_store(database, clock)
    specs = [CompartmentSpec(n, size="M", item_sensor=n != 3) for n in (1, 2, 3)]
    locker = SimulatedLocker(
        specs,
        OpenTiming(watch_s=0.05, cooldown_s=0.0, check_interval_s=0.005),
        PollTiming(interval_s=0.01, stable_reads=1),
    )
    with store.transaction() as tx:
        for number in (2, 3):
            tx.put_compartment(Compartment(number, "M"))
        tx.put_compartment(Compartment(1, "M", False, CompartmentStatus.LOADED, "LAP-1", "R1"))
        tx.put_reservation(
            Reservation(
                "R1", "LAP-1", ReservationStatus.LOADED, "key-ann", hash_code(CODE), compartment=1
            )
        )
        tx.put_loan(Loan("L2", "LAP-2", "key-ann"))
        tx.replace_staff(
            [
                StaffMember(
                    "S1",
                    "Els",
                    hash_code(STAFF_PIN),
                    borrower_key="key-staff",
                    code_hash=hash_code(STAFF_CODE),
                )
            ]
        )
    locker.start()
    locker.set_item(1, True)
    core = KioskCore(store=store, locker=locker, clock=clock)
    core.start()
    return core, store, locker


def play(core: KioskCore, locker: SimulatedLocker, clock: ManualClock, move: tuple) -> None:
    kind = move[0]
    if kind == "tap":
        core.tap(move[1], move[2])
    elif kind == "text":
        core.enter_text(move[1])
    elif kind == "scan":
        core.scan(move[1])
    elif kind == "card":
        core.present(move[1], "Ann")
    elif kind == "card_out":
        core.card_removed()
    elif kind == "close":
        locker.close_door(move[1])
        locker.refresh()
    elif kind == "force":
        locker.open_by_hand(move[1])
        locker.refresh()
    elif kind == "item":
        locker.set_item(move[1], move[2])
        locker.refresh()
    elif kind in ("take_out", "put_in"):  # the person handles the device, shuts the door
        locker.set_item(move[1], kind == "put_in")
        locker.close_door(move[1])
        locker.refresh()
    elif kind == "pickup":
        core.present("key-ann", "Ann")
        core.tap("open")
    elif kind == "staff_login":
        core.tap("staff")
        core.enter_text(STAFF_CODE)
        core.enter_text(STAFF_PIN)
    elif kind == "wait":
        clock.advance(move[1])
        core.tick()
    assert core.settle(10), f"core did not settle after {move!r}"


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(intent, st.lists(step, min_size=1, max_size=30))
def test_random_use_keeps_the_journal_truthful(first: tuple, rest: list[tuple]) -> None:
    check_random_use([first, *rest], None)


@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(intent, st.lists(step, min_size=1, max_size=30))
def test_random_use_on_the_sqlite_store(tmp_path: Path, first: tuple, rest: list[tuple]) -> None:
    database = tmp_path / f"{uuid.uuid4().hex}.db"
    check_random_use([first, *rest], database)


def check_random_use(moves: list[tuple], database: Path | None) -> None:
    """Play ``moves``, then check the journal against the cabinet."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("kiosk.core").addHandler(handler)
    core, store, locker = build(database)
    try:
        for move in moves:
            play(core, locker, core.clock, move)  # type: ignore[arg-type]
            snap = core.snapshot()
            assert set(snap.actions) <= set(ACTIONS[snap.screen]) | {"done"}
    finally:
        core.stop()
        locker.close()
        logging.getLogger("kiosk.core").removeHandler(handler)
    crashes = [r for r in records if r.exc_info]
    assert not crashes, crashes[0].getMessage()
    rows = store.journal_entries()
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert len({r.uuid for r in rows}) == len(rows)
    requested = {r.payload["open_id"]: r.payload for r in rows if r.kind == TxKind.OPEN_REQUESTED}
    outcomes = [r.payload for r in rows if r.kind == TxKind.OPEN_OUTCOME]
    event(f"openings: {min(len(requested), 3)}{'+' if len(requested) >= 3 else ''}")
    event(f"final screen: {core.snapshot().screen.value}")
    assert Counter(o["open_id"] for o in outcomes).most_common(1)[0][1] <= 1 if outcomes else True
    assert {o["open_id"] for o in outcomes} <= set(requested)
    # Every pulse the cabinet received was journalled first, and reported after.
    for number in (1, 2, 3):
        journalled = sum(o["pulses"] for o in outcomes if o["compartment"] == number)
        assert locker.pulses(number) == journalled, f"compartment {number}"
    pickups = Counter(r.payload["reservation_id"] for r in rows if r.kind == TxKind.PICKUP)
    assert all(n == 1 for n in pickups.values())
    with store.reading() as tx:
        for c in tx.compartments():
            if c.status is CompartmentStatus.LOADED:
                reservation = tx.reservation(c.reservation_id or "")
                assert reservation is not None and reservation.compartment == c.number
    store.close()
