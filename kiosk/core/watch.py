"""Alarms from the world outside a flow: forced doors, boards, the card reader, the server, disk.

Each alarm is raised once (not again while active), journalled, shown to staff, and
cleared when its cause goes away (or by staff, for those that cannot clear themselves).
"""

from __future__ import annotations

import logging
import shutil

from hardware.errors import HardwareError
from hardware.locker.base import (
    BoardOffline,
    BoardOnline,
    DoorClosed,
    DoorForced,
    DoorSensorFault,
    DoorSensorOk,
    DoorState,
    LockerEvent,
)
from kiosk.core.events import ReaderTrouble, Screen, ServerStatus, SyncRefused
from kiosk.core.flowbase import FlowBase
from kiosk.core.model import AlarmKind
from kiosk.core.startup import compare_with_cabinet

log = logging.getLogger("kiosk.core")

READER_GONE = ("pcscd_unavailable", "no_reader", "reader_removed")
# What the resident is told for a card that could not be used (message ids).
CARD_MESSAGES = {
    "card_removed": "card.removed_early",
    "not_an_eid": "card.not_an_eid",
    "mute_card": "card.mute",
    "not_activated": "card.not_activated",
}
CARD_SCREENS = (Screen.IDLE, Screen.CODE_ENTRY, Screen.RETURN_IDENTIFY, Screen.STAFF_CODE)


class Watch(FlowBase):
    """Alarm handling shared by every flow."""

    disk_path: str | None = None

    def locker_alarm(self, event: LockerEvent) -> None:
        """Raise or clear the alarm a locker event means (flows are handled elsewhere)."""
        # Most events clear nothing: look first, so a normal door close writes nothing.
        if isinstance(event, BoardOnline):
            self.board_back()
            return
        clears = {DoorClosed: AlarmKind.DOOR_LEFT_OPEN, DoorSensorOk: AlarmKind.DOOR_SENSOR_FAULT}
        kind = clears.get(type(event))
        number = getattr(event, "compartment", None)
        if kind is not None and not self.active_alarm(kind, number):
            return
        with self.tx() as tx:
            if isinstance(event, DoorForced):
                self.raise_alarm(
                    tx, AlarmKind.DOOR_FORCED, event.compartment, "opened without a command"
                )
            elif isinstance(event, DoorClosed):
                self.clear_alarms(tx, AlarmKind.DOOR_LEFT_OPEN, event.compartment)
            elif isinstance(event, BoardOffline):
                self.raise_alarm(
                    tx,
                    AlarmKind.BOARD_OFFLINE,
                    None,
                    f"board {event.bus}/{event.address}: {event.reason}",
                )
            elif isinstance(event, DoorSensorFault):
                self.raise_alarm(
                    tx,
                    AlarmKind.DOOR_SENSOR_FAULT,
                    event.compartment,
                    f"door sensor changed {event.changes} times",
                )
            elif isinstance(event, DoorSensorOk):
                self.clear_alarms(tx, AlarmKind.DOOR_SENSOR_FAULT, event.compartment)

    def board_back(self) -> None:
        """A board answers again: its doors were not seen meanwhile, so read and compare."""
        try:
            states = self.locker.refresh()
        except HardwareError as exc:
            log.warning("board back, but the cabinet cannot be read: %s", exc)
            return
        flow = self.s.compartment if self.s.open_id else None
        with self.tx() as tx:
            if all(board.online for board in states.boards):
                self.clear_alarms(tx, AlarmKind.BOARD_OFFLINE, None)
            for live in states.compartments:
                if live.door is DoorState.CLOSED:
                    self.clear_alarms(tx, AlarmKind.DOOR_LEFT_OPEN, live.number)
            compare_with_cabinet(self, tx, states, skip=() if flow is None else (flow,))
        if flow is not None and self.s.door_open and self.door(flow) is DoorState.CLOSED:
            self.door_closed_in_flow()  # the door was shut while nobody could see it

    def reader_trouble(self, event: ReaderTrouble) -> None:
        """A reader problem: an alarm when the reader is gone, a message for a bad card."""
        if event.kind in READER_GONE:
            with self.tx() as tx:
                self.raise_alarm(tx, AlarmKind.READER_UNAVAILABLE, None, event.message)
            return
        if self.s.screen in CARD_SCREENS:
            self.end_session(CARD_MESSAGES.get(event.kind, "card.read_failed"))

    def reader_fine(self) -> None:
        """A card was read: the reader works again."""
        if self.active_alarm(AlarmKind.READER_UNAVAILABLE):
            with self.tx() as tx:
                self.clear_alarms(tx, AlarmKind.READER_UNAVAILABLE, None)

    def server_status(self, event: ServerStatus) -> None:
        """From the sync link: raise when unreachable for long, clear when it answers."""
        if event.reachable and not self.active_alarm(AlarmKind.SERVER_UNREACHABLE):
            return
        with self.tx() as tx:
            if event.reachable:
                self.clear_alarms(tx, AlarmKind.SERVER_UNREACHABLE, None)
            else:
                minutes = round(event.down_for_s / 60)
                self.raise_alarm(
                    tx,
                    AlarmKind.SERVER_UNREACHABLE,
                    None,
                    f"no answer for {minutes} min: {event.detail}",
                )

    def sync_refused(self, event: SyncRefused) -> None:
        """A journal row the server will never take: staff (and the server) must know."""
        with self.tx() as tx:
            self.raise_alarm(
                tx,
                AlarmKind.SYNC_REFUSED,
                None,
                f"journal row {event.seq} ({event.kind}) refused by the server, kept on the "
                f"kiosk: {event.reason}"[:300],
            )

    def check_disk(self) -> None:
        """Alarm when the store's disk is nearly full; cleared when space is back."""
        if not self.disk_path:
            return
        try:
            free_mb = shutil.disk_usage(self.disk_path).free // (1024 * 1024)
        except OSError as exc:
            log.warning("cannot read free disk space of %s: %s", self.disk_path, exc)
            return
        full = free_mb < self.policy.disk_min_free_mb
        if full == self.active_alarm(AlarmKind.DISK_FULL):
            return
        with self.tx() as tx:
            if full:
                self.raise_alarm(tx, AlarmKind.DISK_FULL, None, f"{free_mb} MB free")
            else:
                self.clear_alarms(tx, AlarmKind.DISK_FULL, None)

    def door_reminder(self) -> None:
        """The session's door is still open: remind the person."""
        if self.s.door_open:
            self.s.reminder = "door.close_please"

    def door_alarm(self) -> None:
        """The session's door is open far too long: alarm for staff."""
        if self.s.door_open and self.s.compartment is not None:
            with self.tx() as tx:
                self.raise_alarm(tx, AlarmKind.DOOR_LEFT_OPEN, self.s.compartment, "door left open")
