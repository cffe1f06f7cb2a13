"""The flow machine: routes every event to the flow the current screen belongs to.

Pickup, return and staff flows are mixins (``pickup.py``, ``returns.py``, ``staff.py``);
``watch.py`` handles alarms. This file decides which handler an event reaches, journals
the outcome of every opening, and builds the snapshots the UI renders.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from hardware.locker.base import (
    DoorClosed,
    DoorOpened,
    DoorState,
    LockerEvent,
    OpenOutcome,
)
from kiosk.core.events import (
    CardGone,
    EnterText,
    IdentityPresented,
    OpenFinished,
    ReaderTrouble,
    RemoteCommand,
    Scan,
    Screen,
    ServerStatus,
    Snapshot,
    SyncDone,
    SyncRefused,
    Tap,
    Tick,
)
from kiosk.core.flowbase import RESIDENT_OPEN
from kiosk.core.model import AlarmKind, CompartmentStatus, TxKind
from kiosk.core.pickup import PickupFlow
from kiosk.core.ports import StoreError
from kiosk.core.remote import PURPOSE as REMOTE_OPEN
from kiosk.core.remote import RemoteFlow
from kiosk.core.returns import ReturnFlow
from kiosk.core.staff import StaffFlow
from kiosk.core.views import ACTIONS, build_snapshot
from kiosk.core.watch import Watch

log = logging.getLogger("kiosk.core")

MESSAGE_SCREENS = (
    Screen.MESSAGE,
    Screen.PICKUP_DONE,
    Screen.RETURN_DONE,
    Screen.CABINET_FULL,
    Screen.JAMMED,
)
DOOR_SCREENS = (Screen.TAKE_ITEM, Screen.PLACE_ITEM, Screen.STAFF_DOOR)
OPENED = (OpenOutcome.OPENED, OpenOutcome.ALREADY_OPEN, OpenOutcome.UNCONFIRMED)


class FlowMachine(PickupFlow, ReturnFlow, StaffFlow, Watch, RemoteFlow):
    """Every flow together; ``handle(event)`` is called on the core's worker thread only."""

    def handle(self, event: object) -> None:
        """Process one event or command; a store failure puts the kiosk out of order."""
        # A StoreError has already put the kiosk out of order (FlowBase.tx): nothing to undo.
        with contextlib.suppress(StoreError):
            self._dispatch(event)

    def _dispatch(self, event: object) -> None:
        if isinstance(event, OpenFinished):
            self.open_finished(event)  # journalled even when out of order, if possible
            return
        if self.out_of_order:
            log.info("out of order, ignoring %s", type(event).__name__)
            return
        if isinstance(event, Tap | EnterText | Scan):
            self.s.last_input = self.clock.monotonic()
            self._touched()
        handler: Callable[[Any], None] | None = {
            Tap: self.on_tap,
            EnterText: self.on_text,
            Scan: self.on_scan,
            IdentityPresented: self.on_identity,
            CardGone: self.on_card_gone,
            ReaderTrouble: self.reader_trouble,
            ServerStatus: self.server_status,
            SyncDone: lambda _e: None,
            SyncRefused: self.sync_refused,
            RemoteCommand: self.remote_command,
            Tick: lambda _e: None,
        }.get(type(event))
        if handler is not None:
            handler(event)
        elif isinstance(event, LockerEvent):
            self.on_locker(event)
        else:
            log.warning("unknown event %r ignored", type(event).__name__)

    def _touched(self) -> None:
        """A person touched the screen: restart the inactivity timers."""
        if self.s.staff is not None:
            self._set_timer("staff", self.policy.staff_timeout_s)
        elif self.s.screen not in (Screen.IDLE, Screen.OUT_OF_ORDER):
            self._set_timer("idle", self.policy.idle_timeout_s)

    # -- commands ---------------------------------------------------------------------------------
    def on_tap(self, tap: Tap) -> None:
        """A button; only those the screen offers count."""
        screen, action = self.s.screen, tap.action
        if action not in ACTIONS.get(screen, ()):
            log.info("tap %r ignored on screen %s", action, screen.value)
            return
        if action in ("cancel", "ok"):
            self.message_done() if action == "ok" else self.end_session()
        elif screen is Screen.IDLE:
            if action == "pickup_code":
                self.go(Screen.CODE_ENTRY, "code.enter")
            elif action == "return":
                self.return_start()
            else:
                self.go(Screen.STAFF_CODE, "staff.code")
            self._set_timer("idle", self.policy.idle_timeout_s)
        elif screen is Screen.CHOOSE_RESERVATION:
            self.pickup_open(tap.value) if action == "open" else self.offer_own_loans()
        elif screen is Screen.CHOOSE_LOAN:
            self.return_loan_chosen(tap.value)
        elif screen is Screen.CONFIRM_TAKEN:
            if action == "taken":
                with self.tx() as tx:
                    self.record_pickup(tx)
            else:
                self.pickup_not_taken("not taken")
        elif screen is Screen.CONFIRM_PLACED:
            self.return_confirmed(action == "placed")
        elif screen is Screen.STAFF_DOOR:
            self.door_closed_in_flow()  # "done" without a door sensor
        else:
            self.staff_tap(action, tap.value)

    def on_text(self, entry: EnterText) -> None:
        """Text confirmed on the keypad of the current screen."""
        handlers: dict[Screen, Callable[[str], None]] = {
            Screen.CODE_ENTRY: self.pickup_code_entered,
            Screen.RETURN_IDENTIFY: self.return_tag,
            Screen.STAFF_CODE: self.staff_code_entered,
            Screen.STAFF_PIN: self.staff_pin_entered,
            Screen.STAFF_SCAN: self.staff_scanned,
        }
        handler = handlers.get(self.s.screen)
        if handler is None:
            log.info("text ignored on screen %s", self.s.screen.value)
            return
        handler(entry.text)

    def on_scan(self, scan: Scan) -> None:
        """A barcode: starts a return from idle, loads on the staff screens."""
        screen = self.s.screen
        if screen is Screen.IDLE:
            self.return_start()
            self.return_tag(scan.text)
        elif screen is Screen.RETURN_IDENTIFY:
            self.return_tag(scan.text)
        elif screen in (Screen.STAFF_MAP, Screen.STAFF_SCAN):
            self.staff_scanned(scan.text)
        else:
            log.info("scan ignored on screen %s", screen.value)

    def on_identity(self, event: IdentityPresented) -> None:
        """A card was read."""
        self.reader_fine()
        screen = self.s.screen
        if screen not in (
            Screen.IDLE,
            Screen.CODE_ENTRY,
            Screen.RETURN_IDENTIFY,
            Screen.STAFF_CODE,
        ):
            log.info("card ignored on screen %s", screen.value)
            return
        if not event.accepted:
            self.end_session("card.refused", reason=event.refusal)
            return
        member = self.staff_member_for_key(event.borrower_key)
        if member is not None and screen in (Screen.IDLE, Screen.STAFF_CODE):
            self.staff_card(member)
        elif screen is Screen.RETURN_IDENTIFY:
            self.return_identified(event.borrower_key, event.first_name)
        else:
            self.pickup_identified(event.borrower_key, event.first_name)
        self._set_timer("idle", self.policy.idle_timeout_s)

    def on_card_gone(self, _event: CardGone) -> None:
        """The card was pulled: before a door opened, that cancels an eID session."""
        before_open = (Screen.CHOOSE_RESERVATION, Screen.CHOOSE_LOAN, Screen.STAFF_PIN)
        if self.s.screen in before_open and self.s.job.get("via") == "eid":
            self.end_session("session.card_removed")

    def message_done(self) -> None:
        """A message or receipt was read (or its time is up): back where it leads."""
        if self.s.staff is not None and self.s.back_to is Screen.STAFF_MAP:
            self.staff_map()
        else:
            self.end_session()

    # -- openings ---------------------------------------------------------------------------------
    def open_finished(self, event: OpenFinished) -> None:
        """Journal what the door did after every ``open_requested``; then continue the flow."""
        result = event.result
        outcome = result.outcome if result is not None else OpenOutcome.BOARD_OFFLINE
        mine = event.open_id == self.s.open_id
        retry = False
        with self.tx() as tx:
            tx.journal(
                TxKind.OPEN_OUTCOME,
                {
                    "open_id": event.open_id,
                    "compartment": event.compartment,
                    "outcome": outcome.value if result is not None else "error",
                    "pulses": result.pulses if result is not None else 0,
                    "detail": (result.detail if result is not None else event.error)[:200],
                },
            )
            if outcome in OPENED:
                current = tx.compartment(event.compartment)
                if current is not None:
                    self.set_compartment(
                        tx, event.compartment, opened_count=current.opened_count + 1
                    )
            if result is None:
                self.raise_alarm(tx, AlarmKind.BOARD_OFFLINE, None, event.error[:200])
            if outcome not in OPENED:
                self.flow_done(tx)
            if not mine:
                log.warning("outcome of an opening nobody waits for: %s", event.open_id)
                return
            purpose = self.s.purpose
            if purpose == "pickup":
                self.pickup_opened(tx, outcome)
            elif purpose == "return":
                retry = not self.return_opened(tx, outcome)
            elif purpose == REMOTE_OPEN:
                self.remote_opened(tx, outcome)
            else:
                retry = not self.staff_opened(tx, outcome)
        if self.s.door_open:
            self._set_timer("reminder", self.policy.door_open_reminder_s)
            self._set_timer("door_alarm", self.policy.door_open_alarm_s)
            # The door may have been shut again before this outcome was handled: its
            # DoorClosed event then came first and was ignored (door not open yet).
            if self.s.compartment is not None and self.door(self.s.compartment) is DoorState.CLOSED:
                self.door_closed_in_flow()
        if retry and self.s.purpose == "return":
            self.return_place()
        elif retry:
            self.staff_scanned(str(self.s.job.get("asset_tag", "")))

    def on_locker(self, event: LockerEvent) -> None:
        """A door or board changed: finish the flow whose door closed; alarms."""
        number = getattr(event, "compartment", None)
        ours = number is not None and number == self.s.compartment and self.s.open_id
        door_screen = self.s.screen in DOOR_SCREENS
        if isinstance(event, DoorClosed) and ours and self.s.door_open and door_screen:
            self.door_closed_in_flow()
            return
        if isinstance(event, DoorOpened) and not ours:
            log.info("door %s opened, no flow waits for it", number)
        self.locker_alarm(event)

    def door_closed_in_flow(self) -> None:
        """The door of the current flow closed: record the pickup, return or staff action."""
        number = self.s.compartment
        assert number is not None
        for name in ("reminder", "door_alarm"):
            self._cancel_timer(name)
        with self.tx() as tx:
            self.clear_alarms(tx, AlarmKind.DOOR_LEFT_OPEN, number)  # the door alarm, if raised
            if self.s.purpose == "pickup":
                self.pickup_door_closed(tx)
            elif self.s.purpose == "return":
                self.return_door_closed(tx)
            elif self.s.purpose == REMOTE_OPEN:
                self.remote_door_closed(tx)
            else:
                self.staff_door_closed(tx)
            self.flow_done(tx)
        self.s.door_open = False
        self.s.reminder = ""

    # -- timers -----------------------------------------------------------------------------------
    def on_timer(self, name: str) -> None:
        """A timer ran out (called by the engine)."""
        if self.out_of_order and name != "disk":
            return
        with contextlib.suppress(StoreError):
            self._on_timer(name)

    def _on_timer(self, name: str) -> None:
        screen = self.s.screen
        if name == "message" and screen in MESSAGE_SCREENS:
            self.message_done()
        elif name == "idle" and not self.s.door_open and screen is not Screen.OPENING:
            if screen is Screen.CONFIRM_TAKEN:
                self.pickup_not_taken("no confirmation")
            elif screen is Screen.CONFIRM_PLACED:
                self.return_unconfirmed()
            elif screen not in (Screen.IDLE, Screen.OUT_OF_ORDER) and self.s.staff is None:
                self.end_session()
        elif name == "staff" and self.s.staff is not None:
            if not self.s.door_open and screen not in (Screen.OPENING, Screen.STAFF_DOOR):
                self.end_session("staff.timeout")
        elif name == "reminder":
            self.door_reminder()
        elif name == "door_alarm":
            self.door_alarm()
        elif name == "disk":
            self.check_disk()

    def return_unconfirmed(self) -> None:
        """Nobody said whether the device went in: staff have to look."""
        number = self.s.compartment
        assert number is not None
        with self.tx() as tx:
            tx.journal(TxKind.RETURN_ABANDONED, self._return_facts(reason="no confirmation"))
            self.set_compartment(
                tx, number, status=CompartmentStatus.UNKNOWN, note="return not confirmed"
            )
            self.flow_done(tx)
            self.raise_alarm(tx, AlarmKind.INTERRUPTED_OPEN, number, "return not confirmed")
        self.end_session()

    def connect_sync(self, request: Callable[[], None]) -> None:
        """Point staff "sync" and the remote "refresh" at the sync link (before ``start``)."""
        self._on_sync_request = request

    def snapshot(self, seq: int) -> Snapshot:
        """What the screen shows now."""
        return build_snapshot(self, seq)


__all__ = ["ACTIONS", "RESIDENT_OPEN", "FlowMachine"]
