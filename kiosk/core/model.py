"""Value types of the kiosk: compartments, reservations, loans, staff, alarms, journal rows.

All frozen: the core builds new values instead of changing old ones, so a snapshot handed
to the UI can never change under it. Times are timezone-aware UTC ``datetime`` values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class CompartmentStatus(StrEnum):
    """What the kiosk believes a compartment holds (the door is live, not stored)."""

    EMPTY = "empty"
    LOADED = "loaded"  # a device waiting for its reservation
    RETURNED = "returned"  # a returned device, to check before the next loan
    OUT_OF_SERVICE = "out_of_service"  # not used by any flow until staff put it back
    UNKNOWN = "unknown"  # contents not known: an interrupted opening, a forced door ...


@dataclass(frozen=True)
class Compartment:
    """One compartment as the store knows it."""

    number: int
    size: str = "M"  # S | M | L
    charging: bool = False
    status: CompartmentStatus = CompartmentStatus.EMPTY
    asset_tag: str | None = None  # the device inside, when known
    reservation_id: str | None = None  # LOADED: the reservation it waits for
    note: str = ""  # why it is out of service or unknown (for staff)
    opened_count: int = 0  # how often it was opened: returns spread wear by it
    status_before: CompartmentStatus | None = None  # OUT_OF_SERVICE: what to go back to


class ReservationStatus(StrEnum):
    """Where a reservation is; the server owns the truth, the kiosk caches it."""

    REQUESTED = "requested"  # not loaded into a compartment yet
    LOADED = "loaded"
    PICKED_UP = "picked_up"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Reservation:
    """A device reserved for a borrower at this kiosk (cached from the server)."""

    id: str
    asset_tag: str
    status: ReservationStatus = ReservationStatus.REQUESTED
    borrower_key: str | None = None  # None for code-only borrowers
    code_hash: str | None = None  # salted hash of the pickup code (``codes.py`` format)
    device_type: str = "laptop"
    size: str = "M"
    charging: bool = False
    compartment: int | None = None
    ready_by: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    loan_days: int = 14


@dataclass(frozen=True)
class Loan:
    """A device out on loan (cached from the server, or started here)."""

    id: str
    asset_tag: str
    borrower_key: str | None = None
    device_type: str = "laptop"
    size: str = "M"
    charging: bool = False
    started_at: dt.datetime | None = None
    due_at: dt.datetime | None = None
    returned_at: dt.datetime | None = None
    reservation_id: str | None = None


@dataclass(frozen=True)
class StaffMember:
    """Someone who may restock: by staff eID (borrower key) or staff code, then a PIN."""

    id: str
    name: str
    pin_hash: str
    role: str = "staff"
    borrower_key: str | None = None
    code_hash: str | None = None


class AlarmKind(StrEnum):
    """Why staff are needed."""

    DOOR_FORCED = "door_forced"
    DOOR_LEFT_OPEN = "door_left_open"
    JAMMED = "jammed"
    BOARD_OFFLINE = "board_offline"
    READER_UNAVAILABLE = "reader_unavailable"
    CODE_LOCKOUT = "code_lockout"
    SERVER_UNREACHABLE = "server_unreachable"
    DATABASE = "database"
    DISK_FULL = "disk_full"
    ITEM_MISSING = "item_missing"  # a compartment that should hold a device is empty
    UNEXPECTED_ITEM = "unexpected_item"  # a compartment that should be empty is not
    DOOR_SENSOR_FAULT = "door_sensor_fault"
    INTERRUPTED_OPEN = "interrupted_open"  # an opening was cut short by a restart
    UNKNOWN_DEVICE = "unknown_device"  # a returned asset tag the kiosk does not know
    SYNC_REFUSED = "sync_refused"  # the server refused a journal row: set aside, kept


@dataclass(frozen=True)
class Alarm:
    """A raised alarm; active until ``cleared_at`` is set."""

    id: str
    kind: AlarmKind
    raised_at: dt.datetime
    compartment: int | None = None
    detail: str = ""
    acknowledged_by: str | None = None  # staff id
    acknowledged_at: dt.datetime | None = None
    cleared_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        """True until the alarm is cleared."""
        return self.cleared_at is None


class TxKind(StrEnum):
    """Journal row kinds: every transaction the kiosk records (and sends to the server)."""

    OPEN_REQUESTED = "open_requested"  # written BEFORE the pulse
    OPEN_OUTCOME = "open_outcome"  # what the door did after the pulse
    OPEN_INTERRUPTED = "open_interrupted"  # an open_requested without outcome, at start-up
    PICKUP = "pickup"  # a loan started: the device left the cabinet
    PICKUP_ABANDONED = "pickup_abandoned"  # the door opened but the device stayed
    RETURN = "return"  # a device came back (flagged "to check")
    RETURN_ABANDONED = "return_abandoned"  # the door opened but nothing was put in
    LOAD = "load"  # staff loaded a reserved device
    UNLOAD = "unload"  # staff took a device out
    STAFF_OPEN = "staff_open"  # staff opened a compartment with a reason
    OUT_OF_SERVICE = "out_of_service"
    BACK_IN_SERVICE = "back_in_service"
    ALARM_RAISED = "alarm_raised"
    ALARM_ACKNOWLEDGED = "alarm_acknowledged"
    ALARM_CLEARED = "alarm_cleared"
    STAFF_LOGIN = "staff_login"
    STAFF_LOGOUT = "staff_logout"
    SYNC_REQUESTED = "sync_requested"
    REMOTE_COMMAND = "remote_command"  # a server command executed: done | refused | failed
    RECONCILED = "reconciled"  # start-up: the store was corrected to what the cabinet shows
    KIOSK_STARTED = "kiosk_started"


@dataclass(frozen=True)
class JournalEntry:
    """One journal row: a transaction, in the order it happened on this kiosk."""

    seq: int  # per-kiosk sequence number, 1, 2, 3 ... without gaps
    uuid: str  # idempotency key for the server
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    wall_time: dt.datetime | None = None
    mono_time: float = 0.0
    boot: int = 0  # which start of the kiosk wrote it (monotonic times compare within one)
    sent_at: dt.datetime | None = None
    attempts: int = 0
