"""Contract rig for ``GpioLocker`` on gpiozero mock pins.

The far end is a tiny world model wired to mock pins: a relay switching on releases the
door (the door switch reads "open") unless the lock is jammed, and "board offline" makes
every pin access fail the way a dead GPIO chip does (OSError EIO).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from hardware.locker.gpio_locker import GpioLocker
from hardware.locker.layout import CompartmentSpec, GpioSpec
from tests.contract.rig import FAST_OPEN, FAST_POLL, Rig

RELAY_PINS = {1: 5, 2: 6, 3: 13, 4: 19}
DOOR_PINS = {1: 17, 2: 27, 3: 22, 4: 23}
ITEM_PIN_1 = 24


class _Offline:
    """Shared switch: while set, every rig pin fails like a GPIO chip that stopped answering."""

    def __init__(self) -> None:
        self.flag = threading.Event()

    def check(self) -> None:
        if self.flag.is_set():
            raise OSError(errno.EIO, "GPIO chip does not answer")


class WorldInputPin(MockPin):
    """A mock input whose level comes from the rig's world (not from drive_high/low)."""

    def __init__(
        self, factory: Any, info: Any, level: Callable[[], bool], offline: _Offline
    ) -> None:
        super().__init__(factory, info)
        self._level = level
        self._offline = offline

    def _get_state(self) -> bool:
        self._offline.check()
        return self._level()


class RelayPin(MockPin):
    """A mock output that tells the world when its level changes."""

    def __init__(
        self, factory: Any, info: Any, changed: Callable[[bool], None], offline: _Offline
    ) -> None:
        super().__init__(factory, info)
        self._changed = changed
        self._offline = offline

    def _set_state(self, value: bool) -> None:
        if self._function == "output":  # a silent chip refuses writes too
            self._offline.check()
        super()._set_state(value)

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        if changed and self._function == "output":
            self._changed(bool(value))
        return changed


class GpioRig:
    """Four compartments on mock pins; compartment 1 has an item sensor."""

    name = "gpio"

    def __init__(self, gpio: GpioSpec | None = None) -> None:
        self.gpio = gpio or GpioSpec(pulse_ms=80, bounce_ms=0)
        self.numbers = (1, 2, 3, 4)
        self._lock = threading.Lock()
        self._open = dict.fromkeys(self.numbers, False)
        self._jammed = dict.fromkeys(self.numbers, False)
        self._pulses = dict.fromkeys(self.numbers, 0)
        self._item = False
        self._offline = _Offline()
        self.factory = MockFactory()
        for n in self.numbers:
            self.factory.pin(
                DOOR_PINS[n],
                pin_class=WorldInputPin,
                level=self._door_level(n),
                offline=self._offline,
            )
            self.factory.pin(
                RELAY_PINS[n],
                pin_class=RelayPin,
                changed=self._relay_changed(n),
                offline=self._offline,
            )
        self.factory.pin(
            ITEM_PIN_1, pin_class=WorldInputPin, level=self._item_level, offline=self._offline
        )
        specs = [
            CompartmentSpec(
                n,
                relay_pin=RELAY_PINS[n],
                door_pin=DOOR_PINS[n],
                item_sensor=n == 1,
                item_pin=ITEM_PIN_1 if n == 1 else None,
            )
            for n in self.numbers
        ]
        self.locker = GpioLocker(specs, self.gpio, FAST_OPEN, FAST_POLL, pin_factory=self.factory)
        self.locker.start()

    # -- the world, wired to the pins --------------------------------------------------------

    def _door_level(self, n: int) -> Callable[[], bool]:
        def level() -> bool:
            with self._lock:
                closed = not self._open[n]
            # The switch is "active" when the door is closed (door_closed_when_active) and an
            # active input with pull-up reads low.
            active = closed if self.gpio.door_closed_when_active else not closed
            return not active if self.gpio.door_pull_up else active

        return level

    def _item_level(self) -> bool:
        with self._lock:
            present = self._item
        active = present if self.gpio.item_present_when_active else not present
        return not active if self.gpio.item_pull_up else active

    def _relay_changed(self, n: int) -> Callable[[bool], None]:
        def changed(level: bool) -> None:
            if level != self.gpio.relay_active_high:
                return  # switched off
            with self._lock:
                self._pulses[n] += 1
                if not self._jammed[n]:
                    self._open[n] = True  # the released spring pushes the door open

        return changed

    # -- Rig -----------------------------------------------------------------------------------

    def close_door(self, n: int) -> None:
        """The resident closes the door."""
        with self._lock:
            self._open[n] = False

    def open_by_hand(self, n: int) -> None:
        """Someone opens the door without a command."""
        with self._lock:
            self._open[n] = True

    def set_item(self, n: int, present: bool) -> None:
        """Put an item in or take it out (only compartment 1 has a sensor)."""
        if n != 1:
            raise ValueError("the GPIO rig has an item sensor in compartment 1 only")
        with self._lock:
            self._item = present

    def jam(self, n: int, on: bool = True) -> None:
        """Jam the lock of ``n``."""
        with self._lock:
            self._jammed[n] = on

    def board_offline(self, on: bool = True) -> None:
        """Every pin of the (only) pseudo-board fails."""
        if on:
            self._offline.flag.set()
        else:
            self._offline.flag.clear()

    def pulses(self, n: int) -> int:
        """Relay on-switchings of lock ``n``."""
        with self._lock:
            return self._pulses[n]

    def close(self) -> None:
        """Close the locker and forget the mock pins (idempotent)."""
        self._offline.flag.clear()
        self.locker.close()
        self.factory.reset()


def gpio_active_high() -> Rig:
    """GPIO cabinet with active-high relays and pull-up door switches."""
    return GpioRig()


def gpio_active_low() -> Rig:
    """GPIO cabinet with active-low relays and door switches that are active when open."""
    return GpioRig(
        GpioSpec(
            pulse_ms=80,
            bounce_ms=0,
            relay_active_high=False,
            door_pull_up=False,
            door_closed_when_active=False,
        )
    )


RIGS: list[Callable[[], Rig]] = [gpio_active_high, gpio_active_low]
