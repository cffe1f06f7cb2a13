"""Snapshots: what the UI renders, built from the session, the store and the live cabinet.

Also the buttons each screen offers (``ACTIONS``): the UI draws them, the flows ignore
a tap on anything else.
"""

from __future__ import annotations

from hardware.locker.base import DoorState
from kiosk.core.events import AlarmView, CompartmentView, Screen, Snapshot
from kiosk.core.flowbase import FlowBase
from kiosk.core.model import CompartmentStatus
from kiosk.core.ports import StoreError

# The buttons each screen offers; a tap on anything else is ignored (and logged).
ACTIONS: dict[Screen, tuple[str, ...]] = {
    Screen.IDLE: ("pickup_code", "return", "staff"),
    Screen.OUT_OF_ORDER: (),
    Screen.MESSAGE: ("ok",),
    Screen.CODE_ENTRY: ("cancel",),
    Screen.CHOOSE_RESERVATION: ("open", "return", "cancel"),
    Screen.OPENING: (),
    Screen.TAKE_ITEM: (),
    Screen.CONFIRM_TAKEN: ("taken", "not_taken"),
    Screen.PICKUP_DONE: ("ok",),
    Screen.RETURN_IDENTIFY: ("cancel",),
    Screen.CHOOSE_LOAN: ("return", "cancel"),
    Screen.PLACE_ITEM: (),
    Screen.CONFIRM_PLACED: ("placed", "not_placed"),
    Screen.RETURN_DONE: ("ok",),
    Screen.CABINET_FULL: ("ok",),
    Screen.JAMMED: ("ok",),
    Screen.STAFF_CODE: ("cancel",),
    Screen.STAFF_PIN: ("cancel",),
    Screen.STAFF_MAP: (
        "load",
        "unload",
        "open",
        "out_of_service",
        "back_in_service",
        "ack",
        "sync",
        "logout",
    ),
    Screen.STAFF_SCAN: ("back",),
    Screen.STAFF_REASON: ("reason", "back"),
    Screen.STAFF_DOOR: (),
}


def build_snapshot(m: FlowBase, seq: int) -> Snapshot:
    """What the screen shows now (called on the worker thread after every event)."""
    s = m.s
    compartments: tuple[CompartmentView, ...] = ()
    alarms: tuple[AlarmView, ...] = ()
    if m.store is not None and not m.out_of_order:
        try:
            compartments, alarms = _cabinet_view(m)
        except StoreError as exc:
            m.fail_store(str(exc))
    if m.memory_alarms:
        alarms += tuple(
            AlarmView(a.id, a.kind.value, a.compartment, a.detail, a.raised_at.isoformat(), False)
            for a in m.memory_alarms
        )
    actions = ACTIONS.get(s.screen, ())
    if s.screen is Screen.STAFF_DOOR and s.door_open is False and s.open_id:
        actions = ("done",)  # no door sensor: staff say when they are done
    return Snapshot(
        seq=seq,
        screen=s.screen,
        actions=actions,
        message=s.message,
        params=tuple(sorted(s.params.items())),
        first_name=s.first_name,
        staff_name=s.staff.name if s.staff else "",
        choices=tuple(s.choices)
        if s.screen in (Screen.CHOOSE_RESERVATION, Screen.CHOOSE_LOAN)
        else (),
        compartment=s.compartment,
        reminder=s.reminder,
        compartments=compartments,
        alarms=alarms,
        busy=s.screen is Screen.OPENING,
    )


def _cabinet_view(m: FlowBase) -> tuple[tuple[CompartmentView, ...], tuple[AlarmView, ...]]:
    assert m.store is not None
    with m.store.reading() as tx:
        stored = {c.number: c for c in tx.compartments()}
        active = tx.alarms(active_only=True)
    states = {c.number: c for c in m.locker.states().compartments}
    alarmed = {a.compartment for a in active if a.compartment is not None}
    views = []
    for number in sorted(m.specs):
        c = stored.get(number)
        live = states.get(number)
        door = live.door if live else DoorState.UNKNOWN
        stored_status = c.status.value if c else CompartmentStatus.UNKNOWN.value
        shown = (
            "alarm" if number in alarmed else "open" if door is DoorState.OPEN else stored_status
        )
        views.append(
            CompartmentView(
                number=number,
                status=shown,
                stored_status=stored_status,
                door=door.value,
                item=live.item if live else None,
                asset_tag=c.asset_tag if c else None,
                reservation_id=c.reservation_id if c else None,
                size=c.size if c else m.specs[number].size,
                charging=c.charging if c else m.specs[number].charging,
                note=c.note if c else "",
            )
        )
    alarm_views = tuple(
        AlarmView(
            a.id,
            a.kind.value,
            a.compartment,
            a.detail,
            a.raised_at.isoformat(),
            a.acknowledged_by is not None,
        )
        for a in active
    )
    return tuple(views), alarm_views
