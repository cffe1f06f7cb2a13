"""The cabinet and the data every crash run starts from, shared by the harness and the child.

One CU lock board (address 0, 8 channels) with door and item sensors; compartment ``n`` is
wired to channel ``n``. The seed gives every flow something to do:

- 1: LOADED for reservation R1 (LAP-1, borrower Ann, pickup code 123456): pickups;
- 2: RETURNED (LAP-7, to check): staff unload;
- 3, 5, 6: EMPTY: returns, loads and staff openings go here (3 is chosen first);
- 4: LOADED for R3 (LAP-4, borrower Bob): the pickup that proves the kiosk still serves
  after a restart (no flow touches it).

Nothing here imports the store or the core at module level: the child imports it first.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from hardware.locker.layout import (
    BusSpec,
    CabinetSpec,
    CompartmentSpec,
    OpenTiming,
    PollTiming,
)

if TYPE_CHECKING:
    from hardware.locker.emulator import BoardEmulator

FAMILY = "cu"
BOARD = 0
CHANNELS = 8
COMPARTMENTS = (1, 2, 3, 4, 5, 6)

KEY_ANN = "key-ann"  # borrower key of R1's borrower
KEY_BOB = "key-bob"  # R3 (the probe after a restart)
KEY_CAROL = "key-carol"  # has LAP-3 on loan (the return flow)
PICKUP_CODE = "123456"
STAFF_CODE = "999999"
STAFF_PIN = "1234"

# Short timings: a watched opening takes tens of ms, a jammed one 2 x 0.5 s.
OPEN_TIMING = OpenTiming(watch_s=0.5, retry=True, cooldown_s=0.0, check_interval_s=0.02)
POLL_TIMING = PollTiming(interval_s=0.02, offline_after=3, stable_reads=1)
# Alembic's migration context is process-global: the harness opens stores one at a time.
STORE_LOCK = threading.Lock()


def cabinet_spec(port: str) -> CabinetSpec:
    """The serial cabinet on ``port`` (the emulator's pty), as ``build_locker`` takes it."""
    compartments = tuple(
        CompartmentSpec(n, size="M", item_sensor=True, bus="main", board=BOARD, channel=n)
        for n in COMPARTMENTS
    )
    bus = BusSpec(
        "main", port, FAMILY, (BOARD,), channels=CHANNELS, reply_timeout_s=0.1, baud=19200
    )
    return CabinetSpec(
        driver="serial",
        compartments=compartments,
        buses=(bus,),
        open_timing=OPEN_TIMING,
        poll=POLL_TIMING,
    )


def new_emulator() -> BoardEmulator:
    """A fresh emulated board (no wire time: the crash runs want speed, not timing)."""
    from hardware.locker.emulator import BoardEmulator

    return BoardEmulator(FAMILY, (BOARD,), channels=CHANNELS, wire_time=False, latency_s=0.0)


def seed(db: Path, emulator: BoardEmulator) -> None:
    """Write the seed into a new database at ``db`` and put the seeded devices in the cabinet.

    Opening the store here counts as a boot without journal rows: the first kiosk start is
    boot 2. The checks take boot numbers from the child's start report, never assume them.
    """
    from kiosk.core.clock import SystemClock
    from kiosk.core.codes import hash_code
    from kiosk.core.model import (
        Compartment,
        CompartmentStatus,
        Loan,
        Reservation,
        ReservationStatus,
        StaffMember,
    )
    from kiosk.store import open_store

    now = dt.datetime.now(dt.UTC)
    with STORE_LOCK:
        store = open_store(db, SystemClock())
    try:
        with store.transaction() as tx:
            for n in COMPARTMENTS:
                tx.put_compartment(Compartment(number=n))
            loaded = CompartmentStatus.LOADED
            tx.put_compartment(
                Compartment(1, status=loaded, asset_tag="LAP-1", reservation_id="R1")
            )
            tx.put_compartment(
                Compartment(2, status=CompartmentStatus.RETURNED, asset_tag="LAP-7", note="check")
            )
            tx.put_compartment(
                Compartment(4, status=loaded, asset_tag="LAP-4", reservation_id="R3")
            )
            tx.replace_reservations(
                [
                    Reservation(
                        "R1",
                        "LAP-1",
                        ReservationStatus.LOADED,
                        KEY_ANN,
                        hash_code(PICKUP_CODE),
                        compartment=1,
                    ),
                    Reservation("R2", "LAP-2", ReservationStatus.REQUESTED, KEY_ANN),
                    Reservation(
                        "R3",
                        "LAP-4",
                        ReservationStatus.LOADED,
                        KEY_BOB,
                        hash_code("654321"),
                        compartment=4,
                    ),
                ]
            )
            tx.replace_loans(
                [
                    Loan(
                        "L3",
                        "LAP-3",
                        KEY_CAROL,
                        started_at=now - dt.timedelta(days=10),
                        due_at=now + dt.timedelta(days=4),
                    )
                ]
            )
            tx.replace_staff(
                [StaffMember("S1", "Els", hash_code(STAFF_PIN), code_hash=hash_code(STAFF_CODE))]
            )
    finally:
        store.close()
    for n in (1, 2, 4):
        emulator.set_item(BOARD, n, True)
