"""Pickup: a resident identified by eID or pickup code takes the device reserved for them.

Idle -> identify -> reservations waiting here -> "open" -> pulse -> door open (or jammed:
out of service, alarm, the resident told) -> "take it, close the door" -> door closed
(item sensor empty where there is one) -> loan journalled -> receipt (due date) -> idle.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

from hardware.locker.base import OpenOutcome
from kiosk.core.codes import check_code
from kiosk.core.events import Choice, Screen
from kiosk.core.flowbase import FlowBase
from kiosk.core.model import (
    AlarmKind,
    CompartmentStatus,
    Loan,
    Reservation,
    ReservationStatus,
    TxKind,
)
from kiosk.core.policy import CodeGuard, reservation_state
from kiosk.core.ports import StoreTx

CODE_GUARD_KEY = "code_guard"  # pickup codes
STAFF_GUARD_KEY = "staff_guard"  # staff codes and PINs: a resident's typos never lock staff out
OPEN_STATUSES = (ReservationStatus.REQUESTED, ReservationStatus.LOADED, ReservationStatus.EXPIRED)


class PickupFlow(FlowBase):
    """The pickup flow (see module docstring)."""

    # -- identification -----------------------------------------------------------------------
    def pickup_identified(self, borrower_key: str, first_name: str) -> None:
        """A resident's card was read: offer what waits for them here."""
        with self.read() as tx:
            reservations = tx.reservations(borrower_key=borrower_key)
            loans = tx.loans(borrower_key=borrower_key)
        self.s.borrower_key = borrower_key
        self.s.first_name = first_name
        self.s.job = {"via": "eid"}
        self.offer_reservations(reservations, has_loans=bool(loans))

    def offer_reservations(self, reservations: list[Reservation], *, has_loans: bool) -> None:
        """Show the ready reservations, or say why there is nothing to take."""
        now = self.clock.now()
        states = [(r, reservation_state(r, now)) for r in reservations]
        ready = [r for r, state in states if state == "ready"]
        if ready:
            self.s.choices = [
                Choice(r.id, f"{r.device_type} {r.asset_tag}", f"compartment {r.compartment}")
                for r in ready
            ]
            self.go(Screen.CHOOSE_RESERVATION, "pickup.choose", count=len(ready))
            return
        if has_loans:
            self.offer_own_loans()  # nothing to take: maybe they came to bring one back
            return
        if any(state == "not_ready" for _, state in states):
            self.end_session("pickup.not_ready")
        elif any(state == "expired" for _, state in states):
            self.end_session("pickup.expired")
        else:
            self.end_session("pickup.nothing_here")

    # -- pickup code ---------------------------------------------------------------------------
    def code_guard(self, tx: StoreTx, key: str = CODE_GUARD_KEY) -> CodeGuard:
        """The wrong-code bookkeeping (pickup codes, or staff with ``STAFF_GUARD_KEY``)."""
        return CodeGuard.from_text(tx.meta(key))

    def code_locked_hint(self, guard: CodeGuard) -> bool:
        """Show the lock on screen when the code entry is locked; True when it is."""
        now = self.clock.now().timestamp()
        if not guard.locked(now):
            return False
        minutes = max(1, round((guard.locked_until - now) / 60))
        self.hint("code.locked", minutes=minutes)
        return True

    def wrong_code(self, tx: StoreTx, what: str, key: str = CODE_GUARD_KEY) -> None:
        """Count a wrong code or PIN; lock and raise an alarm at the limit."""
        now = self.clock.now().timestamp()
        guard = self.code_guard(tx, key).failed(now, self.policy)
        tx.set_meta(key, guard.to_text())
        if guard.locked(now):
            seconds = round(guard.locked_until - now)
            self.raise_alarm(
                tx,
                AlarmKind.CODE_LOCKOUT,
                detail=f"{self.policy.code_attempts} wrong {what}s; entry locked for {seconds} s",
            )
            self.code_locked_hint(guard)
        else:
            self.hint(f"{what}.wrong", attempts_left=guard.attempts_left(now, self.policy))

    def pickup_code_entered(self, text: str) -> None:
        """The resident typed a pickup code."""
        code = "".join(text.split())
        with self.read() as tx:
            if self.code_locked_hint(self.code_guard(tx)):
                return
        if not (code.isascii() and code.isdigit()):
            self.hint("code.digits_only")
            return
        if not 6 <= len(code) <= 8:
            self.hint("code.length")
            return
        with self.tx() as tx:
            candidates = tx.reservations(statuses=OPEN_STATUSES)
            # Every candidate is hashed, matching or not: the time taken does not tell
            # how far down the list a code matched.
            matches = [r for r in candidates if check_code(code, r.code_hash)]
            if not matches:
                self.wrong_code(tx, "code")
                return
            tx.set_meta(CODE_GUARD_KEY, CodeGuard().to_text())
            match = matches[0]
            loans = tx.loans(borrower_key=match.borrower_key) if match.borrower_key else []
        self.s.borrower_key = match.borrower_key
        self.s.job = {"via": "code"}
        self.offer_reservations([match], has_loans=bool(loans))

    # -- open ----------------------------------------------------------------------------------
    def pickup_open(self, reservation_id: str | None) -> None:
        """The resident tapped "open" for one of the offered reservations."""
        ids = [c.id for c in self.s.choices]
        if reservation_id is None and len(ids) == 1:
            reservation_id = ids[0]
        if reservation_id not in ids:
            self.hint("pickup.choose_one")
            return
        with self.read() as tx:
            reservation = tx.reservation(reservation_id)
            ok = reservation is not None and reservation_state(reservation, self.clock.now()) == (
                "ready"
            )
            compartment = (
                tx.compartment(reservation.compartment)
                if reservation is not None and reservation.compartment is not None
                else None
            )
        if not ok or reservation is None or compartment is None:
            self.end_session("pickup.not_available")
            return
        if (
            compartment.status is not CompartmentStatus.LOADED
            or compartment.reservation_id != reservation.id
        ):
            # Out of service (jammed earlier) or changed by staff meanwhile.
            self.end_session("pickup.compartment_unavailable")
            return
        if self.item(compartment.number) is False:
            # The item sensor says the device is not there: opening would start a loan for
            # nothing. Staff must look; the resident is told to ask them.
            with self.tx() as tx:
                self.raise_alarm(
                    tx,
                    AlarmKind.ITEM_MISSING,
                    compartment.number,
                    f"before pickup of {reservation.id}",
                )
            self.end_session("pickup.compartment_unavailable")
            return
        self.start_open(
            "pickup",
            compartment.number,
            reservation_id=reservation.id,
            asset_tag=reservation.asset_tag,
            borrower_key=reservation.borrower_key,
            via=self.s.job.get("via", "eid"),
        )

    def pickup_opened(self, tx: StoreTx, outcome: OpenOutcome) -> None:
        """What the door did after the pulse of a pickup (inside the outcome's transaction)."""
        number = self.s.compartment
        assert number is not None
        asset = self.s.job.get("asset_tag", "")
        if outcome in (OpenOutcome.OPENED, OpenOutcome.ALREADY_OPEN):
            self.s.door_open = True
            self.go(Screen.TAKE_ITEM, "pickup.take", compartment=number, asset_tag=asset)
        elif outcome is OpenOutcome.UNCONFIRMED:
            self.go(Screen.CONFIRM_TAKEN, "pickup.confirm", compartment=number, asset_tag=asset)
            self._set_timer("idle", self.policy.idle_timeout_s)
        elif outcome is OpenOutcome.JAMMED:
            self.take_out_of_service(tx, number, "jammed")
            self.raise_alarm(tx, AlarmKind.JAMMED, number, "the door did not open (pickup)")
            self.go(Screen.JAMMED, "pickup.jammed", compartment=number)
            self._set_timer("message", self.policy.message_s * 2)
        else:
            self.say("locker.unavailable", back_to=Screen.IDLE)

    def pickup_door_closed(self, tx: StoreTx) -> None:
        """The door of a pickup closed: the device left, or it is still there."""
        number = self.s.compartment
        assert number is not None
        if self.item(number) is True:
            tx.journal(TxKind.PICKUP_ABANDONED, self._pickup_facts(reason="device still inside"))
            self.say("pickup.not_taken", back_to=Screen.IDLE)
            return
        self.record_pickup(tx)

    def pickup_not_taken(self, reason: str) -> None:
        """A cabinet without sensors: the resident says they did not take it (or left)."""
        number = self.s.compartment
        assert number is not None
        with self.tx() as tx:
            tx.journal(TxKind.PICKUP_ABANDONED, self._pickup_facts(reason=reason))
            self.flow_done(tx)
            if reason == "no confirmation":
                # Nobody said what happened to the device: staff have to look.
                self.set_compartment(
                    tx, number, status=CompartmentStatus.UNKNOWN, note="pickup not confirmed"
                )
                self.raise_alarm(tx, AlarmKind.INTERRUPTED_OPEN, number, "pickup not confirmed")
        self.end_session("pickup.not_taken")

    def record_pickup(self, tx: StoreTx) -> None:
        """The loan starts: reservation picked up, compartment empty, journal row."""
        reservation_id = self.s.job["reservation_id"]
        reservation = tx.reservation(reservation_id)
        now = self.clock.now()
        days = reservation.loan_days if reservation else self.policy.loan_days
        due = (now + dt.timedelta(days=days or self.policy.loan_days)).date()
        loan_id = uuid.uuid4().hex
        facts = self._pickup_facts()
        facts.update(loan_id=loan_id, started_at=now.isoformat(), due_date=due.isoformat())
        if reservation is not None:
            tx.put_reservation(
                replace(reservation, status=ReservationStatus.PICKED_UP, compartment=None)
            )
            tx.put_loan(
                Loan(
                    id=loan_id,
                    asset_tag=reservation.asset_tag,
                    borrower_key=reservation.borrower_key,
                    device_type=reservation.device_type,
                    size=reservation.size,
                    charging=reservation.charging,
                    started_at=now,
                    due_at=dt.datetime.combine(due, dt.time(23, 59), tzinfo=dt.UTC),
                    reservation_id=reservation.id,
                )
            )
        self.set_compartment(
            tx,
            facts["compartment"],
            status=CompartmentStatus.EMPTY,
            asset_tag=None,
            reservation_id=None,
            note="",
        )
        tx.journal(TxKind.PICKUP, facts)
        self.flow_done(tx)
        self.s.door_open = False
        self.go(
            Screen.PICKUP_DONE,
            "pickup.done",
            due_date=due.isoformat(),
            asset_tag=facts["asset_tag"],
        )
        self._set_timer("message", self.policy.message_s)

    def _pickup_facts(self, **extra: object) -> dict[str, object]:
        facts: dict[str, object] = {
            "open_id": self.s.open_id,
            "compartment": self.s.compartment,
            "reservation_id": self.s.job.get("reservation_id"),
            "asset_tag": self.s.job.get("asset_tag"),
            "borrower_key": self.s.job.get("borrower_key"),
            "via": self.s.job.get("via", "eid"),
        }
        facts.update(extra)
        return facts
