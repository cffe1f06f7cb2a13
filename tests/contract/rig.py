"""The test rig every locker implementation provides for the contract suite, and helpers.

A rig module ``tests/contract/rig_<name>.py`` exposes ``RIGS: list[Callable[[], Rig]]``;
each factory returns a started locker with its "far end" (simulated world, mock pins,
board emulator) that the tests drive through the ``Rig`` methods.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from hardware.locker.base import DoorState, Locker, LockerEvent
from hardware.locker.layout import OpenTiming, PollTiming

# The short timings every rig builds its locker with (the tests rely on them).
FAST_OPEN = OpenTiming(watch_s=0.4, cooldown_s=0.2, check_interval_s=0.02)
FAST_POLL = PollTiming(interval_s=0.03, offline_after=3, stable_reads=2)

# Bounds for waiting on something that should happen "soon": generous, because a loaded
# 2-core CI machine can stall a poller thread for a good fraction of a second.
EVENT_TIMEOUT_S = 3.0
READY_TIMEOUT_S = 5.0

T = TypeVar("T")
E = TypeVar("E", bound=LockerEvent)


class Rig(Protocol):
    """A started locker plus the far end that plays residents and hardware faults."""

    name: str
    locker: Locker  # already started, built with FAST_OPEN and FAST_POLL
    numbers: tuple[int, ...]  # at least 4; compartment 1 has an item sensor where possible

    def close_door(self, n: int) -> None:
        """The resident closes the door."""
        ...

    def open_by_hand(self, n: int) -> None:
        """Someone opens the door without a command (forced)."""
        ...

    def set_item(self, n: int, present: bool) -> None:
        """Put an item into compartment ``n`` or take it out."""
        ...

    def jam(self, n: int, on: bool = True) -> None:
        """The lock of ``n`` takes pulses but does not release the door."""
        ...

    def board_offline(self, on: bool = True) -> None:
        """The board of compartment 1 stops answering."""
        ...

    def pulses(self, n: int) -> int:
        """Pulses that lock ``n`` got, seen at the far end."""
        ...

    def close(self) -> None:
        """Close the locker and release the far end; safe after ``locker.close()``."""
        ...


def wait_for(predicate: Callable[[], T], timeout: float = EVENT_TIMEOUT_S, message: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy (returned) or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.1f} s waiting for {message or predicate}"
            )
        time.sleep(0.005)


class EventRecorder:
    """Subscribes to a locker and keeps every event; tests wait for the ones they expect."""

    def __init__(self, locker: Locker) -> None:
        self._events: list[LockerEvent] = []
        self._changed = threading.Condition()
        self.unsubscribe = locker.subscribe(self._on_event)

    def _on_event(self, event: LockerEvent) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    @property
    def events(self) -> list[LockerEvent]:
        """A copy of the events seen so far, oldest first."""
        with self._changed:
            return list(self._events)

    def of(self, kind: type[E], **fields: object) -> list[E]:
        """The events of type ``kind`` whose attributes equal ``fields``."""
        return [
            e
            for e in self.events
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())
        ]

    def wait_for(self, kind: type[E], timeout: float = EVENT_TIMEOUT_S, **fields: object) -> E:
        """The first event of type ``kind`` matching ``fields``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._events:
                    if isinstance(event, kind) and all(
                        getattr(event, k) == v for k, v in fields.items()
                    ):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {kind.__name__}{fields or ''} within {timeout:.1f} s; "
                        f"events seen: {self._events}"
                    )
                self._changed.wait(remaining)


def door(locker: Locker, number: int) -> DoorState:
    """The door of compartment ``number`` as ``states()`` reports it now."""
    return locker.states().compartment(number).door


def wait_ready(locker: Locker, timeout: float = READY_TIMEOUT_S) -> None:
    """Wait until every board answered and every door with a sensor reads closed."""

    def ready() -> bool:
        state = locker.states()
        doors_known = all(
            state.compartment(spec.number).door is DoorState.CLOSED
            for spec in locker.compartments()
            if spec.door_sensor
        )
        return bool(state.boards) and all(b.online for b in state.boards) and doors_known

    wait_for(ready, timeout, "every board online and every door seen closed")
