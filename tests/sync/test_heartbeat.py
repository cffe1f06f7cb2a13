"""The heartbeat as the real server stores it: cabinet, alarms, backlog, version."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from kiosk.core.model import Alarm, AlarmKind, Compartment, CompartmentStatus
from kiosk.sync.client import SyncClient
from kiosk.sync.heartbeat import Heartbeat, kiosk_version
from loanserver.db import session_factory
from loanserver.models import Heartbeat as StoredBeat
from tests.sync.conftest import journal_rows


def test_the_server_stores_the_cabinet_even_with_odd_text_in_it(server, sync, store) -> None:
    with store.transaction() as tx:
        tx.put_compartment(
            Compartment(1, status=CompartmentStatus.UNKNOWN, note="opened\tremotely:\nhinge")
        )
        tx.put_compartment(
            Compartment(
                2, status=CompartmentStatus.LOADED, asset_tag="LAP-0042", reservation_id="9"
            )
        )
        tx.put_alarm(
            Alarm(
                "a1",
                AlarmKind.BOARD_OFFLINE,
                dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC),
                detail="line one\nline two " + "x" * 700,  # a driver's multi-line message
            )
        )
    journal_rows(store, 2)
    commands = Heartbeat(store, SyncClient(sync), None).beat()
    assert commands == []
    with session_factory(server.engine)() as session:
        beat = session.scalars(select(StoredBeat)).one()
    assert beat.backlog == 2
    assert beat.payload["versions"] == {"kiosk": kiosk_version()}
    first, second = beat.payload["compartments"]
    assert first == {
        "number": 1,
        "status": "unknown",
        "asset_tag": None,
        "note": "opened remotely: hinge",
    }
    assert second["status"] == "loaded" and second["asset_tag"] == "LAP-0042"
    (alarm,) = beat.payload["alarms"]
    assert alarm["kind"] == "board_offline" and alarm["detail"].startswith("line one line two")
    assert len(alarm["detail"]) == 500
