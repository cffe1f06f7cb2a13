"""GpioLocker on gpiozero mock pins: relays, switches, validation, error translation."""

from __future__ import annotations

import errno
import itertools
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device, DigitalOutputDevice
from gpiozero.pins.mock import MockFactory, MockPin

from hardware.errors import ConfigurationError, DeviceBusy, DeviceUnavailable
from hardware.locker import gpio_locker
from hardware.locker.base import (
    BoardOffline,
    BoardOnline,
    DoorClosed,
    DoorForced,
    DoorOpened,
    DoorState,
    ItemChanged,
    OpenOutcome,
)
from hardware.locker.gpio_locker import GpioLocker, pin_name, validate_gpio_wiring
from hardware.locker.layout import CompartmentSpec, GpioSpec
from tests.contract.rig import FAST_OPEN, FAST_POLL, EventRecorder, door, wait_for

pytestmark = pytest.mark.timeout(30)

PULSE_MS = 60
SPECS = [
    CompartmentSpec(1, relay_pin=5, door_pin=17, item_sensor=True, item_pin=24),
    CompartmentSpec(2, relay_pin=6, door_pin=27),
    CompartmentSpec(3, relay_pin=13, door_sensor=False),
]
GPIO = GpioSpec(pulse_ms=PULSE_MS, bounce_ms=10)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """A fresh mock factory, also installed as gpiozero's default; reset afterwards."""
    mock = MockFactory()
    Device.pin_factory = mock
    try:
        yield mock
    finally:
        mock.reset()
        Device.pin_factory = None


@pytest.fixture
def locker(factory: MockFactory) -> Iterator[GpioLocker]:
    """A started locker on ``factory`` with doors 1 and 2 closed (pins low: pull-up)."""
    built = GpioLocker(SPECS, GPIO, FAST_OPEN, FAST_POLL, pin_factory=factory)
    built.start()
    factory.pin(17).drive_low()
    factory.pin(27).drive_low()
    try:
        wait_for(lambda: door(built, 1) is DoorState.CLOSED and door(built, 2) is DoorState.CLOSED)
        yield built
    finally:
        built.close()


def on_periods(states: list[Any], active: bool) -> list[float]:
    """Durations (s) of each period the pin spent at level ``active``, from ``pin.states``."""
    periods = []
    for entry, following in itertools.pairwise(states):
        if entry.state == active and following.state != active:
            periods.append(following.timestamp)  # timestamps are deltas since the last change
    return periods


# -- relays -------------------------------------------------------------------------------------


def test_relays_are_off_from_the_start(locker: GpioLocker, factory: MockFactory) -> None:
    for pin in (5, 6, 13):
        assert [s.state for s in factory.pin(pin).states] == [False]


def test_pulse_switches_the_relay_on_for_pulse_ms(locker: GpioLocker, factory: MockFactory) -> None:
    result = locker.open(3, "t1")  # no door sensor: one pulse, unconfirmed
    assert result.outcome is OpenOutcome.UNCONFIRMED and result.pulses == 1
    relay = factory.pin(13)
    relay.assert_states([False, True, False])
    assert len(relay.states) == 3
    (length,) = on_periods(relay.states, active=True)
    assert PULSE_MS / 1000 * 0.9 <= length <= PULSE_MS / 1000 + 0.3
    assert [s.state for s in factory.pin(5).states] == [False]  # the others stayed off


def test_active_low_relays(factory: MockFactory) -> None:
    gpio = GpioSpec(pulse_ms=PULSE_MS, relay_active_high=False)
    locker = GpioLocker(SPECS, gpio, FAST_OPEN, FAST_POLL, pin_factory=factory)
    locker.start()
    relay = factory.pin(13)
    assert relay.state is True  # high = off for an active-low relay board
    relay.clear_states()
    locker.open(3, "t1")
    relay.assert_states([True, False, True])
    (length,) = on_periods(relay.states, active=False)
    assert length >= PULSE_MS / 1000 * 0.9
    locker.close()
    assert relay.state is True


