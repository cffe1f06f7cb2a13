"""SimulatedLocker: the world model, fault injection and lifecycle.

The behaviour shared with the other drivers (open sequence, events) is covered by the
contract suite in tests/contract; these tests cover what only the simulator has.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

from hardware.errors import (
    ConfigurationError,
    DeviceTimeout,
    DeviceUnavailable,
    ProtocolError,
    UnknownCompartment,
)
from hardware.locker.base import (
    BoardOffline,
    BoardOnline,
    DoorClosed,
    DoorForced,
    DoorState,
    ItemChanged,
    OpenOutcome,
)
from hardware.locker.layout import CompartmentSpec, SimulationSpec
from hardware.locker.simulated import SimulatedLocker
from tests.contract.rig import FAST_OPEN, FAST_POLL, EventRecorder, door, wait_for, wait_ready

pytestmark = pytest.mark.timeout(30)

SPECS = [
    CompartmentSpec(1, item_sensor=True),
    CompartmentSpec(2),
    CompartmentSpec(3, door_sensor=False),
]


def make(simulation: SimulationSpec | None = None, **kw: object) -> SimulatedLocker:
    return SimulatedLocker(SPECS, FAST_OPEN, FAST_POLL, simulation, **kw)  # type: ignore[arg-type]


@pytest.fixture
def sim() -> Iterator[SimulatedLocker]:
    locker = make()
    locker.start()
    try:
        wait_ready(locker)
        yield locker
    finally:
        locker.close()


def test_construction_starts_no_thread() -> None:
    before = threading.active_count()
    locker = make()
    assert threading.active_count() == before
    locker.close()  # closing an unstarted locker is fine


def test_duplicate_or_missing_compartments_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="duplicate"):
        SimulatedLocker([CompartmentSpec(1), CompartmentSpec(1)])
    with pytest.raises(ConfigurationError, match="no compartments"):
        SimulatedLocker([])


def test_world_starts_closed_and_empty() -> None:
    locker = make()
    assert not locker.door_is_open(1) and not locker.item(1)
    assert locker.pulses(1) == 0 and locker.pulse_times(1) == []


def test_world_api_refuses_unknown_compartments() -> None:
    locker = make()
    for call in (locker.close_door, locker.open_by_hand, locker.door_is_open, locker.pulses):
        with pytest.raises(UnknownCompartment):
            call(9)
    with pytest.raises(UnknownCompartment):
        locker.faults.jam(9)


def test_pulse_pops_the_door_and_is_recorded() -> None:
    locker = make()  # not started: open() reads and pulses directly
    before = time.monotonic()
    result = locker.open(1, "t1")
    assert result.outcome is OpenOutcome.OPENED
    assert locker.door_is_open(1)
    assert locker.pulses(1) == 1
    assert before <= locker.pulse_times(1)[0] <= time.monotonic()


def test_without_auto_open_the_door_stays_shut() -> None:
    locker = make(SimulationSpec(auto_open=False))
    result = locker.open(2, "t1")
    assert result.outcome is OpenOutcome.JAMMED
    assert locker.pulses(2) == 2 and not locker.door_is_open(2)


def test_retry_pulse_waits_for_the_cooldown() -> None:
    locker = make()
    locker.faults.jam(2)
    assert locker.open(2, "t1").outcome is OpenOutcome.JAMMED
    first, second = locker.pulse_times(2)
    assert second - first >= FAST_OPEN.cooldown_s
    locker.faults.jam(2, on=False)
    assert locker.open(2, "t2").outcome is OpenOutcome.OPENED


def test_compartment_without_door_sensor_is_unconfirmed(sim: SimulatedLocker) -> None:
    result = sim.open(3, "t1")
    assert result.outcome is OpenOutcome.UNCONFIRMED
    assert result.pulses == 1 and sim.pulses(3) == 1
    assert door(sim, 3) is DoorState.UNKNOWN
    assert sim.states().compartment(2).item is None  # no item sensor there


def test_forced_open_and_close_flow_through_the_poller(sim: SimulatedLocker) -> None:
    events = EventRecorder(sim)
    sim.faults.forced_open(2)
    events.wait_for(DoorForced, compartment=2)
    sim.close_door(2)
    events.wait_for(DoorClosed, compartment=2)
    assert door(sim, 2) is DoorState.CLOSED


def test_item_changes_are_seen(sim: SimulatedLocker) -> None:
    events = EventRecorder(sim)
    sim.set_item(1, True)
    events.wait_for(ItemChanged, compartment=1, present=True)
    assert sim.item(1) and sim.states().compartment(1).item is True


@pytest.mark.parametrize(
    ("switch", "error", "reason"),
    [
        ("no_answer", DeviceTimeout, "did not answer"),
        ("garbled", ProtocolError, "garbled"),
        ("board_offline", DeviceUnavailable, "offline"),
    ],
)
def test_board_faults(
    sim: SimulatedLocker, switch: str, error: type[Exception], reason: str
) -> None:
    events = EventRecorder(sim)
    getattr(sim.faults, switch)(True)
    with pytest.raises(error):
        sim._read(sim.compartments()[0])
    offline = events.wait_for(BoardOffline)
    assert reason in offline.reason
    assert (offline.bus, offline.address) == ("sim", 0)
    result = sim.open(2, f"t-{switch}")
    assert result.outcome is OpenOutcome.BOARD_OFFLINE and sim.pulses(2) == 0
    assert reason in result.detail
    getattr(sim.faults, switch)(False)
    events.wait_for(BoardOnline)
    wait_for(lambda: door(sim, 2) is DoorState.CLOSED, message="door 2 seen again")


def test_silent_board_refuses_pulses_but_garbled_board_takes_them() -> None:
    locker = make()
    spec = locker.compartments()[1]
    locker.faults.no_answer()
    with pytest.raises(DeviceTimeout):
        locker._pulse(spec)
    locker.faults.no_answer(False)
    locker.faults.garbled()
    locker._pulse(spec)  # only status frames come back garbled
    assert locker.pulses(2) == 1


def test_latency_slows_every_exchange() -> None:
    locker = make(SimulationSpec(latency_s=0.05))
    assert locker.faults.latency_s == 0.05
    started = time.monotonic()
    result = locker.open(2, "t1")  # read, pulse, read: three exchanges
    assert time.monotonic() - started >= 0.15
    assert result.outcome is OpenOutcome.OPENED
    locker.faults.latency_s = 5.0
    locker.faults.latency_s = 0.0  # takes effect at once
    started = time.monotonic()
    locker.refresh()
    assert time.monotonic() - started < 1.0
    with pytest.raises(ValueError):
        locker.faults.latency_s = -1


def test_chatter_flips_readings_until_switched_off() -> None:
    locker = make(rng=random.Random(1234))
    spec = locker.compartments()[1]
    locker.faults.chatter(2, probability=0.5)
    readings = {locker._read(spec)[0] for _ in range(200)}
    assert readings == {DoorState.OPEN, DoorState.CLOSED}
    locker.faults.chatter(2, on=False)
    assert {locker._read(spec)[0] for _ in range(50)} == {DoorState.CLOSED}
    with pytest.raises(ValueError):
        locker.faults.chatter(2, probability=2.0)


def test_clear_switches_every_fault_off() -> None:
    locker = make()
    locker.faults.jam(2)
    locker.faults.board_offline()
    locker.faults.garbled()
    locker.faults.no_answer()
    locker.faults.chatter(2, probability=1.0)
    locker.faults.latency_s = 0.01
    locker.faults.clear()
    assert locker.faults.latency_s == 0.0
    assert locker.open(2, "t1").outcome is OpenOutcome.OPENED


def test_lifecycle(sim: SimulatedLocker) -> None:
    sim.start()  # idempotent while running
    threads = {t.name for t in threading.enumerate()}
    assert "sim-locker-poll" in threads
    sim.close()
    sim.close()
    wait_for(
        lambda: "sim-locker-poll" not in {t.name for t in threading.enumerate()},
        message="poll thread gone",
    )
    sim.start()  # a closed simulator may start again
    assert "sim-locker-poll" in {t.name for t in threading.enumerate()}
