"""Change detection and board health, fed readings by hand with a made-up clock."""

from __future__ import annotations

import time

import pytest

from hardware.locker.base import (
    DoorClosed,
    DoorForced,
    DoorOpened,
    DoorSensorFault,
    DoorSensorOk,
    DoorState,
    ItemChanged,
)
from hardware.locker.driver import LockerBase
from hardware.locker.layout import CompartmentSpec, PollTiming, SimulationSpec
from hardware.locker.simulated import SimulatedLocker
from hardware.locker.tracking import BoardHealth, CompartmentTracker
from tests.contract.rig import FAST_OPEN, EventRecorder, wait_for

OPEN, CLOSED, UNKNOWN = DoorState.OPEN, DoorState.CLOSED, DoorState.UNKNOWN
POLL = PollTiming(interval_s=0.25, stable_reads=2, chatter_changes=4, chatter_window_s=10.0)


def tracker() -> CompartmentTracker:
    t = CompartmentTracker(7, POLL)
    assert t.door_reading(CLOSED, 0.0, confirmed=True, commanded=False) == []  # first sight
    return t


def test_first_sight_raises_no_event() -> None:
    t = CompartmentTracker(7, POLL)
    assert t.door_reading(OPEN, 0.0, confirmed=True, commanded=False) == []
    assert t.door is OPEN
    assert t.item_reading(True) == []
    assert [type(e) for e in t.item_reading(False)] == [ItemChanged]


def test_a_polled_change_needs_stable_reads() -> None:
    t = tracker()
    assert t.door_reading(OPEN, 1.0, confirmed=False, commanded=True) == []
    assert t.door is CLOSED  # one reading is not enough
    events = t.door_reading(OPEN, 1.25, confirmed=False, commanded=True)
    assert [type(e) for e in events] == [DoorOpened]
    assert events[0].compartment == 7


def test_a_blip_is_not_a_change() -> None:
    t = tracker()
    assert t.door_reading(OPEN, 1.0, confirmed=False, commanded=False) == []
    assert t.door_reading(CLOSED, 1.25, confirmed=False, commanded=False) == []
    assert t.door_reading(OPEN, 1.5, confirmed=False, commanded=False) == []
    assert t.door is CLOSED


def test_uncommanded_opening_is_forced_and_closing_is_closed() -> None:
    t = tracker()
    opened = t.door_reading(OPEN, 1.0, confirmed=True, commanded=False)
    assert [type(e) for e in opened] == [DoorForced]
    closed = t.door_reading(CLOSED, 2.0, confirmed=True, commanded=False)
    assert [type(e) for e in closed] == [DoorClosed]


def test_unknown_readings_change_nothing() -> None:
    t = tracker()
    assert t.door_reading(UNKNOWN, 1.0, confirmed=True, commanded=False) == []
    assert t.door is CLOSED


def test_a_chattering_sensor_is_declared_faulty_then_trusted_again() -> None:
    t = tracker()
    kinds = []
    now = 1.0
    for door in (OPEN, CLOSED, OPEN, CLOSED, OPEN, CLOSED):
        kinds += [type(e) for e in t.door_reading(door, now, confirmed=True, commanded=False)]
        now += 0.5
    # three real changes, the fourth within the window makes it a fault; then silence
    assert kinds == [DoorForced, DoorClosed, DoorForced, DoorSensorFault]
    assert t.shown_door is UNKNOWN
    # the last flip was to "closed" at 3.5 s: steady for less than the 10 s window is
    # not enough to believe it again
    assert t.door_reading(CLOSED, 10.0, confirmed=False, commanded=False) == []
    assert t.door_reading(CLOSED, 13.4, confirmed=False, commanded=False) == []
    assert t.shown_door is UNKNOWN
    recovered = t.door_reading(CLOSED, 13.6, confirmed=False, commanded=False)
    assert [type(e) for e in recovered] == [DoorSensorOk]
    assert recovered[0].door is CLOSED and t.shown_door is CLOSED


def test_changes_spread_over_time_are_not_chatter() -> None:
    t = tracker()
    now = 0.0
    for door in (OPEN, CLOSED) * 5:
        now += 6.0  # a resident every six seconds: busy, not broken
        events = t.door_reading(door, now, confirmed=True, commanded=door is OPEN)
        assert not any(isinstance(e, DoorSensorFault) for e in events)


def test_forget_makes_the_next_reading_first_sight() -> None:
    t = tracker()
    t.forget()
    assert t.door is UNKNOWN
    assert t.door_reading(OPEN, 1.0, confirmed=True, commanded=False) == []


@pytest.mark.parametrize("offline_after", [1, 3])
def test_board_offline_only_after_n_failures_in_a_row(offline_after: int) -> None:
    health = BoardHealth(offline_after)
    assert health.answered() is True and health.online is True
    for _ in range(offline_after - 1):
        assert health.failed() is False
        assert health.answered() is False  # one answer resets the count
    results = [health.failed() for _ in range(offline_after + 2)]
    assert results == [False] * (offline_after - 1) + [True, False, False]
    assert health.online is False
    assert health.answered() is True


def test_simulated_chatter_ends_in_a_sensor_fault_not_an_event_storm() -> None:
    poll = PollTiming(interval_s=0.01, stable_reads=2, chatter_changes=4, chatter_window_s=30)
    specs = [CompartmentSpec(n) for n in (1, 2)]
    locker = SimulatedLocker(specs, FAST_OPEN, poll, SimulationSpec())
    assert isinstance(locker, LockerBase)
    events = EventRecorder(locker)
    locker.start()
    try:
        wait_for(lambda: locker.states().compartment(1).door is CLOSED, timeout=5)
        locker.faults.chatter(1, True)
        events.wait_for(DoorSensorFault, compartment=1, timeout=10)
        assert locker.states().compartment(1).door is UNKNOWN
        count = len(events.events)
        time.sleep(0.5)  # 50 more polls of a flipping sensor
        assert len(events.events) == count  # silence after the fault, however it flips
        assert locker.states().compartment(2).door is CLOSED
    finally:
        locker.close()