def test_relay_goes_off_when_the_pulse_fails(
    locker: GpioLocker, factory: MockFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(_: float) -> None:
        raise RuntimeError("interrupted mid-pulse")

    monkeypatch.setattr(
        gpio_locker, "time", types.SimpleNamespace(sleep=interrupted, monotonic=time.monotonic)
    )
    with pytest.raises(DeviceUnavailable, match="interrupted"):
        locker._pulse(SPECS[2])
    factory.pin(13).assert_states([False, True, False])
    assert factory.pin(13).state is False


def test_close_switches_relays_off_and_releases_pins(factory: MockFactory) -> None:
    locker = GpioLocker(SPECS, GPIO, FAST_OPEN, FAST_POLL, pin_factory=factory)
    locker.start()
    locker._relays[1].on()  # as if close() came in the middle of a pulse
    locker.close()
    locker.close()
    assert factory.pin(5).state is False
    DigitalOutputDevice(5, pin_factory=factory).close()  # the pin is free again
    result = locker.open(2, "after-close")
    assert result.outcome is OpenOutcome.BOARD_OFFLINE and "not started" in result.detail


def test_start_is_idempotent_and_restartable(factory: MockFactory) -> None:
    locker = GpioLocker(SPECS, GPIO, FAST_OPEN, FAST_POLL, pin_factory=factory)
    locker.start()
    locker.start()
    locker.close()
    locker.start()
    assert locker.open(3, "again").outcome is OpenOutcome.UNCONFIRMED
    locker.close()


# -- switches -----------------------------------------------------------------------------------


def test_door_switch_drives_events(locker: GpioLocker, factory: MockFactory) -> None:
    events = EventRecorder(locker)
    factory.pin(27).drive_high()  # pull-up: high = switch open = door open
    events.wait_for(DoorForced, compartment=2)
    factory.pin(27).drive_low()
    events.wait_for(DoorClosed, compartment=2)
    assert door(locker, 2) is DoorState.CLOSED


def test_open_with_the_door_popping(locker: GpioLocker, factory: MockFactory) -> None:
    # The pulse (60 ms) spans two polls (30 ms): the door pops while the relay is still on,
    # and must still count as opened by command, not forced.
    relay = factory.pin(5)
    door_pin = factory.pin(17)
    events = EventRecorder(locker)
    original = relay._change_state

    def change(value: bool) -> bool:
        changed = original(value)
        if value:
            door_pin.drive_high()
        return changed

    relay._change_state = change  # type: ignore[method-assign]
    result = locker.open(1, "t1")
    assert result.outcome is OpenOutcome.OPENED and result.pulses == 1
    events.wait_for(DoorOpened, compartment=1)
    assert not events.of(DoorForced)


def test_inverted_door_switch(factory: MockFactory) -> None:
    gpio = GpioSpec(pulse_ms=PULSE_MS, door_pull_up=False, door_closed_when_active=False)
    locker = GpioLocker(SPECS[1:2], gpio, FAST_OPEN, FAST_POLL, pin_factory=factory)
    locker.start()
    try:
        factory.pin(27).drive_low()  # pull-down, active when open: low = closed
        assert locker.refresh().compartment(2).door is DoorState.CLOSED
        factory.pin(27).drive_high()
        assert locker.refresh().compartment(2).door is DoorState.OPEN
    finally:
        locker.close()


def test_item_sensor(locker: GpioLocker, factory: MockFactory) -> None:
    events = EventRecorder(locker)
    factory.pin(24).drive_low()  # pull-up, present when active: low = present
    events.wait_for(ItemChanged, compartment=1, present=True)
    assert locker.states().compartment(1).item is True
    assert locker.states().compartment(2).item is None
    assert locker.states().compartment(3).door is DoorState.UNKNOWN


class _DyingPin(MockPin):
    dead = False

    def _get_state(self) -> bool:
        if _DyingPin.dead:
            raise OSError(errno.EIO, "Input/output error")
        return super()._get_state()


def test_failing_pin_reads_take_the_board_offline(factory: MockFactory) -> None:
    _DyingPin.dead = False
    factory.pin(27, pin_class=_DyingPin)
    locker = GpioLocker(SPECS[1:2], GPIO, FAST_OPEN, FAST_POLL, pin_factory=factory)
    locker.start()
    try:
        events = EventRecorder(locker)
        factory.pin(27).drive_low()
        wait_for(lambda: door(locker, 2) is DoorState.CLOSED)
        _DyingPin.dead = True
        offline = events.wait_for(BoardOffline)
        assert (offline.bus, offline.address) == ("gpio", 0)
        assert "door pin 27" in offline.reason and "Input/output" in offline.reason
        assert door(locker, 2) is DoorState.UNKNOWN
        _DyingPin.dead = False
        events.wait_for(BoardOnline)
    finally:
        _DyingPin.dead = False
        locker.close()


# -- configuration and errors ---------------------------------------------------------------------


def test_validation_lists_every_problem() -> None:
    bad = [
        CompartmentSpec(1, relay_pin=None, door_pin=17),
        CompartmentSpec(2, relay_pin="GPIO17", door_pin=None),
        CompartmentSpec(3, relay_pin=5, door_pin=6, item_sensor=True),
    ]
    with pytest.raises(ConfigurationError) as caught:
        GpioLocker(bad, GPIO)
    message = str(caught.value)
    assert "compartment 1 has no relay_pin" in message
    assert "pin GPIO17 is used twice" in message
    assert "compartment 2 has door_sensor but no door_pin" in message
    assert "compartment 3 has item_sensor but no item_pin" in message


def test_validation_refuses_duplicates_and_empty_cabinets() -> None:
    with pytest.raises(ConfigurationError, match="configured twice"):
        validate_gpio_wiring([CompartmentSpec(1, relay_pin=5), CompartmentSpec(1, relay_pin=6)])
    with pytest.raises(ConfigurationError, match="no compartments"):
        validate_gpio_wiring([])
    with pytest.raises(ConfigurationError, match="pulse_ms"):
        GpioLocker(SPECS, GpioSpec(pulse_ms=0))


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (17, "GPIO17"),
        ("17", "GPIO17"),
        ("gpio17", "GPIO17"),
        ("BCM17", "GPIO17"),
        ("BOARD11", "J8:11"),
        ("J8:11", "J8:11"),
    ],
)
def test_pin_names(given: int | str, canonical: str) -> None:
    assert pin_name(given) == canonical


