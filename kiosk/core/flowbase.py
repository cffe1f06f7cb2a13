"""What every flow shares: the session, screen changes, store transactions, alarms, openings.

Flows (``pickup.py``, ``returns.py``, ``staff.py``, ``watch.py``) are mixins over
``FlowBase``; ``flows.FlowMachine`` puts them together. Everything here runs on the core's
one worker thread, so nothing needs a lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from hardware.errors import HardwareError
from hardware.locker.base import DoorState, Locker
from kiosk.core.clock import Clock
from kiosk.core.events import Choice, Screen
from kiosk.core.model import (
    Alarm,
    AlarmKind,
    Compartment,
    CompartmentStatus,
    StaffMember,
    TxKind,
)
from kiosk.core.policy import CodeGuard, CorePolicy
from kiosk.core.ports import Store, StoreError, StoreTx

log = logging.getLogger("kiosk.core")

# Alarms that go away by themselves when their cause does; the others need a person.
SELF_CLEARING = frozenset(
    {
        AlarmKind.DOOR_LEFT_OPEN,
        AlarmKind.BOARD_OFFLINE,
        AlarmKind.READER_UNAVAILABLE,
        AlarmKind.SERVER_UNREACHABLE,
        AlarmKind.DISK_FULL,
        AlarmKind.DOOR_SENSOR_FAULT,
    }
)

FLOW_KEY = "open_flow"  # meta key: the opening whose flow is not finished
RESIDENT_OPEN = ("pickup", "return")  # purposes of openings a resident started
STAFF_OPEN = ("load", "unload", "staff_open")


@dataclass
class Session:
    """The person at the kiosk now; dropped entirely when they leave (first name included)."""

    screen: Screen = Screen.IDLE
    message: str = ""
    params: dict[str, str] = field(default_factory=dict)
    first_name: str = ""
    borrower_key: str | None = None
    staff: StaffMember | None = None
    pending_staff: StaffMember | None = None  # identified, PIN not yet given
    choices: list[Choice] = field(default_factory=list)
    compartment: int | None = None
    purpose: str | None = None  # pickup | return | load | unload | staff_open
    open_id: str | None = None
    job: dict[str, Any] = field(default_factory=dict)
    door_open: bool = False  # the compartment of this session stands open
    tried: list[int] = field(default_factory=list)  # compartments that jammed this session
    reminder: str = ""
    last_input: float = 0.0
    back_to: Screen = Screen.IDLE  # where a message screen returns to


class FlowBase:
    """Shared state and helpers of the flows (see module docstring)."""

    def __init__(
        self,
        *,
        store: Store | None,
        locker: Locker,
        clock: Clock,
        policy: CorePolicy,
        request_open: Callable[[str, int], None],
        set_timer: Callable[[str, float], None],
        cancel_timer: Callable[[str], None],
        on_sync_request: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.locker = locker
        self.clock = clock
        self.policy = policy
        self._request_open = request_open
        self._set_timer = set_timer
        self._cancel_timer = cancel_timer
        self._on_sync_request = on_sync_request
        self.s = Session()
        self.out_of_order = ""  # non-empty: the reason service is refused
        self.memory_alarms: list[Alarm] = []  # alarms the store could not hold (database)
        self.specs = {spec.number: spec for spec in locker.compartments()}

    # -- screens -------------------------------------------------------------------------------
    def go(self, screen: Screen, message: str = "", **params: object) -> None:
        """Show ``screen`` with ``message`` and its parameters."""
        self.s.screen = screen
        self.s.message = message
        self.s.params = {k: str(v) for k, v in params.items()}
        self.s.reminder = ""

    def say(self, message: str, *, back_to: Screen | None = None, **params: object) -> None:
        """A message screen that returns to ``back_to`` (staff map in a staff session)."""
        self.s.back_to = back_to or (Screen.STAFF_MAP if self.s.staff else Screen.IDLE)
        self.go(Screen.MESSAGE, message, **params)
        self._set_timer("message", self.policy.message_s)

    def hint(self, message: str, **params: object) -> None:
        """Stay on this screen with a message (a typo in a code, a bad scan ...)."""
        self.s.message = message
        self.s.params = {k: str(v) for k, v in params.items()}

    def end_session(self, message: str = "", **params: object) -> None:
        """Forget the person (first name, key, staff) and go to idle or show a last message."""
        if self.s.staff is not None:
            with self.tx() as tx:
                tx.journal(TxKind.STAFF_LOGOUT, {"staff_id": self.s.staff.id})
        self.s = Session(last_input=self.clock.monotonic())
        for name in ("message", "idle", "staff", "reminder", "door_alarm"):
            self._cancel_timer(name)
        if message:
            self.say(message, back_to=Screen.IDLE, **params)
        else:
            self.go(Screen.IDLE)

    # -- the store -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def tx(self) -> Iterator[StoreTx]:
        """One store transaction; a store failure puts the kiosk out of order (and re-raises)."""
        if self.store is None or self.out_of_order:
            raise StoreError(self.out_of_order or "no store")
        try:
            with self.store.transaction() as tx:
                yield tx
        except StoreError as exc:
            self.fail_store(str(exc))
            raise

    @contextlib.contextmanager
    def read(self) -> Iterator[StoreTx]:
        """A read-only view of the store (no write lock, no commit); failures as ``tx``."""
        if self.store is None or self.out_of_order:
            raise StoreError(self.out_of_order or "no store")
        try:
            with self.store.reading() as tx:
                yield tx
        except StoreError as exc:
            self.fail_store(str(exc))
            raise

    def active_alarm(self, kind: AlarmKind, compartment: int | None = None) -> bool:
        """True when an alarm of ``kind`` is active (for ``compartment``); read-only."""
        with self.read() as tx:
            return any(
                a.kind is kind and a.compartment == compartment for a in tx.alarms(active_only=True)
            )

    def fail_store(self, reason: str) -> None:
        """Refuse service: the database cannot be trusted or written."""
        log.error("store failure, refusing service: %s", reason)
        self.out_of_order = reason or "database problem"
        if not any(a.kind is AlarmKind.DATABASE for a in self.memory_alarms):
            self.memory_alarms.append(
                Alarm(
                    id=uuid.uuid4().hex,
                    kind=AlarmKind.DATABASE,
                    raised_at=self.clock.now(),
                    detail=self.out_of_order,
                )
            )
        self.s = Session()
        self.go(Screen.OUT_OF_ORDER, "kiosk.out_of_order")

    # -- alarms --------------------------------------------------------------------------------
    def raise_alarm(
        self, tx: StoreTx, kind: AlarmKind, compartment: int | None = None, detail: str = ""
    ) -> Alarm | None:
        """Raise an alarm unless one of this kind is already active for the same compartment."""
        for alarm in tx.alarms(active_only=True):
            if alarm.kind is kind and alarm.compartment == compartment:
                return None
        alarm = Alarm(
            id=uuid.uuid4().hex,
            kind=kind,
            raised_at=self.clock.now(),
            compartment=compartment,
            detail=detail,
        )
        tx.put_alarm(alarm)
        tx.journal(
            TxKind.ALARM_RAISED,
            {
                "alarm_id": alarm.id,
                "kind": kind.value,
                "compartment": compartment,
                "detail": detail,
            },
        )
        log.warning("alarm %s raised (compartment %s): %s", kind.value, compartment, detail)
        return alarm

    def clear_alarms(
        self, tx: StoreTx, kind: AlarmKind, compartment: int | None = None, *, by: str = "kiosk"
    ) -> int:
        """Clear the active alarms of ``kind`` (and ``compartment``); returns how many."""
        cleared = 0
        for alarm in tx.alarms(active_only=True):
            if alarm.kind is kind and alarm.compartment == compartment:
                tx.put_alarm(replace(alarm, cleared_at=self.clock.now()))
                tx.journal(
                    TxKind.ALARM_CLEARED,
                    {
                        "alarm_id": alarm.id,
                        "kind": kind.value,
                        "compartment": compartment,
                        "by": by,
                    },
                )
                cleared += 1
        return cleared

    def has_alarm(self, tx: StoreTx, compartment: int) -> bool:
        """True when an alarm is active for ``compartment``."""
        return any(a.compartment == compartment for a in tx.alarms(active_only=True))

    # -- the cabinet ---------------------------------------------------------------------------
    def door(self, number: int) -> DoorState:
        """The door of ``number`` as last seen (UNKNOWN when the locker cannot say)."""
        try:
            return self.locker.states().compartment(number).door
        except HardwareError:
            return DoorState.UNKNOWN

    def item(self, number: int) -> bool | None:
        """The item sensor of ``number``: None when there is none or it is not known."""
        try:
            return self.locker.states().compartment(number).item
        except HardwareError:
            return None

    def start_open(self, purpose: str, number: int, **job: Any) -> None:
        """Journal ``open_requested`` (committed) and only then ask the opener to pulse."""
        open_id = uuid.uuid4().hex
        payload = {"open_id": open_id, "compartment": number, "purpose": purpose, **job}
        if self.s.staff is not None:
            payload["staff_id"] = self.s.staff.id
        with self.tx() as tx:
            tx.journal(TxKind.OPEN_REQUESTED, payload)
            # Until the flow completes, a restart must treat this compartment as unknown.
            tx.set_meta(
                FLOW_KEY,
                json.dumps({"open_id": open_id, "compartment": number, "purpose": purpose}),
            )
        self.s.purpose, self.s.compartment, self.s.open_id = purpose, number, open_id
        # Keep what the flow knew before (a return's size and charging need, for a retry).
        self.s.job = {**self.s.job, **job}
        self.s.door_open = False
        self.go(Screen.OPENING, "opening", compartment=number)
        self._cancel_timer("idle")
        self._request_open(open_id, number)

    def set_compartment(self, tx: StoreTx, number: int, **changes: Any) -> Compartment:
        """Change compartment ``number`` in the store (created from the config if missing)."""
        current = tx.compartment(number)
        if current is None:
            spec = self.specs[number]
            current = Compartment(number=number, size=spec.size, charging=spec.charging)
        updated = replace(current, **changes)
        tx.put_compartment(updated)
        return updated

    def take_out_of_service(self, tx: StoreTx, number: int, note: str) -> None:
        """Mark a compartment out of service, remembering what it held."""
        current = tx.compartment(number)
        before = current.status if current else CompartmentStatus.UNKNOWN
        if before is CompartmentStatus.OUT_OF_SERVICE:
            return
        self.set_compartment(
            tx, number, status=CompartmentStatus.OUT_OF_SERVICE, status_before=before, note=note
        )
        tx.journal(TxKind.OUT_OF_SERVICE, {"compartment": number, "reason": note})

    def flow_done(self, tx: StoreTx) -> None:
        """The opened compartment's flow is finished (recorded or abandoned)."""
        tx.set_meta(FLOW_KEY, None)

    # -- provided by a flow mixin (declared here, the bottom of the MRO, so that the real
    # -- method of any mixin wins whatever the order of the bases) ------------------------
    def offer_own_loans(self) -> None:
        """The identified resident's open loans (returns.py)."""
        raise NotImplementedError

    def door_closed_in_flow(self) -> None:
        """Finish the flow whose door closed (flows.py)."""
        raise NotImplementedError

    def code_guard(self, tx: StoreTx, key: str = "code_guard") -> CodeGuard:
        """The wrong-code bookkeeping (pickup.py)."""
        raise NotImplementedError

    def code_locked_hint(self, guard: CodeGuard) -> bool:
        """Show the code lock when locked (pickup.py)."""
        raise NotImplementedError

    def wrong_code(self, tx: StoreTx, what: str, key: str = "code_guard") -> None:
        """Count a wrong code or PIN (pickup.py)."""
        raise NotImplementedError

    def request_sync(self) -> None:
        """Ask the sync link for a refresh (no-op without one)."""
        if self._on_sync_request is not None:
            self._on_sync_request()
