"""The Locker protocol: what the kiosk sees of a cabinet, whatever drives it.

Value types (door states, open outcomes, snapshots), the events a locker emits and the
``Locker`` protocol. The behaviour every driver shares lives in ``driver.py``
(``LockerBase``); change detection in ``tracking.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from hardware.errors import UnknownCompartment
from hardware.locker.layout import CompartmentSpec

log = logging.getLogger(__name__)

BoardKey = tuple[str, int]  # (bus name, board address)


class DoorState(StrEnum):
    """What the door sensor says; ``unknown`` when there is no sensor or no answer."""

    CLOSED = "closed"
    OPEN = "open"
    UNKNOWN = "unknown"


class OpenOutcome(StrEnum):
    """How an ``open()`` ended. "Pulse sent" and "door opened" are separate facts."""

    OPENED = "opened"  # door seen closed, pulsed, then seen open
    ALREADY_OPEN = "already_open"  # door read open before the pulse (pulsed anyway)
    JAMMED = "jammed"  # pulsed (and retried), the door never read open
    BOARD_OFFLINE = "board_offline"  # the board did not answer: nothing was pulsed
    UNCONFIRMED = "unconfirmed"  # pulsed, but this compartment has no door sensor


@dataclass(frozen=True)
class OpenResult:
    """The outcome of one ``open()`` with its timings (milliseconds, monotonic clock)."""

    compartment: int
    txn_id: str
    outcome: OpenOutcome
    pulses: int = 0
    door_before: DoorState = DoorState.UNKNOWN
    first_pulse_ms: float | None = None  # from the call to the first pulse
    opened_ms: float | None = None  # from the first pulse to the door seen open
    total_ms: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class CompartmentState:
    """Door and item sensor of one compartment as last seen."""

    number: int
    door: DoorState
    item: bool | None  # None: no item sensor, or not known


@dataclass(frozen=True)
class BoardState:
    """Health of one board (a GPIO cabinet has one pseudo-board)."""

    bus: str
    port: str
    address: int
    online: bool


@dataclass(frozen=True)
class LockerState:
    """A snapshot of the whole cabinet."""

    compartments: tuple[CompartmentState, ...]
    boards: tuple[BoardState, ...]

    def compartment(self, number: int) -> CompartmentState:
        """The state of compartment ``number`` (LookupError when there is none)."""
        for state in self.compartments:
            if state.number == number:
                return state
        raise UnknownCompartment(f"no compartment {number}")


# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockerEvent:
    """Base of every locker event; ``at`` is ``time.monotonic()`` when it was seen."""

    at: float = field(default_factory=time.monotonic, kw_only=True)


@dataclass(frozen=True)
class DoorOpened(LockerEvent):
    """A door opened after this locker pulsed its lock."""

    compartment: int


@dataclass(frozen=True)
class DoorClosed(LockerEvent):
    """A door that was seen open is now seen closed."""

    compartment: int


@dataclass(frozen=True)
class DoorForced(LockerEvent):
    """A door opened without a command: forced, or a sensor fault. Raise an alarm."""

    compartment: int


@dataclass(frozen=True)
class ItemChanged(LockerEvent):
    """The item sensor of a compartment changed."""

    compartment: int
    present: bool | None


@dataclass(frozen=True)
class DoorSensorFault(LockerEvent):
    """A door sensor changed too often to be believed (chatter, a loose wire).

    The door reads ``unknown`` until the sensor has been steady for a while.
    """

    compartment: int
    changes: int


@dataclass(frozen=True)
class DoorSensorOk(LockerEvent):
    """A faulty door sensor has been steady again; ``door`` is what it now reads."""

    compartment: int
    door: DoorState


@dataclass(frozen=True)
class BoardOffline(LockerEvent):
    """A board stopped answering (after N failed polls in a row); its doors are unknown."""

    bus: str
    address: int
    reason: str


@dataclass(frozen=True)
class BoardOnline(LockerEvent):
    """A board answers (again). Re-read ``states()``: doors may have moved meanwhile."""

    bus: str
    address: int


Subscriber = Callable[[LockerEvent], None]


@runtime_checkable
class Locker(Protocol):
    """What the kiosk core needs of a cabinet, whatever drives it."""

    def start(self) -> None:
        """Open ports/pins and start watching; every relay is off afterwards."""
        ...

    def close(self) -> None:
        """Stop watching and release ports/pins; safe to call twice."""
        ...

    def compartments(self) -> tuple[CompartmentSpec, ...]:
        """The compartments of this cabinet, in number order."""
        ...

    def open(self, compartment: int, txn_id: str) -> OpenResult:
        """Pulse one lock and report what the door did; blocks until known (bounded)."""
        ...

    def states(self) -> LockerState:
        """The cabinet as last seen (never blocks on I/O)."""
        ...

    def refresh(self) -> LockerState:
        """Read every board now, then return ``states()`` (blocks, bounded)."""
        ...

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` for every event (on a driver thread); returns unsubscribe."""
        ...
