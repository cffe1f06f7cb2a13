"""What goes into the core (commands and events) and what comes out (snapshots).

Everything here is frozen. Commands come from the UI (or the scenario runner) and never
block the caller: they are put on the core's queue. Hardware events (``hardware.locker``
and ``hardware.eid`` events) are put on the same queue by small adapters in ``engine.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from hardware.locker.base import OpenResult


# --- commands from the screen ---------------------------------------------------------------
@dataclass(frozen=True)
class Tap:
    """A button pressed: ``action`` is one of ``Snapshot.actions``; ``value`` picks an item."""

    action: str
    value: str | None = None


@dataclass(frozen=True)
class EnterText:
    """Text typed on the on-screen keypad and confirmed: a code, a PIN, an asset tag."""

    text: str


@dataclass(frozen=True)
class Scan:
    """A barcode scanner read (it types the code and Enter, like a keyboard)."""

    text: str


# --- identification ---------------------------------------------------------------------------
@dataclass(frozen=True)
class IdentityPresented:
    """A card was read and turned into a borrower key (the national number is gone).

    ``accepted`` False: the card is refused (expired, wrong document type, not authentic);
    ``refusal`` says why in one line without personal data.
    """

    borrower_key: str
    first_name: str = field(default="", repr=False)
    accepted: bool = True
    refusal: str = ""


@dataclass(frozen=True)
class CardGone:
    """The card left the reader."""


@dataclass(frozen=True)
class ReaderTrouble:
    """The reader could not deliver a card; ``kind`` is a ``ReaderErrorKind`` value."""

    kind: str
    message: str


# --- internal -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpenFinished:
    """The opener thread finished an opening; ``result`` None means it raised ``error``."""

    open_id: str
    compartment: int
    result: OpenResult | None
    error: str = ""


@dataclass(frozen=True)
class Tick:
    """Check the timers now (sent after a simulated clock moved)."""


@dataclass(frozen=True)
class ServerStatus:
    """From the sync link: whether the loan server answers, and for how long it has not."""

    reachable: bool
    down_for_s: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class SyncRefused:
    """From the sync link: the server refused a journal row for good; it was set aside."""

    seq: int
    kind: str
    reason: str


@dataclass(frozen=True)
class SyncDone:
    """The sync link refreshed the cache (reservations, loans, staff) from the server."""


@dataclass(frozen=True)
class RemoteCommand:
    """A command from the loan server (heartbeat answer); ``kiosk.core.remote`` runs it.

    ``kind``: ``open`` (compartment, reason), ``out_of_service`` (compartment, reason),
    ``back_in_service`` (compartment) or ``refresh``. ``id`` is executed at most once ever.
    """

    id: int
    kind: str
    compartment: int | None = None
    reason: str = ""


# --- output -----------------------------------------------------------------------------------
class Screen(StrEnum):
    """Which screen the UI shows; each lists the actions it allows in ``Snapshot.actions``."""

    IDLE = "idle"
    OUT_OF_ORDER = "out_of_order"
    MESSAGE = "message"  # a message (``Snapshot.message``), then back after a while
    CODE_ENTRY = "code_entry"  # the resident types a pickup code
    CHOOSE_RESERVATION = "choose_reservation"
    OPENING = "opening"  # the lock is being pulsed
    TAKE_ITEM = "take_item"  # pickup: door open, take the device, close the door
    CONFIRM_TAKEN = "confirm_taken"  # pickup, cabinet without door sensor
    PICKUP_DONE = "pickup_done"  # receipt: due date
    RETURN_IDENTIFY = "return_identify"  # scan or type the asset tag, or insert the eID
    CHOOSE_LOAN = "choose_loan"  # the resident's open loans
    PLACE_ITEM = "place_item"  # return: door open, put the device in, close the door
    CONFIRM_PLACED = "confirm_placed"  # return, cabinet without door sensor
    RETURN_DONE = "return_done"  # receipt number
    CABINET_FULL = "cabinet_full"
    JAMMED = "jammed"  # the door did not open: what to do now
    STAFF_CODE = "staff_code"
    STAFF_PIN = "staff_pin"
    STAFF_MAP = "staff_map"  # every compartment and alarm; staff actions
    STAFF_SCAN = "staff_scan"  # load: scan the device to load
    STAFF_REASON = "staff_reason"  # open any compartment: why
    STAFF_DOOR = "staff_door"  # a door opened for staff: close it when done


@dataclass(frozen=True)
class Choice:
    """One item a person can pick: a reservation, a loan, a compartment."""

    id: str
    label: str  # e.g. the device type and asset tag, or the compartment number
    detail: str = ""  # e.g. a due date, "expired"


@dataclass(frozen=True)
class CompartmentView:
    """A compartment as the staff map shows it."""

    number: int
    status: str  # CompartmentStatus value, or "open" / "alarm" when that is what matters
    stored_status: str  # the CompartmentStatus value in the store
    door: str  # DoorState value
    item: bool | None
    asset_tag: str | None = None
    reservation_id: str | None = None
    size: str = "M"
    charging: bool = False
    note: str = ""


@dataclass(frozen=True)
class AlarmView:
    """An active alarm as staff see it."""

    id: str
    kind: str
    compartment: int | None
    detail: str
    raised_at: str  # ISO time
    acknowledged: bool


@dataclass(frozen=True)
class Snapshot:
    """Everything a screen needs, immutable. ``message`` is a message id the UI translates,
    ``params`` its values (already free of personal data except ``first_name``)."""

    seq: int
    screen: Screen
    actions: tuple[str, ...] = ()
    message: str = ""
    params: tuple[tuple[str, str], ...] = ()
    first_name: str = ""
    staff_name: str = ""
    choices: tuple[Choice, ...] = ()
    compartment: int | None = None  # the compartment this screen is about
    reminder: str = ""  # an extra line, e.g. "door.close_please"
    compartments: tuple[CompartmentView, ...] = ()
    alarms: tuple[AlarmView, ...] = ()
    busy: bool = False  # an opening is in progress

    def param(self, name: str, default: str = "") -> str:
        """The value of parameter ``name``."""
        return dict(self.params).get(name, default)
