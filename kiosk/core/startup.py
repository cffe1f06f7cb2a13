"""Start-up: settle what a crash or power cut left behind, without ever pulsing a lock.

1. compartments from the configuration get a row (first start: empty; later: unknown);
2. every ``open_requested`` without an outcome becomes ``open_interrupted`` (never re-run);
   its compartment becomes "unknown" and an alarm asks staff to look;
3. a flow whose door had opened but that did not finish: the same;
4. the doors and item sensors are read and compared with the store: an open door, a
   compartment that should hold a device but is empty, or one that should be empty but is
   not, raises an alarm (and a ``reconciled`` journal row).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from hardware.errors import HardwareError
from hardware.locker.base import DoorState, LockerState
from kiosk.core.flowbase import FLOW_KEY, FlowBase
from kiosk.core.model import AlarmKind, Compartment, CompartmentStatus, TxKind
from kiosk.core.ports import StoreTx

log = logging.getLogger("kiosk.core")

HOLDS_DEVICE = (CompartmentStatus.LOADED, CompartmentStatus.RETURNED)


@dataclass
class StartReport:
    """What start-up found (for the log and the tests)."""

    boot: int = 0
    interrupted: list[int] = field(default_factory=list)  # compartments of cut openings
    alarms: list[str] = field(default_factory=list)
    refused: str = ""  # non-empty: out of order, and why


def reconcile(m: FlowBase, boot: int) -> StartReport:
    """Bring the store in line with the cabinet after a (re)start (see module docstring)."""
    report = StartReport(boot=boot)
    try:
        states: LockerState | None = m.locker.refresh()
    except HardwareError as exc:
        log.warning("cannot read the cabinet at start-up: %s", exc)
        states = None
    with m.tx() as tx:
        existing = {c.number: c for c in tx.compartments()}
        first_start = not existing
        for number, spec in sorted(m.specs.items()):
            current = existing.get(number)
            if current is None:
                tx.put_compartment(
                    Compartment(
                        number=number,
                        size=spec.size,
                        charging=spec.charging,
                        status=CompartmentStatus.EMPTY
                        if first_start
                        else CompartmentStatus.UNKNOWN,
                        note="" if first_start else "new compartment: check what is inside",
                    )
                )
            elif (current.size, current.charging) != (spec.size, spec.charging):
                m.set_compartment(tx, number, size=spec.size, charging=spec.charging)
        for entry in tx.unfinished_opens():
            number = int(entry.payload.get("compartment", 0))
            purpose = str(entry.payload.get("purpose", ""))
            tx.journal(
                TxKind.OPEN_INTERRUPTED,
                {
                    "open_id": entry.payload.get("open_id"),
                    "compartment": number,
                    "purpose": purpose,
                },
            )
            _unknown(m, tx, number, f"{purpose} opening interrupted by a restart", report)
        flow = _pending_flow(tx.meta(FLOW_KEY))
        if flow is not None:
            number = int(flow.get("compartment", 0))
            if number not in report.interrupted:
                _unknown(
                    m, tx, number, f"{flow.get('purpose')} not finished before a restart", report
                )
            m.flow_done(tx)
        if states is not None:
            for board in states.boards:
                if not board.online:
                    detail = f"board {board.bus}/{board.address} does not answer at start-up"
                    m.raise_alarm(tx, AlarmKind.BOARD_OFFLINE, None, detail)
                    report.alarms.append(AlarmKind.BOARD_OFFLINE.value)
            report.alarms += compare_with_cabinet(m, tx, states)
        tx.journal(
            TxKind.KIOSK_STARTED,
            {"boot": boot, "compartments": len(m.specs), "interrupted": report.interrupted},
        )
    return report


def _pending_flow(text: str | None) -> dict[str, object] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return {"compartment": 0, "purpose": "unknown"}
    return value if isinstance(value, dict) else None


def _unknown(m: FlowBase, tx: StoreTx, number: int, why: str, report: StartReport) -> None:
    if number not in m.specs:
        log.warning("interrupted opening of compartment %s, which is not configured", number)
        return
    current = tx.compartment(number)
    if current is None or current.status is not CompartmentStatus.OUT_OF_SERVICE:
        m.set_compartment(tx, number, status=CompartmentStatus.UNKNOWN, note=why)
    m.raise_alarm(tx, AlarmKind.INTERRUPTED_OPEN, number, why)
    report.interrupted.append(number)
    report.alarms.append(f"{AlarmKind.INTERRUPTED_OPEN.value}:{number}")


def compare_with_cabinet(
    m: FlowBase, tx: StoreTx, states: LockerState, skip: Collection[int] = ()
) -> list[str]:
    """Alarms for doors standing open and item sensors that contradict the store.

    Used at start-up and when a board answers again (its doors were not seen meanwhile).
    ``skip``: the compartment of a flow in progress, whose door and item are the flow's.
    Returns the alarms raised as ``kind:compartment``.
    """
    raised: list[str] = []
    for live in states.compartments:
        stored = tx.compartment(live.number)
        if stored is None or live.number in skip:
            continue
        if live.door is DoorState.OPEN:
            m.raise_alarm(tx, AlarmKind.DOOR_LEFT_OPEN, live.number, "found open")
            raised.append(f"{AlarmKind.DOOR_LEFT_OPEN.value}:{live.number}")
        if live.item is None:
            continue
        kind = None
        if stored.status in HOLDS_DEVICE and live.item is False:
            kind = AlarmKind.ITEM_MISSING
        elif stored.status is CompartmentStatus.EMPTY and live.item is True:
            kind = AlarmKind.UNEXPECTED_ITEM
        if kind is not None and m.raise_alarm(
            tx, kind, live.number, f"store says {stored.status.value}"
        ):
            tx.journal(
                TxKind.RECONCILED,
                {"compartment": live.number, "stored": stored.status.value, "item": live.item},
            )
            raised.append(f"{kind.value}:{live.number}")
    return raised
