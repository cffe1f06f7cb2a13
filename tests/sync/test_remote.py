"""Remote commands end to end: back office -> heartbeat -> the real core -> journal -> server.

The core runs on the real SQLite store over a simulated cabinet; the commands come from
the real loan server's heartbeat answer and their results go back through the relay.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from sqlalchemy import select

from kiosk.core.events import RemoteCommand, Screen
from kiosk.core.model import CompartmentStatus, TxKind
from kiosk.core.remote import META_PREFIX
from kiosk.store import SqlStore
from loanserver.commands import send_command
from loanserver.db import session_factory
from loanserver.models import Command
from tests.sync.conftest import KIOSK, Kiosk, Server, service_for

WAIT_S = 5.0


def command(server: Server, kind: str, compartment: int | None = None, reason: str | None = None):
    with session_factory(server.engine)() as session:
        return send_command(session, KIOSK, kind, compartment, reason).id


def server_result(server: Server, command_id: int) -> tuple[str | None, str | None]:
    with session_factory(server.engine)() as session:
        row = session.execute(
            select(Command.result, Command.detail).where(Command.id == command_id)
        ).one()
        return row[0], row[1]


def rows(store: SqlStore, kind: str) -> list[dict[str, object]]:
    return [dict(e.payload) for e in store.journal_entries() if e.kind == kind]


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def compartment(store: SqlStore, number: int):
    with store.reading() as tx:
        return tx.compartment(number)


def test_an_open_delivered_three_times_opens_once_and_the_server_sees_it_done(
    server, sync, store, clock, kiosk: Kiosk
) -> None:
    service = service_for(sync, store, clock, kiosk.core)
    assert service.run_once().ok
    kiosk.locker.set_item(2, True)  # something lies in compartment 2
    cid = command(server, "open", 2, "resident on the phone")
    for _ in range(3):
        assert len(service.heartbeat.beat()) == 1
    assert kiosk.core.settle(WAIT_S)
    wait_for(lambda: kiosk.core.snapshot().screen is Screen.STAFF_DOOR, "the door screen")
    assert kiosk.core.snapshot().message == "remote.door_open"
    kiosk.locker.close_door(2)
    wait_for(lambda: rows(store, TxKind.REMOTE_COMMAND), "the remote_command row")
    assert kiosk.core.settle(WAIT_S)
    opens = [r for r in rows(store, TxKind.OPEN_REQUESTED) if r.get("command_id") == cid]
    assert len(opens) == 1 and kiosk.locker.pulses(2) == 1
    assert rows(store, TxKind.REMOTE_COMMAND) == [
        {"command_id": cid, "kind": "open", "compartment": 2, "result": "done", "detail": "closed"}
    ]
    after = compartment(store, 2)
    assert after.status is CompartmentStatus.UNKNOWN  # staff check what is inside
    assert after.note == "opened remotely: resident on the phone"
    assert kiosk.core.snapshot().screen is Screen.IDLE
    for _ in range(2):  # still listed until the result arrives: never executed again
        service.heartbeat.beat()
    assert kiosk.core.settle(WAIT_S)
    assert kiosk.locker.pulses(2) == 1 and len(rows(store, TxKind.REMOTE_COMMAND)) == 1
    assert service.run_once().ok  # the relay carries the result
    assert server_result(server, cid) == ("done", "closed")
    assert service.heartbeat.beat() == []
    journal = subprocess.run(  # what staff see
        [sys.executable, "-m", "kiosk", "journal", "--database", str(store.path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(x for x in journal.stdout.splitlines() if "remote_command" in x)
    assert f"command_id={cid}" in line and "result=done" in line and line.endswith("sent")


def test_an_open_waits_while_a_resident_is_in_a_flow(
    server, sync, store, clock, kiosk: Kiosk
) -> None:
    service = service_for(sync, store, clock, kiosk.core)
    kiosk.core.tap("return")
    assert kiosk.core.settle(WAIT_S)
    assert kiosk.core.snapshot().screen is Screen.RETURN_IDENTIFY
    cid = command(server, "open", 1, "courier")
    service.heartbeat.beat()
    assert kiosk.core.settle(WAIT_S)
    assert kiosk.core.snapshot().screen is Screen.RETURN_IDENTIFY  # the resident goes on
    assert kiosk.locker.pulses(1) == 0
    assert rows(store, TxKind.REMOTE_COMMAND) == []  # pending, not journalled
    assert service.run_once().ok
    assert server_result(server, cid) == (None, None)  # still pending on the server
    kiosk.core.tap("cancel")
    assert kiosk.core.settle(WAIT_S)
    service.heartbeat.beat()  # delivered again, now the kiosk is free
    assert kiosk.core.settle(WAIT_S)
    wait_for(lambda: kiosk.locker.pulses(1) == 1, "the opening")
    kiosk.locker.close_door(1)
    wait_for(lambda: rows(store, TxKind.REMOTE_COMMAND), "the result")
    assert rows(store, TxKind.REMOTE_COMMAND)[0]["detail"] == "closed, empty"
    assert compartment(store, 1).status is CompartmentStatus.EMPTY  # the item sensor says so


def test_service_commands_refusals_and_refresh_are_journalled_and_reported(
    server, sync, store, clock, kiosk: Kiosk
) -> None:
    service = service_for(sync, store, clock, kiosk.core)
    kiosk.core.machine.connect_sync(service.request_now)
    out = command(server, "out_of_service", 3, "broken hinge")
    missing = command(server, "open", 99, "no such compartment")
    refresh = command(server, "refresh")
    service.heartbeat.beat()
    assert kiosk.core.settle(WAIT_S)
    third = compartment(store, 3)
    assert third.status is CompartmentStatus.OUT_OF_SERVICE
    assert third.note == "remote: broken hinge"
    assert rows(store, TxKind.OUT_OF_SERVICE)[-1]["compartment"] == 3
    back = command(server, "back_in_service", 3)
    noop = command(server, "back_in_service", 1)  # it never was out of service
    service.heartbeat.beat()
    assert kiosk.core.settle(WAIT_S)
    assert compartment(store, 3).status is CompartmentStatus.EMPTY
    results = {r["command_id"]: r["result"] for r in rows(store, TxKind.REMOTE_COMMAND)}
    assert results == {out: "done", missing: "refused", refresh: "done", back: "done", noop: "done"}
    assert rows(store, TxKind.OPEN_REQUESTED) == []  # nothing opened for any of them
    assert service.run_once().ok
    assert server_result(server, missing) == ("refused", "no compartment 99")
    assert server_result(server, back) == ("done", None)
    assert server_result(server, noop) == ("done", "was not out of service")
    assert compartment(store, 1).status is CompartmentStatus.EMPTY


def test_an_opening_cut_by_a_restart_is_reported_failed_never_run_again(
    store, clock, kiosk: Kiosk
) -> None:
    with store.transaction() as tx:  # claimed before a crash, no result
        tx.set_meta(f"{META_PREFIX}41", json.dumps({"state": "opening", "detail": ""}))
    kiosk.core.post(RemoteCommand(41, "open", 2, "resident on the phone"))
    assert kiosk.core.settle(WAIT_S)
    assert kiosk.locker.pulses(2) == 0
    assert rows(store, TxKind.REMOTE_COMMAND) == [
        {
            "command_id": 41,
            "kind": "open",
            "compartment": 2,
            "result": "failed",
            "detail": "the opening was cut by a restart",
        }
    ]


def test_a_jammed_remote_open_fails_takes_the_compartment_out_and_alarms(
    store, clock, kiosk: Kiosk
) -> None:
    kiosk.locker.faults.jam(2)
    kiosk.core.post(RemoteCommand(42, "open", 2, "resident on the phone"))
    wait_for(lambda: rows(store, TxKind.REMOTE_COMMAND), "the result")
    assert kiosk.core.settle(WAIT_S)
    (result,) = rows(store, TxKind.REMOTE_COMMAND)
    assert result["result"] == "failed" and result["detail"] == "the door did not open"
    assert compartment(store, 2).status is CompartmentStatus.OUT_OF_SERVICE
    with store.reading() as tx:
        assert [(a.kind.value, a.compartment) for a in tx.alarms()] == [("jammed", 2)]
    assert kiosk.core.snapshot().screen is Screen.IDLE  # nobody is left on a door screen


def test_without_a_door_sensor_a_remote_open_is_done_at_once_and_staff_check(store, clock) -> None:
    from hardware.locker.layout import CompartmentSpec, OpenTiming, PollTiming
    from hardware.locker.simulated import SimulatedLocker
    from kiosk.core.engine import KioskCore

    locker = SimulatedLocker(
        [CompartmentSpec(1, door_sensor=False)],
        OpenTiming(watch_s=0.1, cooldown_s=0.0, check_interval_s=0.01),
        PollTiming(interval_s=0.02, stable_reads=1),
    )
    locker.start()
    core = KioskCore(store=store, locker=locker, clock=clock)
    try:
        core.start()
        assert core.settle(WAIT_S)
        core.post(RemoteCommand(43, "open", 1, "courier"))
        wait_for(lambda: rows(store, TxKind.REMOTE_COMMAND), "the result")
        assert core.settle(WAIT_S)
        assert rows(store, TxKind.REMOTE_COMMAND)[0]["detail"] == "opened (no door sensor)"
        after = compartment(store, 1)
        assert after.status is CompartmentStatus.UNKNOWN
        assert after.note == "opened remotely: courier"
        assert core.snapshot().screen is Screen.IDLE
        with store.reading() as tx:
            assert tx.meta("open_flow") is None  # the flow is finished: a restart finds nothing
    finally:
        core.stop()
        locker.close()
