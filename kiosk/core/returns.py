"""Return (no staff present): a device comes back into a free compartment that fits.

Idle -> "return" -> asset tag scanned or typed (or eID, then one of the resident's loans)
-> a free compartment that fits (size, charging; spreads wear) -> open -> "put it in,
close the door" -> door closed (item sensor present where there is one) -> return
journalled, device flagged "to check" -> receipt number -> idle. An unknown device is
still taken in and flagged for staff; a full cabinet says so and where else to go.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace

from hardware.locker.base import DoorState, OpenOutcome
from kiosk.core.events import Choice, Screen
from kiosk.core.flowbase import FlowBase
from kiosk.core.model import AlarmKind, CompartmentStatus, ReservationStatus, TxKind
from kiosk.core.policy import choose_compartment
from kiosk.core.ports import StoreTx

_TAG = re.compile(r"[A-Z0-9][A-Z0-9._/-]{1,39}")


def normalise_tag(text: str) -> str | None:
    """An asset tag as scanned or typed, cleaned up; None when it cannot be one.

    Scanners add Enter, tabs or control characters; people type lower case and spaces.
    """
    cleaned = "".join(ch for ch in text if ch.isprintable()).strip().upper().replace(" ", "")
    return cleaned if _TAG.fullmatch(cleaned) else None


class ReturnFlow(FlowBase):
    """The return flow (see module docstring)."""

    def return_start(self) -> None:
        """The resident tapped "return a device"."""
        self.go(Screen.RETURN_IDENTIFY, "return.identify")

    def offer_own_loans(self) -> None:
        """The identified resident's open loans, to choose which one comes back."""
        key = self.s.borrower_key
        with self.read() as tx:
            loans = tx.loans(borrower_key=key) if key else []
        if not loans:
            self.end_session("return.no_loans")
            return
        self.s.choices = [
            Choice(
                loan.id,
                f"{loan.device_type} {loan.asset_tag}",
                loan.due_at.date().isoformat() if loan.due_at else "",
            )
            for loan in loans
        ]
        self.go(Screen.CHOOSE_LOAN, "return.choose_loan", count=len(loans))

    def return_identified(self, borrower_key: str, first_name: str) -> None:
        """A card was inserted on the return screen."""
        self.s.borrower_key = borrower_key
        self.s.first_name = first_name
        self.offer_own_loans()

    def return_loan_chosen(self, loan_id: str | None) -> None:
        """The resident picked one of their loans."""
        ids = [c.id for c in self.s.choices]
        if loan_id is None and len(ids) == 1:
            loan_id = ids[0]
        if loan_id not in ids:
            self.hint("return.choose_one")
            return
        with self.read() as tx:
            loan = tx.loan(loan_id)
        if loan is None:
            self.end_session("return.no_loans")
            return
        self.return_tag(loan.asset_tag)

    def return_tag(self, text: str) -> None:
        """An asset tag was scanned or typed for a return."""
        tag = normalise_tag(text)
        if tag is None:
            self.hint("return.bad_tag")
            return
        with self.read() as tx:
            loans = tx.loans(asset_tag=tag)
            in_cabinet = [c for c in tx.compartments() if c.asset_tag == tag]
            waiting = tx.reservations(asset_tag=tag, statuses=[ReservationStatus.LOADED])
        if in_cabinet or waiting:
            self.hint("return.already_here", asset_tag=tag)
            return
        loan = loans[0] if loans else None
        self.s.job = {
            "asset_tag": tag,
            "loan_id": loan.id if loan else None,
            "borrower_key": loan.borrower_key if loan else self.s.borrower_key,
            "unknown": loan is None,
            "size": loan.size if loan else None,
            "charging": loan.charging if loan else False,
        }
        self.return_place()

    def return_place(self) -> None:
        """Open the best free compartment, or say the cabinet is full."""
        job = self.s.job
        with self.read() as tx:
            compartments = tx.compartments()
            busy = {a.compartment for a in tx.alarms() if a.compartment is not None}
        busy |= {c.number for c in compartments if self.door(c.number) is DoorState.OPEN}
        busy |= set(self.s.tried)
        choice = choose_compartment(
            compartments, size=job["size"], needs_charging=bool(job["charging"]), unusable=busy
        )
        if choice is None and self.s.tried:
            # A lock jammed and no other compartment is free: the cabinet is broken, not full.
            self.go(Screen.JAMMED, "return.jammed", compartment=self.s.tried[-1])
            self._set_timer("message", self.policy.message_s * 2)
            return
        if choice is None:
            self.end_session("return.full", advice=self.policy.site_advice)
            return
        self.start_open(
            "return",
            choice.number,
            asset_tag=job["asset_tag"],
            loan_id=job["loan_id"],
            borrower_key=job["borrower_key"],
            unknown=job["unknown"],
        )

    def return_opened(self, tx: StoreTx, outcome: OpenOutcome) -> bool:
        """What the door did for a return; False asks the caller to try another compartment."""
        number = self.s.compartment
        assert number is not None
        if outcome in (OpenOutcome.OPENED, OpenOutcome.ALREADY_OPEN):
            self.s.door_open = True
            self.go(Screen.PLACE_ITEM, "return.place", compartment=number)
        elif outcome is OpenOutcome.UNCONFIRMED:
            self.go(Screen.CONFIRM_PLACED, "return.confirm", compartment=number)
            self._set_timer("idle", self.policy.idle_timeout_s)
        elif outcome is OpenOutcome.JAMMED:
            self.take_out_of_service(tx, number, "jammed")
            self.raise_alarm(tx, AlarmKind.JAMMED, number, "the door did not open (return)")
            self.s.tried.append(number)
            if len(self.s.tried) < 2:
                return False  # one more compartment; the caller opens it after this commit
            self.go(Screen.JAMMED, "return.jammed", compartment=number)
            self._set_timer("message", self.policy.message_s * 2)
        else:
            self.say("locker.unavailable", back_to=Screen.IDLE)
        return True

    def return_door_closed(self, tx: StoreTx) -> None:
        """The door of a return closed: recorded when something is inside."""
        number = self.s.compartment
        assert number is not None
        if self.item(number) is False:
            tx.journal(TxKind.RETURN_ABANDONED, self._return_facts(reason="nothing inside"))
            self.s.door_open = False
            self.say("return.nothing_inside", back_to=Screen.IDLE)
            return
        self.record_return(tx)

    def return_confirmed(self, placed: bool) -> None:
        """A cabinet without door sensor: the resident says the device is in (or not)."""
        with self.tx() as tx:
            if placed:
                self.record_return(tx)
                return
            tx.journal(TxKind.RETURN_ABANDONED, self._return_facts(reason="not placed"))
            self.flow_done(tx)
        self.end_session("return.cancelled")

    def record_return(self, tx: StoreTx) -> None:
        """The device is in: loan closed, compartment holds it "to check", journal row."""
        job = self.s.job
        number = self.s.compartment
        assert number is not None
        now = self.clock.now()
        row_id = str(uuid.uuid4())
        receipt = row_id[:8].upper()
        loan = tx.loan(job["loan_id"]) if job.get("loan_id") else None
        if loan is not None:
            tx.put_loan(replace(loan, returned_at=now))
        self.set_compartment(
            tx,
            number,
            status=CompartmentStatus.RETURNED,
            asset_tag=job["asset_tag"],
            reservation_id=None,
            note="unknown device" if job["unknown"] else "to check",
        )
        tx.journal(TxKind.RETURN, self._return_facts(receipt=receipt), uuid=row_id)
        self.flow_done(tx)
        if job["unknown"]:
            self.raise_alarm(tx, AlarmKind.UNKNOWN_DEVICE, number, f"returned {job['asset_tag']}")
        self.s.door_open = False
        self.go(Screen.RETURN_DONE, "return.done", receipt=receipt, compartment=number)
        self._set_timer("message", self.policy.message_s)

    def _return_facts(self, **extra: object) -> dict[str, object]:
        job = self.s.job
        facts: dict[str, object] = {
            "open_id": self.s.open_id,
            "compartment": self.s.compartment,
            "asset_tag": job.get("asset_tag"),
            "loan_id": job.get("loan_id"),
            "borrower_key": job.get("borrower_key"),
            "unknown": bool(job.get("unknown")),
        }
        facts.update(extra)
        return facts
