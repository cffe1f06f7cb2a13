"""How a cabinet is wired: the plain values a locker driver is built from.

``kiosk.settings`` reads and validates these from TOML; drivers only consume them.
Compartments are numbered 1..N as the resident sees them; channels are 1-based.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Feedback(StrEnum):
    """What a set feedback bit means; wrong polarity inverts every door."""

    CLOSED_WHEN_SET = "closed_when_set"
    OPEN_WHEN_SET = "open_when_set"

    def is_closed(self, bit: bool) -> bool:
        """True when a feedback bit with this value means "door closed"."""
        return bit if self is Feedback.CLOSED_WHEN_SET else not bit


@dataclass(frozen=True)
class CompartmentSpec:
    """One compartment: what it holds and where its lock is wired.

    Serial cabinets fill ``bus``/``board``/``channel``; GPIO cabinets fill the pins.
    """

    number: int
    size: str = "M"
    charging: bool = False
    door_sensor: bool = True
    item_sensor: bool = False
    bus: str | None = None
    board: int | None = None
    channel: int | None = None
    relay_pin: int | str | None = None
    door_pin: int | str | None = None
    item_pin: int | str | None = None


@dataclass(frozen=True)
class BusSpec:
    """One RS485 bus: a USB adapter (or emulator URL) with one or more boards on it."""

    name: str
    port: str  # device path or pyserial URL (socket://host:port, spy://..., ...)
    family: str  # codec name: "cu", "8a"
    boards: tuple[int, ...]
    baud: int = 19200
    channels: int = 16  # channels per board
    feedback: Feedback = Feedback.CLOSED_WHEN_SET
    # Unlock pulse length sent to boards whose family can set it; None leaves the board's
    # own setting. Opt-in: the CU byte order is not confirmed by a manual, and a misread
    # length could hold a solenoid far too long. Check one board before setting it.
    pulse_ms: int | None = None
    reply_timeout_s: float = 0.3
    gap_s: float | None = None  # None: 3.5 character times + 1 ms at this baud rate
    silence_s: float = 0.025  # line silence that ends a frame of unknown length
    exclusive: bool = True
    reconnect_max_s: float = 30.0

    @property
    def frame_gap_s(self) -> float:
        """Quiet time between two requests on this bus."""
        if self.gap_s is not None:
            return self.gap_s
        return 3.5 * 10 / self.baud + 0.001


@dataclass(frozen=True)
class GpioSpec:
    """Pins of a GPIO cabinet: one relay per lock, one switch per door."""

    pin_factory: str | None = None  # gpiozero factory name: "lgpio", "mock", ... None: default
    relay_active_high: bool = True
    pulse_ms: int = 500
    door_pull_up: bool = True  # switch to ground: pin low = switch closed
    door_closed_when_active: bool = True  # active = switch closed = door closed
    item_pull_up: bool = True
    item_present_when_active: bool = True
    bounce_ms: int = 50


@dataclass(frozen=True)
class OpenTiming:
    """How an opening is carried out and watched."""

    watch_s: float = 4.0  # watch the door this long after each pulse
    retry: bool = True  # one more pulse when the door did not open
    cooldown_s: float = 2.0  # never pulse one lock twice within this (solenoids overheat)
    check_interval_s: float = 0.05  # re-read the door this often while watching


@dataclass(frozen=True)
class PollTiming:
    """How the background poller watches the cabinet."""

    interval_s: float = 0.25  # one status read per board per interval
    offline_after: int = 3  # failed polls in a row before a board counts as offline
    stable_reads: int = 2  # equal readings before a polled door change counts (chatter)
    chatter_changes: int = 6  # this many door changes within chatter_window_s: sensor faulty
    chatter_window_s: float = 10.0  # ... and it must then be steady this long to be believed


@dataclass(frozen=True)
class SimulationSpec:
    """Behaviour of the in-memory locker (demo and fast tests)."""

    latency_s: float = 0.0
    auto_open: bool = True  # a pulsed door springs open, as a real spring-loaded door does


@dataclass(frozen=True)
class CabinetSpec:
    """A whole cabinet: the driver to use and everything it needs."""

    driver: str  # "serial", "gpio", "simulated"
    compartments: tuple[CompartmentSpec, ...]
    buses: tuple[BusSpec, ...] = ()
    gpio: GpioSpec = field(default_factory=GpioSpec)
    simulation: SimulationSpec = field(default_factory=SimulationSpec)
    open_timing: OpenTiming = field(default_factory=OpenTiming)
    poll: PollTiming = field(default_factory=PollTiming)

    def bus(self, name: str) -> BusSpec:
        """The bus called ``name`` (KeyError when there is none)."""
        for bus in self.buses:
            if bus.name == name:
                return bus
        raise KeyError(name)
