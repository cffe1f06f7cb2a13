"""The one behaviour contract every locker implementation must keep.

Runs once per rig (see conftest.py). Each test drives the far end through the ``Rig``
methods and checks only what the kiosk core can see: ``open()`` results, events and
``states()``.
"""

from __future__ import annotations

import time

import pytest

from hardware.errors import UnknownCompartment
from hardware.locker.base import (
    BoardOffline,
    BoardOnline,
    DoorClosed,
    DoorForced,
    DoorOpened,
    DoorState,
    ItemChanged,
    LockerEvent,
    OpenOutcome,
)
from tests.contract.rig import FAST_OPEN, FAST_POLL, EventRecorder, Rig, door, wait_for

pytestmark = pytest.mark.timeout(30)


def test_open_a_closed_door(rig: Rig) -> None:
    events = EventRecorder(rig.locker)
    result = rig.locker.open(2, "txn-open")
    assert result.outcome is OpenOutcome.OPENED, result
    assert result.pulses == 1
    assert result.door_before is DoorState.CLOSED
    assert result.opened_ms is not None and result.first_pulse_ms is not None
    assert rig.pulses(2) == 1
    events.wait_for(DoorOpened, compartment=2)
    assert door(rig.locker, 2) is DoorState.OPEN
    assert not events.of(DoorForced)
    assert rig.pulses(3) == 0  # no other lock moved


def test_closing_the_door_is_reported(rig: Rig) -> None:
    assert rig.locker.open(3, "txn-close").outcome is OpenOutcome.OPENED
    events = EventRecorder(rig.locker)
    rig.close_door(3)
    events.wait_for(DoorClosed, compartment=3)
    assert door(rig.locker, 3) is DoorState.CLOSED


def test_forced_door_is_an_alarm_not_an_opening(rig: Rig) -> None:
    events = EventRecorder(rig.locker)
    rig.open_by_hand(4)
    events.wait_for(DoorForced, compartment=4)
    wait_for(lambda: door(rig.locker, 4) is DoorState.OPEN, message="door 4 open in states()")
    assert not events.of(DoorOpened)
    assert rig.pulses(4) == 0


def test_jammed_lock_is_pulsed_twice_and_reported(rig: Rig) -> None:
    rig.jam(2)
    events = EventRecorder(rig.locker)
    result = rig.locker.open(2, "txn-jam")
    assert result.outcome is OpenOutcome.JAMMED, result
    assert result.pulses == 2
    assert rig.pulses(2) == 2
    assert result.opened_ms is None
    assert door(rig.locker, 2) is DoorState.CLOSED
    assert not events.of(DoorOpened) and not events.of(DoorForced)


def test_already_open_door_is_still_pulsed(rig: Rig) -> None:
    rig.open_by_hand(3)
    wait_for(lambda: door(rig.locker, 3) is DoorState.OPEN, message="door 3 open in states()")
    result = rig.locker.open(3, "txn-already")
    assert result.outcome is OpenOutcome.ALREADY_OPEN, result
    assert result.door_before is DoorState.OPEN
    assert result.pulses == 1
    assert rig.pulses(3) == 1  # a sensor that reads open may be a cut cable: pulse anyway


def test_same_transaction_pulses_once(rig: Rig) -> None:
    first = rig.locker.open(2, "txn-dup")
    rig.close_door(2)
    wait_for(lambda: door(rig.locker, 2) is DoorState.CLOSED, message="door 2 closed again")
    second = rig.locker.open(2, "txn-dup")
    assert second == first
    assert rig.pulses(2) == 1


def test_two_openings_of_one_lock_respect_the_cooldown(rig: Rig) -> None:
    t1_called = time.monotonic()
    first = rig.locker.open(4, "txn-cool-1")
    t1_returned = time.monotonic()
    t2_called = time.monotonic()
    second = rig.locker.open(4, "txn-cool-2")
    assert first.outcome is OpenOutcome.OPENED, first
    assert second.outcome is OpenOutcome.ALREADY_OPEN, second
    assert rig.pulses(4) == 2
    assert first.first_pulse_ms is not None and first.opened_ms is not None
    assert second.first_pulse_ms is not None
    # Bounds from the results' own clock readings: the first pulse was at the latest
    # "door seen open" (before the return) minus opened_ms; the second at the earliest
    # the call plus first_pulse_ms.
    latest_first = t1_returned - first.opened_ms / 1000
    earliest_second = t2_called + second.first_pulse_ms / 1000
    assert latest_first >= t1_called
    assert earliest_second - latest_first >= FAST_OPEN.cooldown_s - 0.001


