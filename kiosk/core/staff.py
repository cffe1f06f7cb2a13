"""Staff: log in (staff eID or staff code, then a PIN), then restock and look after the cabinet.

The compartment map shows every state; staff load reserved devices (scan -> reservation ->
fitting compartment -> open -> closed -> loaded), take devices out, open any compartment
with a reason, set compartments out of / back in service, acknowledge alarms and ask for a
sync. Every action is journalled with the staff member's id.
"""

from __future__ import annotations

from dataclasses import replace

from hardware.locker.base import DoorState, OpenOutcome
from kiosk.core.codes import check_code
from kiosk.core.events import Screen
from kiosk.core.flowbase import SELF_CLEARING, FlowBase
from kiosk.core.model import (
    AlarmKind,
    CompartmentStatus,
    ReservationStatus,
    StaffMember,
    TxKind,
)
from kiosk.core.pickup import STAFF_GUARD_KEY
from kiosk.core.policy import CodeGuard, choose_compartment
from kiosk.core.ports import StoreTx
from kiosk.core.returns import normalise_tag

OPEN_REASONS = ("check", "clean", "repair", "remove", "other")


class StaffFlow(FlowBase):
    """The staff session (see module docstring)."""

    # -- log in ---------------------------------------------------------------------------------
    def staff_member_for_key(self, borrower_key: str) -> StaffMember | None:
        """The staff member whose eID this is, if any."""
        with self.read() as tx:
            return next((m for m in tx.staff() if m.borrower_key == borrower_key), None)

    def staff_card(self, member: StaffMember) -> None:
        """A staff eID was read: ask the PIN."""
        self.s.pending_staff = member
        self.s.job = {"via": "eid"}
        self.go(Screen.STAFF_PIN, "staff.pin")

    def staff_code_entered(self, text: str) -> None:
        """A staff code was typed."""
        code = "".join(text.split())
        with self.tx() as tx:
            if self.code_locked_hint(self.code_guard(tx, STAFF_GUARD_KEY)):
                return
            if not code:
                self.hint("staff.code")
                return
            member = next((m for m in tx.staff() if check_code(code, m.code_hash)), None)
            if member is None:
                self.wrong_code(tx, "code", STAFF_GUARD_KEY)
                return
        self.s.pending_staff = member
        self.s.job = {"via": "code"}
        self.go(Screen.STAFF_PIN, "staff.pin")

    def staff_pin_entered(self, text: str) -> None:
        """The PIN after a staff card or code."""
        member = self.s.pending_staff
        if member is None:
            self.end_session()
            return
        with self.tx() as tx:
            if self.code_locked_hint(self.code_guard(tx, STAFF_GUARD_KEY)):
                return
            if not check_code("".join(text.split()), member.pin_hash):
                self.wrong_code(tx, "pin", STAFF_GUARD_KEY)
                return
            tx.set_meta(STAFF_GUARD_KEY, CodeGuard().to_text())
            tx.journal(TxKind.STAFF_LOGIN, {"staff_id": member.id, "via": self.s.job.get("via")})
        self.s.staff, self.s.pending_staff = member, None
        self.s.first_name = ""
        self.staff_map("staff.welcome", name=member.name)

    def staff_map(self, message: str = "", **params: object) -> None:
        """Back to the compartment map."""
        self.s.compartment, self.s.purpose, self.s.open_id = None, None, None
        self.s.job, self.s.door_open, self.s.tried = {}, False, []
        self.go(Screen.STAFF_MAP, message, **params)
        self._set_timer("staff", self.policy.staff_timeout_s)

    # -- actions on the map -----------------------------------------------------------------------
    def staff_tap(self, action: str, value: str | None) -> None:
        """A staff button (on the map, the scan screen or the reason screen)."""
        if action == "logout":
            self.end_session()
        elif action == "load":
            self.go(Screen.STAFF_SCAN, "staff.scan")
        elif action == "back":
            self.staff_map()
        elif action == "sync":
            with self.tx() as tx:
                tx.journal(TxKind.SYNC_REQUESTED, {"staff_id": self._staff_id()})
            self.request_sync()
            self.staff_map("staff.sync_requested")
        elif action == "ack":
            self.staff_ack(value)
        elif action == "reason":
            self.staff_open_with_reason(value)
        elif action in ("unload", "open", "out_of_service", "back_in_service"):
            number = self._number(value)
            if number is None:
                self.hint("staff.no_such_compartment", value=value or "")
            elif action == "unload":
                self.staff_unload(number)
            elif action == "open":
                self.s.compartment = number
                self.go(Screen.STAFF_REASON, "staff.reason", compartment=number)
            else:
                self.staff_service(number, action == "out_of_service")

    def _number(self, value: str | None) -> int | None:
        try:
            number = int(value or "")
        except ValueError:
            return None
        return number if number in self.specs else None

    def _staff_id(self) -> str:
        return self.s.staff.id if self.s.staff else ""

    def staff_service(self, number: int, out: bool) -> None:
        """Set a compartment out of service, or back in service."""
        with self.tx() as tx:
            if out:
                self.take_out_of_service(tx, number, f"by staff {self._staff_id()}")
            else:
                self.put_back_in_service(tx, number, self._staff_id())
        self.staff_map("staff.saved", compartment=number)

    def put_back_in_service(self, tx: StoreTx, number: int, by: str) -> bool:
        """Back to what it was before (its jam alarm cleared); False when it was in service."""
        current = tx.compartment(number)
        if current is None or current.status is not CompartmentStatus.OUT_OF_SERVICE:
            return False
        back = current.status_before or CompartmentStatus.UNKNOWN
        self.set_compartment(tx, number, status=back, status_before=None, note="")
        self.clear_alarms(tx, AlarmKind.JAMMED, number, by=by)
        tx.journal(
            TxKind.BACK_IN_SERVICE, {"compartment": number, "staff_id": by, "status": back.value}
        )
        return True

    def staff_ack(self, alarm_id: str | None) -> None:
        """Acknowledge an alarm; one that does not clear by itself is cleared too."""
        with self.tx() as tx:
            alarm = next((a for a in tx.alarms() if a.id == alarm_id), None)
            if alarm is None:
                self.hint("staff.no_such_alarm")
                return
            now = self.clock.now()
            cleared = None if alarm.kind in SELF_CLEARING else now
            tx.put_alarm(
                replace(
                    alarm, acknowledged_by=self._staff_id(), acknowledged_at=now, cleared_at=cleared
                )
            )
            tx.journal(
                TxKind.ALARM_ACKNOWLEDGED,
                {"alarm_id": alarm.id, "kind": alarm.kind.value, "staff_id": self._staff_id()},
            )
            if cleared is not None:
                tx.journal(
                    TxKind.ALARM_CLEARED,
                    {"alarm_id": alarm.id, "kind": alarm.kind.value, "by": self._staff_id()},
                )
        self.staff_map("staff.acknowledged")

    # -- openings ---------------------------------------------------------------------------------
    def staff_scanned(self, text: str) -> None:
        """Load: the device scanned -> its reservation -> a fitting compartment -> open."""
        tag = normalise_tag(text)
        if tag is None:
            self.hint("staff.bad_tag")
            return
        with self.read() as tx:
            waiting = tx.reservations(asset_tag=tag, statuses=[ReservationStatus.REQUESTED])
            loaded = tx.reservations(asset_tag=tag, statuses=[ReservationStatus.LOADED])
            compartments = tx.compartments()
            busy = {a.compartment for a in tx.alarms() if a.compartment is not None}
        if loaded:
            self.hint("staff.already_loaded", asset_tag=tag)
            return
        if not waiting:
            self.hint("staff.no_reservation", asset_tag=tag)
            return
        reservation = waiting[0]
        busy |= {c.number for c in compartments if self.door(c.number) is DoorState.OPEN}
        choice = choose_compartment(
            compartments,
            size=reservation.size,
            needs_charging=reservation.charging,
            unusable=busy | set(self.s.tried),
        )
        if choice is None:
            self.hint("staff.full")
            return
        self.start_open(
            "load", choice.number, reservation_id=reservation.id, asset_tag=reservation.asset_tag
        )

    def staff_unload(self, number: int) -> None:
        """Take a device out (a returned one to check, an expired reservation ...)."""
        with self.read() as tx:
            current = tx.compartment(number)
        if current is not None and current.status is CompartmentStatus.EMPTY:
            self.hint("staff.nothing_inside", compartment=number)  # "open" is for looking
            return
        self.start_open(
            "unload",
            number,
            asset_tag=current.asset_tag if current else None,
            reservation_id=current.reservation_id if current else None,
        )

    def staff_open_with_reason(self, reason: str | None) -> None:
        """Open the chosen compartment for the reason given."""
        number = self.s.compartment
        if number is None or reason not in OPEN_REASONS:
            self.hint("staff.reason")
            return
        self.start_open("staff_open", number, reason=reason)

    def staff_opened(self, tx: StoreTx, outcome: OpenOutcome) -> bool:
        """What the door did for a staff opening; False: try another compartment (load)."""
        number = self.s.compartment
        assert number is not None
        if outcome in (OpenOutcome.OPENED, OpenOutcome.ALREADY_OPEN, OpenOutcome.UNCONFIRMED):
            self.s.door_open = outcome is not OpenOutcome.UNCONFIRMED
            message = f"staff.door.{self.s.purpose}"
            self.go(Screen.STAFF_DOOR, message, compartment=number)
            self._cancel_timer("staff")
            return True
        if outcome is OpenOutcome.JAMMED:
            self.take_out_of_service(tx, number, "jammed")
            self.raise_alarm(
                tx, AlarmKind.JAMMED, number, f"the door did not open ({self.s.purpose})"
            )
            if self.s.purpose == "load" and not self.s.tried:
                self.s.tried.append(number)
                return False
            self.staff_map("staff.jammed", compartment=number)
            return True
        self.staff_map("locker.unavailable")
        return True

    def staff_door_closed(self, tx: StoreTx) -> None:
        """A door opened for staff is closed (or staff tapped "done" without a door sensor)."""
        number = self.s.compartment
        assert number is not None
        purpose, job, item = self.s.purpose, self.s.job, self.item(number)
        facts = {"open_id": self.s.open_id, "compartment": number, "staff_id": self._staff_id()}
        if purpose == "load":
            if item is False:
                self.staff_map("staff.nothing_loaded", compartment=number)
                return
            reservation = tx.reservation(job["reservation_id"])
            if reservation is not None:
                tx.put_reservation(
                    replace(reservation, status=ReservationStatus.LOADED, compartment=number)
                )
            self.set_compartment(
                tx,
                number,
                status=CompartmentStatus.LOADED,
                asset_tag=job["asset_tag"],
                reservation_id=job["reservation_id"],
                note="",
            )
            tx.journal(TxKind.LOAD, {**facts, **job})
            self.staff_map("staff.loaded", compartment=number, asset_tag=job["asset_tag"])
        elif purpose == "unload":
            if item is True:
                self.staff_map("staff.still_inside", compartment=number)
                return
            reservation_id = job.get("reservation_id")
            reservation = tx.reservation(reservation_id) if reservation_id else None
            if reservation is not None and reservation.status is ReservationStatus.LOADED:
                tx.put_reservation(
                    replace(reservation, status=ReservationStatus.REQUESTED, compartment=None)
                )
            self.set_compartment(
                tx,
                number,
                status=CompartmentStatus.EMPTY,
                asset_tag=None,
                reservation_id=None,
                note="",
            )
            self.clear_alarms(tx, AlarmKind.UNKNOWN_DEVICE, number, by=self._staff_id())
            tx.journal(TxKind.UNLOAD, {**facts, **job})
            self.staff_map("staff.unloaded", compartment=number)
        else:
            tx.journal(TxKind.STAFF_OPEN, {**facts, "reason": job.get("reason"), "item": item})
            self.staff_map("staff.closed", compartment=number)
