"""Change detection for one compartment and health of one board: pure, no I/O, no locks.

``CompartmentTracker`` turns raw sensor readings into the events a kiosk acts on:
a door change counts after ``stable_reads`` equal readings (or at once when the reading
is ``confirmed``, as right after a pulse), a state seen for the first time raises no
event (decision 0004), and a door sensor that flips too often within a window is
declared faulty (its door reads ``unknown``) until it has been steady for that window.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from hardware.locker.base import (
    DoorClosed,
    DoorForced,
    DoorOpened,
    DoorSensorFault,
    DoorSensorOk,
    DoorState,
    ItemChanged,
    LockerEvent,
)
from hardware.locker.layout import PollTiming

log = logging.getLogger(__name__)


@dataclass
class CompartmentTracker:
    """What is known about one compartment's sensors, and how it last changed."""

    number: int
    poll: PollTiming
    door: DoorState = DoorState.UNKNOWN
    item: bool | None = None
    _item_known: bool = False
    _candidate: DoorState | None = None
    _candidate_count: int = 0
    _changes: deque[float] = field(default_factory=deque)  # when the door last changed
    faulty: bool = False
    _steady_reading: DoorState = DoorState.UNKNOWN
    _steady_since: float = 0.0

    def forget(self) -> None:
        """The board went away: nothing is known any more (the next reading is first sight)."""
        self.door, self.item, self._item_known = DoorState.UNKNOWN, None, False
        self._candidate, self._candidate_count = None, 0

    @property
    def shown_door(self) -> DoorState:
        """The door as the cabinet reports it: ``unknown`` while the sensor is faulty."""
        return DoorState.UNKNOWN if self.faulty else self.door

    def item_reading(self, item: bool | None) -> list[LockerEvent]:
        """Feed an item sensor reading; an event when it changed after the first sight."""
        if item == self.item:
            return []
        known, self.item, self._item_known = self._item_known, item, item is not None
        return [ItemChanged(compartment=self.number, present=item)] if known else []

    def door_reading(
        self, door: DoorState, now: float, *, confirmed: bool, commanded: bool
    ) -> list[LockerEvent]:
        """Feed a door reading taken at ``now``; ``commanded``: a pulse went out recently."""
        if door is DoorState.UNKNOWN:
            return []
        if self.faulty:
            return self._while_faulty(door, now)
        if door == self.door:
            self._candidate, self._candidate_count = None, 0
            return []
        if self._candidate == door:
            self._candidate_count += 1
        else:
            self._candidate, self._candidate_count = door, 1
        if not confirmed and self._candidate_count < self.poll.stable_reads:
            return []
        previous, self.door = self.door, door
        self._candidate, self._candidate_count = None, 0
        if previous is DoorState.UNKNOWN:
            return []  # first sight (start-up, board back): not a movement anyone saw
        if self._too_many_changes(now):
            self.faulty, self._steady_reading, self._steady_since = True, door, now
            log.warning(
                "compartment %s: door sensor changed %d times within %.0f s: treated as faulty",
                self.number,
                self.poll.chatter_changes,
                self.poll.chatter_window_s,
            )
            return [DoorSensorFault(compartment=self.number, changes=self.poll.chatter_changes)]
        if door is DoorState.CLOSED:
            return [DoorClosed(compartment=self.number)]
        if commanded:
            return [DoorOpened(compartment=self.number)]
        log.warning("compartment %s opened without a command", self.number)
        return [DoorForced(compartment=self.number)]

    def _too_many_changes(self, now: float) -> bool:
        self._changes.append(now)
        while self._changes and now - self._changes[0] > self.poll.chatter_window_s:
            self._changes.popleft()
        return len(self._changes) >= self.poll.chatter_changes

    def _while_faulty(self, door: DoorState, now: float) -> list[LockerEvent]:
        if door != self._steady_reading:
            self._steady_reading, self._steady_since = door, now
            return []
        if now - self._steady_since < self.poll.chatter_window_s:
            return []
        self.faulty, self.door = False, door
        self._changes.clear()
        log.info("compartment %s: door sensor steady again (%s)", self.number, door.value)
        return [DoorSensorOk(compartment=self.number, door=door)]


@dataclass
class BoardHealth:
    """Whether one board answers; offline only after ``offline_after`` failures in a row."""

    offline_after: int
    online: bool | None = None  # None: never asked yet
    failures: int = 0

    def answered(self) -> bool:
        """Count an answer; True when the board just came (back) online."""
        self.failures = 0
        came_online = self.online is not True
        self.online = True
        return came_online

    def failed(self) -> bool:
        """Count a failed request; True when the board just went offline."""
        self.failures += 1
        if self.online is not False and self.failures >= self.offline_after:
            self.online = False
            return True
        return False