def test_unknown_compartment_is_refused(rig: Rig) -> None:
    missing = max(rig.numbers) + 100
    with pytest.raises(UnknownCompartment):
        rig.locker.open(missing, "txn-unknown")
    with pytest.raises(UnknownCompartment):
        rig.locker.states().compartment(missing)
    assert all(rig.pulses(n) == 0 for n in rig.numbers)


def test_item_sensor_change_is_reported(rig: Rig) -> None:
    spec = next(s for s in rig.locker.compartments() if s.number == 1)
    if not spec.item_sensor:
        pytest.skip(f"rig {rig.name} has no item sensor in compartment 1")
    events = EventRecorder(rig.locker)
    rig.set_item(1, True)
    events.wait_for(ItemChanged, compartment=1, present=True)
    assert rig.locker.states().compartment(1).item is True
    rig.set_item(1, False)
    events.wait_for(ItemChanged, compartment=1, present=False)
    assert rig.locker.states().compartment(1).item is False


def test_board_offline_and_back(rig: Rig) -> None:
    events = EventRecorder(rig.locker)
    switched_off = time.monotonic()
    rig.board_offline(True)
    offline = events.wait_for(BoardOffline)
    # offline_after=3 failed polls need two poll intervals between the first and the third;
    # a driver that gives up on the first failed poll reports within one interval. Half
    # the nominal time leaves room for a poller that fell behind and caught up.
    needed = FAST_POLL.interval_s * (FAST_POLL.offline_after - 1) / 2
    assert offline.at - switched_off >= needed, (offline.at - switched_off, events.events)

    result = rig.locker.open(1, "txn-offline")
    assert result.outcome is OpenOutcome.BOARD_OFFLINE, result
    assert result.pulses == 0
    assert rig.pulses(1) == 0
    state = rig.locker.states()
    assert state.compartment(1).door is DoorState.UNKNOWN
    dead = [b for b in state.boards if (b.bus, b.address) == (offline.bus, offline.address)]
    assert dead and not dead[0].online, state.boards

    rig.board_offline(False)
    events.wait_for(BoardOnline, bus=offline.bus, address=offline.address)
    wait_for(lambda: door(rig.locker, 1) is DoorState.CLOSED, message="door 1 known again")
    assert rig.locker.open(1, "txn-back").outcome is OpenOutcome.OPENED


def test_failing_subscriber_does_not_stop_the_others(rig: Rig) -> None:
    calls: list[LockerEvent] = []

    def broken(event: LockerEvent) -> None:
        calls.append(event)
        raise RuntimeError("subscriber bug")

    rig.locker.subscribe(broken)
    events = EventRecorder(rig.locker)  # subscribed after the broken one
    rig.open_by_hand(2)
    events.wait_for(DoorForced, compartment=2)
    assert any(isinstance(e, DoorForced) for e in calls)


def test_unsubscribe_stops_delivery(rig: Rig) -> None:
    gone = EventRecorder(rig.locker)  # called before `staying` for every event
    staying = EventRecorder(rig.locker)
    gone.unsubscribe()
    gone.unsubscribe()  # twice is harmless
    rig.open_by_hand(3)
    staying.wait_for(DoorForced, compartment=3)
    assert gone.events == []


def test_close_twice_is_fine(rig: Rig) -> None:
    rig.locker.close()
    rig.locker.close()


def test_states_list_every_compartment_and_board(rig: Rig) -> None:
    specs = rig.locker.compartments()
    assert len(rig.numbers) >= 4
    assert tuple(s.number for s in specs) == tuple(sorted(rig.numbers))
    state = rig.locker.states()
    assert tuple(c.number for c in state.compartments) == tuple(sorted(rig.numbers))
    assert state.boards and all(b.online for b in state.boards)
    boards = {(b.bus, b.address) for b in state.boards}
    wired = {(s.bus, s.board) for s in specs if s.bus is not None and s.board is not None}
    assert wired <= boards, (wired, boards)
    sensed = {s.number for s in specs if s.door_sensor}
    assert all(c.door is DoorState.CLOSED for c in state.compartments if c.number in sensed)
    assert rig.locker.refresh() == rig.locker.states()