def test_factory_by_name(factory: MockFactory) -> None:
    locker = GpioLocker(SPECS, GpioSpec(pin_factory="mock", pulse_ms=PULSE_MS))
    locker.start()
    try:
        assert isinstance(locker.pin_factory, MockFactory)
        assert locker.pin_factory is not factory
        assert locker.states().boards[0].port == "mock"
    finally:
        locker.close()
    assert locker.pin_factory is None  # built here, so closed here


def test_unknown_factory_name_is_a_configuration_error() -> None:
    locker = GpioLocker(SPECS, GpioSpec(pin_factory="nosuchfactory"))
    with pytest.raises(ConfigurationError, match="nosuchfactory"):
        locker.start()


@pytest.mark.skipif(Path("/dev/gpiochip0").exists(), reason="a real GPIO chip is present")
def test_lgpio_without_hardware_is_unavailable() -> None:
    locker = GpioLocker(SPECS, GpioSpec(pin_factory="lgpio"))
    with pytest.raises(DeviceUnavailable, match="lgpio"):
        locker.start()


def test_default_factory_is_gpiozeros(factory: MockFactory) -> None:
    locker = GpioLocker(SPECS, GPIO, FAST_OPEN, FAST_POLL)  # Device.pin_factory: the mock
    locker.start()
    try:
        assert factory.pin(5).function == "output"
    finally:
        locker.close()


def test_pin_claimed_elsewhere_releases_what_was_claimed(factory: MockFactory) -> None:
    squatter = DigitalOutputDevice(27, pin_factory=factory)  # door pin of compartment 2
    locker = GpioLocker(SPECS, GPIO, pin_factory=factory)
    with pytest.raises(ConfigurationError, match="27"):
        locker.start()
    squatter.close()
    DigitalOutputDevice(5, pin_factory=factory).close()  # compartment 1's relay was released


class _BusyPin(MockPin):
    def _set_function(self, value: str) -> None:
        if value == "output":  # what lgpio says when another process holds the line
            raise RuntimeError("GPIO busy")
        super()._set_function(value)


def test_gpio_busy_is_device_busy(factory: MockFactory) -> None:
    factory.pin(6, pin_class=_BusyPin)
    locker = GpioLocker(SPECS, GPIO, pin_factory=factory)
    with pytest.raises(DeviceBusy, match="another process"):
        locker.start()
    DigitalOutputDevice(5, pin_factory=factory).close()  # nothing left claimed


@pytest.mark.skipif(Path("/dev/gpiochip0").exists(), reason="a real GPIO chip is present")
@pytest.mark.filterwarnings("ignore::gpiozero.exc.PinFactoryFallback")
def test_no_usable_default_factory_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    Device.pin_factory = None
    locker = GpioLocker(SPECS, GPIO)
    try:
        with pytest.raises(DeviceUnavailable, match="no GPIO pin factory works"):
            locker.start()
    finally:
        locker.close()
        Device.pin_factory = None
