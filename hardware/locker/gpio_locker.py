"""A cabinet wired straight to the Pi's GPIO pins with gpiozero.

One relay per lock (``DigitalOutputDevice``), one reed switch per door and optionally an
item sensor (``DigitalInputDevice``). The whole header counts as one pseudo-board
("gpio", 0). gpiozero and pin-factory exceptions are translated here into
``hardware.errors`` so nothing above this module sees a gpiozero type.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from importlib.metadata import entry_points

from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.exc import BadPinFactory, GPIOPinInUse, PinInvalidPin
from gpiozero.pins import Factory

from hardware.errors import (
    ConfigurationError,
    DeviceBusy,
    DeviceUnavailable,
    HardwareError,
)
from hardware.locker.base import BoardKey, DoorState, LockerState
from hardware.locker.driver import LockerBase, PollThread
from hardware.locker.layout import CompartmentSpec, GpioSpec, OpenTiming, PollTiming

log = logging.getLogger(__name__)

GPIO_BOARD: BoardKey = ("gpio", 0)
_FACTORY_GROUP = "gpiozero_pin_factories"
_LGPIO_HINT = "pip install lgpio (it needs the swig and liblgpio-dev packages to build)"


def pin_name(pin: int | str) -> str:
    """A canonical name for a pin spec, so 17, "17", "GPIO17" and "BCM17" compare equal.

    Physical names ("BOARD11", "J8:11") stay as given; gpiozero itself refuses a physical
    pin that aliases a GPIO number already claimed (reported as ConfigurationError).
    """
    text = str(pin).strip().upper()
    for prefix in ("GPIO", "BCM"):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            return f"GPIO{int(text[len(prefix) :])}"
    if text.isdigit():
        return f"GPIO{int(text)}"
    if text.startswith("BOARD") and text[5:].isdigit():
        return f"J8:{int(text[5:])}"
    return text


def validate_gpio_wiring(compartments: Sequence[CompartmentSpec]) -> None:
    """Raise ConfigurationError listing every wiring problem of a GPIO cabinet."""
    problems: list[str] = []
    if not compartments:
        problems.append("no compartments configured")
    users: dict[str, list[str]] = {}
    seen_numbers: set[int] = set()
    for spec in compartments:
        if spec.number in seen_numbers:
            problems.append(f"compartment {spec.number} is configured twice")
        seen_numbers.add(spec.number)
        if spec.relay_pin is None:
            problems.append(f"compartment {spec.number} has no relay_pin")
        if spec.door_sensor and spec.door_pin is None:
            problems.append(f"compartment {spec.number} has door_sensor but no door_pin")
        if spec.item_sensor and spec.item_pin is None:
            problems.append(f"compartment {spec.number} has item_sensor but no item_pin")
        wired = (
            ("relay_pin", spec.relay_pin),
            ("door_pin", spec.door_pin),
            ("item_pin", spec.item_pin),
        )
        for role, pin in wired:
            if pin is not None:
                users.setdefault(pin_name(pin), []).append(f"compartment {spec.number} {role}")
    for name, roles in sorted(users.items()):
        if len(roles) > 1:
            problems.append(f"pin {name} is used twice: {', '.join(roles)}")
    if problems:
        raise ConfigurationError("GPIO cabinet wiring: " + "; ".join(problems))


def build_pin_factory(name: str) -> Factory:
    """Build the gpiozero pin factory called ``name`` ("lgpio", "mock", "rpigpio", ...)."""
    wanted = name.strip().lower()
    found = [ep for ep in entry_points(group=_FACTORY_GROUP) if ep.name.lower() == wanted]
    if not found:
        known = sorted(ep.name for ep in entry_points(group=_FACTORY_GROUP))
        raise ConfigurationError(
            f"unknown gpiozero pin factory {name!r}; known: {', '.join(known)}"
        )
    try:
        factory_class = found[0].load()
    except ImportError as exc:
        hint = f": {_LGPIO_HINT}" if wanted == "lgpio" else ""
        raise DeviceUnavailable(f"pin factory {name!r} cannot be loaded ({exc}){hint}") from exc
    try:
        return factory_class()
    except Exception as exc:  # factories raise their own types (lgpio.error, OSError, ...)
        raise _translate(exc, f"pin factory {name!r} cannot start") from exc


def _translate(exc: BaseException, what: str) -> HardwareError:
    """Map a gpiozero or pin-library exception onto hardware.errors."""
    if isinstance(exc, HardwareError):
        return exc
    text = f"{what}: {exc}"
    if isinstance(exc, GPIOPinInUse | PinInvalidPin):
        return ConfigurationError(text)
    if "busy" in str(exc).lower():  # lgpio: "GPIO busy" when another process holds a line
        return DeviceBusy(f"{text} (another process holds the GPIO line)")
    if isinstance(exc, BadPinFactory) or (isinstance(exc, ImportError) and "lgpio" in str(exc)):
        return DeviceUnavailable(
            f"{text}: no GPIO pin factory works on this machine; set gpio.pin_factory "
            f'("mock" to run without hardware) or, on a Raspberry Pi 5, {_LGPIO_HINT}'
        )
    return DeviceUnavailable(text)


@contextlib.contextmanager
def _gpio_boundary(what: str) -> Iterator[None]:
    """Translate whatever a pin factory raises inside the block into hardware.errors."""
    try:
        yield
    except HardwareError:
        raise
    except Exception as exc:  # gpiozero, lgpio, RPi.GPIO and OSError all reach here
        raise _translate(exc, what) from exc


class GpioLocker(LockerBase):
    """A GPIO cabinet: relays pulse the locks, reed switches report the doors.

    Pins are claimed in ``start()`` (every relay off) and released in ``close()``.
    """

    def __init__(
        self,
        compartments: Sequence[CompartmentSpec],
        gpio: GpioSpec,
        open_timing: OpenTiming | None = None,
        poll: PollTiming | None = None,
        *,
        pin_factory: Factory | None = None,
    ) -> None:
        validate_gpio_wiring(compartments)
        if gpio.pulse_ms <= 0:
            raise ConfigurationError(
                f"GPIO cabinet: pulse_ms must be positive, not {gpio.pulse_ms}"
            )
        super().__init__(compartments, open_timing, poll)
        self._gpio = gpio
        self._factory = pin_factory
        self._own_factory = False  # built here from gpio.pin_factory: closed in close()
        self._relays: dict[int, DigitalOutputDevice] = {}
        self._doors: dict[int, DigitalInputDevice] = {}
        self._items: dict[int, DigitalInputDevice] = {}
        self._pulse_lock = threading.Lock()  # one solenoid at a time on the shared supply
        self._state_lock = threading.Lock()  # guards start/close
        self._poller: PollThread | None = None
        self._started = False

    @property
    def pin_factory(self) -> Factory | None:
        """The gpiozero pin factory in use (None: gpiozero's default), for diagnostics/tests."""
        return self._factory

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Claim every pin (relays off) and start polling the switches (idempotent)."""
        with self._state_lock:
            if self._started:
                return
            if self._factory is None and self._gpio.pin_factory:
                self._factory = build_pin_factory(self._gpio.pin_factory)
                self._own_factory = True
            try:
                self._claim_pins()
            except HardwareError:
                self._release_pins()
                raise
            self._register_boards([GPIO_BOARD])
            self._poller = PollThread("gpio-locker-poll", self._poll.interval_s, self._poll_board)
            self._poller.start()
            self._started = True
        log.info(
            "GPIO locker started: %d relays, %d door switches", len(self._relays), len(self._doors)
        )

    def close(self) -> None:
        """Stop polling, switch every relay off and release the pins; safe to call twice."""
        with self._state_lock:
            poller, self._poller = self._poller, None
            self._started = False
        if poller is not None:
            poller.stop()
        # Wait (bounded) for a pulse in flight: its own finally switches the relay off.
        got_it = self._pulse_lock.acquire(timeout=self._gpio.pulse_ms / 1000 + 1.0)
        try:
            self._release_pins()
            if self._own_factory and self._factory is not None:
                factory, self._factory, self._own_factory = self._factory, None, False
                with contextlib.suppress(Exception):  # best effort: the process may be ending
                    factory.close()
        finally:
            if got_it:
                self._pulse_lock.release()

    def refresh(self) -> LockerState:
        """Read every switch once now (one board read, like a poll) and return states()."""
        self._poll_board(confirmed=True)
        return self.states()

    def _claim_pins(self) -> None:
        gpio = self._gpio
        bounce = gpio.bounce_ms / 1000 if gpio.bounce_ms > 0 else None
        for number, spec in self._specs.items():
            with _gpio_boundary(f"compartment {number}: relay pin {spec.relay_pin}"):
                self._relays[number] = DigitalOutputDevice(
                    spec.relay_pin,
                    active_high=gpio.relay_active_high,
                    initial_value=False,
                    pin_factory=self._factory,
                )
            inputs = (
                (spec.door_sensor, "door", spec.door_pin, gpio.door_pull_up, self._doors),
                (spec.item_sensor, "item", spec.item_pin, gpio.item_pull_up, self._items),
            )
            for wanted, what, pin, pull_up, devices in inputs:
                if wanted:
                    with _gpio_boundary(f"compartment {number}: {what} pin {pin}"):
                        devices[number] = DigitalInputDevice(
                            pin, pull_up=pull_up, bounce_time=bounce, pin_factory=self._factory
                        )

    def _release_pins(self) -> None:
        """Relays off first, then every device closed; goes on past errors (logged)."""
        relays, doors, items = self._relays, self._doors, self._items
        self._relays, self._doors, self._items = {}, {}, {}
        for number, relay in relays.items():
            try:
                relay.off()
            except Exception as exc:  # keep switching the others off whatever this one did
                log.error("compartment %s: could not switch relay off: %s", number, exc)
        for device in [*relays.values(), *doors.values(), *items.values()]:
            try:
                device.close()
            except Exception as exc:  # closing is best effort; the pin is ours no more
                log.warning("could not close %r: %s", device, exc)

    # -- LockerBase -----------------------------------------------------------------------------

    def _board_key(self, spec: CompartmentSpec) -> BoardKey:
        return GPIO_BOARD

    def _board_port(self, key: BoardKey) -> str:
        if self._gpio.pin_factory:
            return self._gpio.pin_factory
        return type(self._factory).__name__ if self._factory is not None else "gpio"

    def _pulse(self, spec: CompartmentSpec) -> None:
        with self._pulse_lock, _gpio_boundary(f"compartment {spec.number}: relay"):
            relay = self._relays.get(spec.number)
            if relay is None:
                raise DeviceUnavailable(f"compartment {spec.number}: GPIO locker is not started")
            try:
                relay.on()
                time.sleep(self._gpio.pulse_ms / 1000)
            finally:
                # A solenoid left energised burns out: off whatever happened above.
                relay.off()
        log.debug("compartment %s: relay pulsed %d ms", spec.number, self._gpio.pulse_ms)

    def _read(self, spec: CompartmentSpec) -> tuple[DoorState, bool | None]:
        door_device = self._doors.get(spec.number)
        item_device = self._items.get(spec.number)
        if (spec.door_sensor and door_device is None) or (spec.item_sensor and item_device is None):
            raise DeviceUnavailable(f"compartment {spec.number}: GPIO locker is not started")
        door = DoorState.UNKNOWN
        item: bool | None = None
        if door_device is not None:
            with _gpio_boundary(f"compartment {spec.number}: door pin {spec.door_pin}"):
                active = bool(door_device.is_active)
            closed = active if self._gpio.door_closed_when_active else not active
            door = DoorState.CLOSED if closed else DoorState.OPEN
        if item_device is not None:
            with _gpio_boundary(f"compartment {spec.number}: item pin {spec.item_pin}"):
                active = bool(item_device.is_active)
            item = active if self._gpio.item_present_when_active else not active
        return door, item

    def _poll_board(self, confirmed: bool = False) -> None:
        """Read every switch of the pseudo-board; one health result per poll."""
        try:
            readings = {n: self._read(spec) for n, spec in self._specs.items()}
        except HardwareError as exc:
            self._board_result(GPIO_BOARD, ok=False, reason=str(exc))
            return
        self._board_result(GPIO_BOARD, ok=True)
        for number, (door, item) in readings.items():
            self._observe(number, door, item, confirmed=confirmed)
