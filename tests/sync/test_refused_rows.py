"""A row the server refuses for good (422) is set aside: the outbox never blocks on it."""

from __future__ import annotations

from kiosk.core.clock import ManualClock
from kiosk.core.model import AlarmKind, TxKind
from kiosk.store import SqlStore
from kiosk.sync import status
from kiosk.sync.client import SyncClient
from kiosk.sync.relay import relay
from tests.sync.conftest import Kiosk, Server, journal_rows, server_rows, service_for

BAD_KIND = "not a kind 9"  # the contract's kinds are [a-z_]{1,40}: the server answers 422


def test_a_refused_row_is_set_aside_and_the_rows_around_it_go_through(
    server: Server, sync, store: SqlStore, clock: ManualClock
) -> None:
    before = [e.uuid for e in store.journal_entries()]
    good1 = journal_rows(store, 3)
    bad = journal_rows(store, 1, kind=BAD_KIND)
    good2 = journal_rows(store, 3)
    result = relay(store, SyncClient(sync), clock, batch_size=500, on_refused=None)
    assert result.set_aside == 1
    # Everything the server can take is there, once, in order; the refused row is not.
    assert [u for u, _ in server_rows(server.engine)] == before + good1 + good2
    assert store.journal_entries(unsent_only=True) == []
    kept = {e.uuid: e for e in store.journal_entries()}
    assert bad[0] in kept  # never deleted
    state = status.read(store)
    assert [item["uuid"] for item in state.refused] == bad
    assert "422" in str(state.refused[0]["reason"])
    # A second round sends nothing again.
    assert relay(store, SyncClient(sync), clock, batch_size=500).sent == 0


def test_the_kiosk_raises_an_alarm_that_also_reaches_the_server(
    server: Server, sync, store: SqlStore, clock: ManualClock, kiosk: Kiosk
) -> None:
    service = service_for(sync, store, clock, kiosk.core)
    journal_rows(store, 2)
    journal_rows(store, 1, kind=BAD_KIND)
    assert service.run_once().ok  # the server answers: no "unreachable" state
    kiosk.core.settle(5)
    alarms = [a for a in kiosk.core.snapshot().alarms if a.kind == AlarmKind.SYNC_REFUSED.value]
    assert len(alarms) == 1 and "refused by the server" in alarms[0].detail
    assert service.run_once().ok  # the alarm's own journal row goes out
    kinds = [e.kind for e in store.journal_entries() if e.sent_at is not None]
    assert TxKind.ALARM_RAISED in kinds
    assert store.journal_entries(unsent_only=True) == []
