"""``locker test``: open every compartment in turn and find wiring mistakes.

For each compartment the lock is pulsed and the sensors watched; when a person is at
the cabinet they say which door really opened. The summary names the usual
installation faults: inverted feedback polarity, dead channels, swapped wiring and
door sensors that do not report.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field

from hardware.locker.base import DoorForced, DoorOpened, DoorState, Locker, LockerEvent
from hardware.locker.base import OpenOutcome as Outcome
from kiosk import bootstrap

CLOSE_WAIT_S = 15.0  # how long the sensor may take to report a door the installer closed


@dataclass
class Check:
    """What was seen and said about one compartment."""

    number: int
    outcome: Outcome
    read_open_before: bool
    sensor_opened: bool
    others_opened: list[int] = field(default_factory=list)
    person_saw: int | None = None  # the compartment the person saw open; 0 = none; None = not asked
    closed_reads_open: bool = False  # person closed it, sensor still reads open

    def findings(self) -> list[str]:
        """Problems with this compartment, one sentence each (empty: fine)."""
        n = self.number
        if self.outcome is Outcome.BOARD_OFFLINE:
            return [f"compartment {n}: its board did not answer; nothing was pulsed"]
        opened = self.person_saw if self.person_saw is not None else None
        found = []
        if opened is not None and opened not in (0, n):
            found.append(f"compartment {n}: its channel opens compartment {opened}: wiring swapped")
        elif self.others_opened and opened is None:
            other = ", ".join(map(str, self.others_opened))
            found.append(
                f"compartment {n}: the sensor of compartment {other} opened instead: "
                "wiring swapped?"
            )
        if opened == 0 or (
            opened is None
            and not self.sensor_opened
            and not self.others_opened
            and self.outcome is Outcome.JAMMED
        ):
            found.append(f"compartment {n}: no door opened: dead channel, lock or lock wiring")
        if opened == n and self.outcome is Outcome.JAMMED:
            found.append(
                f"compartment {n}: the door opened but its sensor never reported it: "
                "check the feedback wire"
            )
        if self.closed_reads_open:
            found.append(f"compartment {n}: the door is closed but its sensor reads open")
        return found


def test_command(args: argparse.Namespace) -> int:
    """Run the test over the cabinet given by --config/--port (or the demo)."""
    from kiosk.locker_cli import cabinet_settings

    settings = cabinet_settings(args)
    ask = sys.stdin.isatty() if args.ask is None else args.ask
    checks: list[Check] = []
    with ExitStack() as stack:
        locker = bootstrap.start_locker(settings.locker, stack)
        state = locker.refresh()
        numbers = args.only or [c.number for c in state.compartments]
        missing = sorted(set(numbers) - {c.number for c in state.compartments})
        if missing:
            print(f"error: no compartment {missing[0]} in this cabinet", file=sys.stderr)
            return 2
        polarity = ", ".join(sorted({b.feedback.value for b in settings.locker.buses})) or "-"
        print(f"testing {len(numbers)} compartments (feedback polarity: {polarity})")
        for number in numbers:
            check = _check_one(locker, number, ask)
            print(f"  {progress_line(check)}")
            checks.append(check)
    return _summary(checks, polarity)


def progress_line(check: Check) -> str:
    """One progress line per compartment."""
    seen = {None: "", 0: ", you saw no door open"}.get(
        check.person_saw, f", you saw compartment {check.person_saw} open"
    )
    return f"compartment {check.number}: {check.outcome.value}{seen}"


def _check_one(locker: Locker, number: int, ask: bool) -> Check:
    seen_open: list[int] = []

    def record(event: LockerEvent) -> None:
        if isinstance(event, DoorOpened | DoorForced):
            seen_open.append(event.compartment)

    unsubscribe = locker.subscribe(record)
    try:
        before = locker.states().compartment(number).door
        result = locker.open(number, f"locker-test-{uuid.uuid4()}")
        time.sleep(0.1)  # let the poller report doors that opened elsewhere
    finally:
        unsubscribe()
    check = Check(
        number=number,
        outcome=result.outcome,
        read_open_before=before is DoorState.OPEN,
        sensor_opened=result.outcome is Outcome.OPENED,
        others_opened=sorted({n for n in seen_open if n != number}),
    )
    if ask and result.outcome is not Outcome.BOARD_OFFLINE:
        check.person_saw = _ask_which(number)
        if check.person_saw is not None:
            door_to_close = check.person_saw or number
            _answer(f"    close the door of compartment {door_to_close}, then press Enter: ")
            check.closed_reads_open = not _wait_closed(locker, door_to_close)
    return check


def _ask_which(number: int) -> int | None:
    while True:
        answer = _answer(f"    which door opened? Enter = {number}, another number, 0 = none: ")
        if answer is None:
            return None
        if answer == "":
            return number
        if answer.isdigit():
            return int(answer)
        print("    please type a compartment number, 0, or just Enter")


def _answer(prompt: str) -> str | None:
    print(prompt, end="", flush=True)
    line = sys.stdin.readline()
    if not line:  # no one there (end of input): go on without asking
        print()
        return None
    return line.strip()


def _wait_closed(locker: Locker, number: int) -> bool:
    deadline = time.monotonic() + CLOSE_WAIT_S
    while time.monotonic() < deadline:
        door = locker.states().compartment(number).door
        if door is DoorState.CLOSED or door is DoorState.UNKNOWN:
            return True
        time.sleep(0.05)
    return False


def _summary(checks: list[Check], polarity: str) -> int:
    problems = [line for check in checks for line in check.findings()]
    reachable = [c for c in checks if c.outcome is not Outcome.BOARD_OFFLINE]
    inverted = [c for c in reachable if c.read_open_before or c.closed_reads_open]
    print()
    if reachable and len(inverted) * 2 > len(reachable):
        other = "open_when_set" if polarity == "closed_when_set" else "closed_when_set"
        problems.insert(
            0,
            (
                f"{len(inverted)} of {len(reachable)} closed doors read open: "
                "the feedback polarity is probably inverted; "
                f'set feedback = "{other}" (now {polarity})'
            ),
        )
    ok = sum(1 for c in checks if not c.findings())
    print(f"summary: {ok} of {len(checks)} compartments fine")
    for line in problems:
        print(f"  - {line}")
    return 0 if not problems else 1
