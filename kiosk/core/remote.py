"""Remote commands from the loan server (``RemoteCommand``), each executed at most once ever.

The executed ids live in store meta (``remote_command:<id>``), written in the same
transaction as the ``remote_command`` journal row that carries the result (``done``,
``refused`` or ``failed``) to the server. An opening is claimed (meta ``opening``) before
it starts, so a restart mid-way never opens twice: the next delivery of that id finds the
claim without a result and journals ``failed`` (decision 0009: an opening is never re-run).

``open`` runs only while nobody uses the kiosk (idle screen, no door open); otherwise it
stays pending, unjournalled, and comes again with the next heartbeat. It goes through the
normal journalled opening (``start_open``); afterwards the compartment is ``unknown``
("opened remotely: <reason>") for staff to check, unless its item sensor reads empty.
``out_of_service`` / ``back_in_service`` reuse the staff paths; ``refresh`` asks for a sync.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from hardware.errors import HardwareError
from hardware.locker.base import DoorState, OpenOutcome
from kiosk.core.events import RemoteCommand, Screen
from kiosk.core.flowbase import FlowBase
from kiosk.core.model import AlarmKind, CompartmentStatus, TxKind
from kiosk.core.ports import StoreTx

log = logging.getLogger("kiosk.core")

META_PREFIX = "remote_command:"
OPENING = "opening"  # claimed: the opening started, no result yet
FINISHED = ("done", "refused", "failed")
PURPOSE = "remote_open"
KINDS = ("open", "out_of_service", "back_in_service", "refresh")
NEEDS_COMPARTMENT = ("open", "out_of_service", "back_in_service")


@dataclass(frozen=True)
class CommandRecord:
    """What the store knows of a command id: ``opening`` or a finished result."""

    state: str
    detail: str = ""

    @property
    def finished(self) -> bool:
        """True when the command has its result (it is never executed again)."""
        return self.state in FINISHED


def command_record(tx: StoreTx, command_id: int) -> CommandRecord | None:
    """The stored record of ``command_id``, or None when it was never started."""
    text = tx.meta(f"{META_PREFIX}{command_id}")
    if text is None:
        return None
    try:
        value = json.loads(text)
        return CommandRecord(str(value["state"]), str(value.get("detail", "")))
    except (ValueError, KeyError, TypeError):
        return CommandRecord("failed", "unreadable record")  # never run it again


class RemoteFlow(FlowBase):
    """Executes ``RemoteCommand`` events (see module docstring)."""

    def remote_command(self, command: RemoteCommand) -> None:
        """Run ``command`` unless it ran before; leave an ``open`` pending while busy."""
        with self.read() as tx:
            record = command_record(tx, command.id)
        if record is not None and record.finished:
            return  # delivered again before the server saw the result
        if record is not None:  # claimed for an opening
            if self.s.purpose == PURPOSE and self.s.job.get("command_id") == command.id:
                return  # that opening is in progress now
            with self.tx() as tx:
                self.finish_command(tx, command, "failed", "the opening was cut by a restart")
            return
        number = command.compartment
        if command.kind not in KINDS:
            self._finish_now(command, "refused", f"unknown command kind {command.kind!r}")
        elif command.kind in NEEDS_COMPARTMENT and number not in self.specs:
            self._finish_now(command, "refused", f"no compartment {number}")
        elif command.kind == "refresh":
            self._finish_now(command, "done", "sync requested")
            self.request_sync()
        elif number is None or self._in_use(number, command.kind == "open"):
            log.info("remote command %s (%s) pending: kiosk in use", command.id, command.kind)
        elif command.kind == "open":
            self._remote_open(command, number)
        else:
            with self.tx() as tx:
                detail = self._set_service(tx, command, number)
                self.finish_command(tx, command, "done", detail)

    def _set_service(self, tx: StoreTx, command: RemoteCommand, number: int) -> str:
        """Out of / back in service by the staff paths; the result's detail."""
        current = tx.compartment(number)
        out = current is not None and current.status is CompartmentStatus.OUT_OF_SERVICE
        if command.kind == "out_of_service":
            note = f"remote: {command.reason}" if command.reason else "remote"
            self.take_out_of_service(tx, number, note[:200])
            return "was out of service already" if out else ""
        self.put_back_in_service(tx, number, by=f"remote:{command.id}")
        return "" if out else "was not out of service"

    def finish_command(
        self, tx: StoreTx, command: RemoteCommand, result: str, detail: str = ""
    ) -> None:
        """Record the result of ``command``: meta and journal row in the same transaction."""
        record = {"state": result, "detail": detail[:200]}
        tx.set_meta(f"{META_PREFIX}{command.id}", json.dumps(record))
        tx.journal(
            TxKind.REMOTE_COMMAND,
            {
                "command_id": command.id,
                "kind": command.kind,
                "compartment": command.compartment,
                "result": result,
                "detail": detail[:200],
            },
        )
        log.info("remote command %s (%s): %s %s", command.id, command.kind, result, detail)

    def put_back_in_service(self, tx: StoreTx, number: int, by: str) -> bool:
        """Provided by the staff flow (``staff.py``)."""
        raise NotImplementedError

    # -- open ---------------------------------------------------------------------------------
    def _finish_now(self, command: RemoteCommand, result: str, detail: str) -> None:
        with self.tx() as tx:
            self.finish_command(tx, command, result, detail)

    def _in_use(self, number: int, opening: bool) -> bool:
        """True when a person uses the kiosk (an opening also needs every door shut)."""
        if self.s.open_id is not None and self.s.compartment == number:
            return True
        if not opening:
            return False
        if self.s.screen is not Screen.IDLE or self.s.open_id is not None:
            return True
        try:
            doors = [c.door for c in self.locker.states().compartments]
        except HardwareError:
            return True  # the cabinet cannot be seen: do not open into the unknown
        return any(door is DoorState.OPEN for door in doors)

    def _remote_open(self, command: RemoteCommand, number: int) -> None:
        with self.tx() as tx:
            claim = {"state": OPENING, "detail": ""}
            tx.set_meta(f"{META_PREFIX}{command.id}", json.dumps(claim))
        self.start_open(PURPOSE, number, command_id=command.id, reason=command.reason[:200])

    def _command(self) -> RemoteCommand:
        """The command of the remote opening in progress."""
        job = self.s.job
        return RemoteCommand(int(job["command_id"]), "open", self.s.compartment, job["reason"])

    def remote_opened(self, tx: StoreTx, outcome: OpenOutcome) -> None:
        """What the door did for a remote opening."""
        number = self.s.compartment
        assert number is not None
        command = self._command()
        if outcome in (OpenOutcome.OPENED, OpenOutcome.ALREADY_OPEN):
            self.s.door_open = True
            self.go(Screen.STAFF_DOOR, "remote.door_open", compartment=number)
            return
        if outcome is OpenOutcome.UNCONFIRMED:  # no door sensor: nobody can say when it shuts
            self._opened_remotely(tx, number, command.reason)
            self.finish_command(tx, command, "done", "opened (no door sensor)")
            self.flow_done(tx)
        elif outcome is OpenOutcome.JAMMED:
            self.take_out_of_service(tx, number, "jammed")
            self.raise_alarm(tx, AlarmKind.JAMMED, number, "the door did not open (remote)")
            self.finish_command(tx, command, "failed", "the door did not open")
        else:
            self.finish_command(tx, command, "failed", f"locker: {outcome.value}")
        self.end_session()

    def remote_door_closed(self, tx: StoreTx) -> None:
        """The remotely opened door is shut again: staff check the compartment."""
        number = self.s.compartment
        assert number is not None
        command = self._command()
        item = self._opened_remotely(tx, number, command.reason)
        self.finish_command(tx, command, "done", "closed, empty" if item is False else "closed")
        self.end_session()

    def _opened_remotely(self, tx: StoreTx, number: int, reason: str) -> bool | None:
        """Mark the compartment for staff (or empty, when its item sensor says so)."""
        item = self.item(number)
        current = tx.compartment(number)
        if item is False:
            changes: dict[str, object] = {
                "status": CompartmentStatus.EMPTY,
                "asset_tag": None,
                "reservation_id": None,
                "note": "",
            }
        else:
            changes = {"status": CompartmentStatus.UNKNOWN, "note": f"opened remotely: {reason}"}
        if current is not None and current.status is CompartmentStatus.OUT_OF_SERVICE:
            changes = {"status_before": changes["status"]}  # stays out of service
        self.set_compartment(tx, number, **changes)
        return item
