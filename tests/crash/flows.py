"""The flow scripts the crash harness plays: the resident or the librarian, and their hands.

Each script drives the kiosk child (commands) and the emulated cabinet (doors, devices)
the way a person would, checking the screens on the way. A script knows nothing of
crashes: when the child dies, the next command raises ``ChildDied`` and the harness takes
over. ``probe`` is the pickup that proves a restarted kiosk still serves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hardware.locker.emulator import BoardEmulator
from tests.crash.cabinet import (
    BOARD,
    KEY_ANN,
    KEY_BOB,
    PICKUP_CODE,
    STAFF_CODE,
    STAFF_PIN,
)
from tests.crash.process import Child


@dataclass
class Hands:
    """The kiosk child and the cabinet, as the person in front of them sees them."""

    child: Child
    emulator: BoardEmulator

    def take_out(self, number: int) -> None:
        """Take the device out of an open compartment and push the door shut."""
        self.emulator.set_item(BOARD, number, False)
        self.emulator.close_door(BOARD, number)

    def put_in(self, number: int) -> None:
        """Put a device into an open compartment and push the door shut."""
        self.emulator.set_item(BOARD, number, True)
        self.emulator.close_door(BOARD, number)

    def staff_login(self) -> None:
        """Staff code, then PIN: the compartment map."""
        self.child.expect("staff_code", tap="staff")
        self.child.expect("staff_pin", text=STAFF_CODE)
        self.child.expect("staff_map", text=STAFF_PIN)


def _collect(hands: Hands) -> None:
    """A pickup after identification: open, take, close, receipt, back to idle."""
    reply = hands.child.expect("take_item", tap="open")
    hands.take_out(int(reply["compartment"]))
    hands.child.wait_screen("pickup_done")
    hands.child.expect("idle", tap="ok")


def pickup_eid(hands: Hands) -> None:
    """Ann inserts her eID and takes LAP-1 from compartment 1."""
    hands.child.expect("choose_reservation", present=KEY_ANN, first_name="Ann")
    _collect(hands)


def pickup_code(hands: Hands) -> None:
    """Ann types her pickup code instead."""
    hands.child.expect("code_entry", tap="pickup_code")
    hands.child.expect("choose_reservation", text=PICKUP_CODE)
    _collect(hands)


def pickup_jammed(hands: Hands) -> None:
    """Compartment 1's lock is jammed: two pulses, out of service, Ann is told."""
    hands.emulator.jam(BOARD, 1)
    hands.child.expect("choose_reservation", present=KEY_ANN, first_name="Ann")
    hands.child.expect("jammed", tap="open")
    hands.child.expect("idle", tap="ok")


def return_scan(hands: Hands) -> None:
    """Carol scans LAP-3 at the idle screen and puts it into the compartment that opens."""
    reply = hands.child.expect("place_item", scan="LAP-3")
    hands.put_in(int(reply["compartment"]))
    hands.child.wait_screen("return_done")
    hands.child.expect("idle", tap="ok")


def return_unknown(hands: Hands) -> None:
    """Someone brings LAP-99, which the kiosk does not know: taken in, flagged for staff."""
    reply = hands.child.expect("place_item", scan="LAP-99")
    hands.put_in(int(reply["compartment"]))
    hands.child.wait_screen("return_done")
    hands.child.expect("idle", tap="ok")


def return_jammed(hands: Hands) -> None:
    """Compartment 3 (the first choice) is jammed: the return goes to the next one."""
    hands.emulator.jam(BOARD, 3)
    reply = hands.child.expect("place_item", scan="LAP-3")
    if int(reply["compartment"]) == 3:
        raise AssertionError("the return went into the jammed compartment 3")
    hands.put_in(int(reply["compartment"]))
    hands.child.wait_screen("return_done")
    hands.child.expect("idle", tap="ok")


def pickup_abandoned(hands: Hands) -> None:
    """Ann opens compartment 1 but shuts the door with the laptop still inside."""
    hands.child.expect("choose_reservation", present=KEY_ANN, first_name="Ann")
    hands.child.expect("take_item", tap="open")
    hands.emulator.close_door(BOARD, 1)
    hands.child.wait_screen("message")
    hands.child.expect("idle", tap="ok")


def staff_load(hands: Hands) -> None:
    """Els logs in, loads LAP-2 for reservation R2 and logs out."""
    hands.staff_login()
    hands.child.expect("staff_scan", tap="load")
    reply = hands.child.expect("staff_door", scan="LAP-2")
    hands.put_in(int(reply["compartment"]))
    hands.child.wait_screen("staff_map")
    hands.child.expect("idle", tap="logout")


def staff_unload(hands: Hands) -> None:
    """Els takes the returned LAP-7 out of compartment 2."""
    hands.staff_login()
    hands.child.expect("staff_door", tap="unload", value="2")
    hands.take_out(2)
    hands.child.wait_screen("staff_map")
    hands.child.expect("idle", tap="logout")


def staff_open(hands: Hands) -> None:
    """Els opens the empty compartment 5 to check it, and closes it again."""
    hands.staff_login()
    hands.child.expect("staff_reason", tap="open", value="5")
    hands.child.expect("staff_door", tap="reason", value="check")
    hands.emulator.close_door(BOARD, 5)
    hands.child.wait_screen("staff_map")
    hands.child.expect("idle", tap="logout")


def startup(hands: Hands) -> None:
    """Nothing but the first start-up (its journal rows are the crash points)."""
    hands.child.command(sleep=0.05)


def probe(hands: Hands) -> None:
    """After a restart: Bob takes LAP-4 from compartment 4, which no flow touches."""
    hands.child.expect("choose_reservation", present=KEY_BOB, first_name="Bob")
    reply = hands.child.expect("take_item", tap="open")
    if int(reply["compartment"]) != 4:
        raise AssertionError(f"the probe opened compartment {reply['compartment']}, not 4")
    _collect_rest(hands, 4)


def _collect_rest(hands: Hands, number: int) -> None:
    hands.take_out(number)
    hands.child.wait_screen("pickup_done")
    hands.child.expect("idle", tap="ok")


FLOWS: dict[str, Callable[[Hands], None]] = {
    "startup": startup,
    "pickup_eid": pickup_eid,
    "pickup_code": pickup_code,
    "pickup_jammed": pickup_jammed,
    "pickup_abandoned": pickup_abandoned,
    "return_scan": return_scan,
    "return_unknown": return_unknown,
    "return_jammed": return_jammed,
    "staff_load": staff_load,
    "staff_unload": staff_unload,
    "staff_open": staff_open,
}
