"""The outbox relay against the real loan server: sent once, in order, marked only when acked."""

from __future__ import annotations

import time

from sqlalchemy import update

from kiosk.core.clock import ManualClock, SystemClock
from kiosk.core.events import ServerStatus
from kiosk.core.model import AlarmKind, TxKind
from kiosk.store import SqlStore
from kiosk.store.schema import JournalRow
from kiosk.sync import wire
from kiosk.sync.client import SyncClient
from kiosk.sync.relay import relay
from kiosk.sync.service import Backoff
from tests.sync.conftest import (
    Kiosk,
    Server,
    journal_rows,
    restart,
    server_rows,
    service_for,
)


def unsent(store: SqlStore) -> list[str]:
    return [e.uuid for e in store.journal_entries(unsent_only=True)]


def test_rows_are_sent_in_order_in_batches_and_marked_sent(server, sync, store, clock) -> None:
    before = [e.uuid for e in store.journal_entries()]  # the store's own rows, if any
    uuids = journal_rows(store, 5)
    client = SyncClient(sync)
    result = relay(store, client, clock, batch_size=2)
    assert result.sent == len(before) + 5
    assert result.batches == -(-(len(before) + 5) // 2)
    assert unsent(store) == []
    stored = server_rows(server.engine)
    assert [u for u, _ in stored] == before + uuids  # the server saw them in seq order
    assert [s for _, s in stored] == sorted(s for _, s in stored)
    entries = {e.uuid: e for e in store.journal_entries()}
    assert all(entries[u].attempts == 1 and entries[u].sent_at == clock.now() for u in uuids)


def test_sending_the_same_rows_again_gives_duplicates_and_nothing_twice(
    server, sync, store, clock
) -> None:
    uuids = journal_rows(store, 3)
    client = SyncClient(sync)
    relay(store, client, clock, batch_size=500)
    # The answer to a lost acknowledgement: the kiosk sends the same rows once more.
    rows = [wire.row(e) for e in store.journal_entries() if e.uuid in uuids]
    answer = client.post("/transactions", {"transactions": rows})
    assert answer["accepted"] == [] and sorted(answer["duplicates"]) == sorted(uuids)
    with store.engine.begin() as conn:  # as if the kiosk had never seen the first answer
        conn.execute(update(JournalRow).values(sent_at=None))
    assert len(unsent(store)) == 3
    relay(store, client, clock, batch_size=500)
    assert unsent(store) == []
    assert [u for u, _ in server_rows(server.engine)] == uuids  # stored once each


def test_server_down_backs_off_marks_nothing_alarms_late_then_drains_in_order(
    server: Server, sync, store: SqlStore, clock: ManualClock, kiosk: Kiosk
) -> None:
    settings = sync.__class__(**{**sync.__dict__, "unreachable_alarm_after_s": 120.0})
    service = service_for(settings, store, clock, kiosk.core)
    assert service.run_once().ok
    server.stop()
    uuids = journal_rows(store, 4)
    first = service.run_once()
    assert not first.ok and "cannot connect: Connection refused" in first.error
    assert unsent(store) == uuids  # nothing marked
    assert service.retry_at > clock.monotonic()  # waiting before the next try
    assert service.retry_at - clock.monotonic() <= settings.backoff_initial_s
    clock.advance(60)
    assert not service.run_once().ok
    kiosk.core.settle(5)
    assert not any(a.kind is AlarmKind.SERVER_UNREACHABLE for a in active_alarms(store))
    clock.advance(61)  # 121 s down: past the configured 120 s
    assert not service.run_once().ok
    assert kiosk.core.settle(5)
    alarms = [a for a in active_alarms(store) if a.kind is AlarmKind.SERVER_UNREACHABLE]
    assert len(alarms) == 1 and "2 min" in alarms[0].detail
    again = restart(server)
    try:
        assert service.run_once().ok
        assert kiosk.core.settle(5)  # the core clears the alarm: one more row to send
        assert service.run_once().ok
        assert unsent(store) == []
        assert not any(a.kind is AlarmKind.SERVER_UNREACHABLE for a in active_alarms(store))
        stored = [u for u, _ in server_rows(server.engine)]
        assert [u for u in stored if u in uuids] == uuids  # each once, in order
        kinds = [e.kind for e in store.journal_entries()]
        assert TxKind.ALARM_RAISED in kinds and TxKind.ALARM_CLEARED in kinds
        assert service.backoff.failures == 0 and service.retry_at == 0.0
    finally:
        again.stop()


def active_alarms(store: SqlStore):
    with store.reading() as tx:
        return tx.alarms(active_only=True)


def test_backoff_is_full_jitter_doubling_to_the_maximum_and_resets() -> None:
    import random

    backoff = Backoff(1.0, 8.0, random.Random(3))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays[3:]) > 4  # it does reach past the earlier ceilings
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_the_thread_sends_new_rows_within_seconds_and_stops_promptly(
    server, sync, tmp_path
) -> None:
    from kiosk.store import open_store

    real = open_store(tmp_path / "threaded.db", SystemClock())
    service = service_for(sync, real, SystemClock())  # type: ignore[arg-type]
    service.start()
    try:
        uuids = journal_rows(real, 3)
        service.wake()
        deadline = time.monotonic() + 5
        while unsent(real) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert unsent(real) == []
        assert set(uuids) <= {u for u, _ in server_rows(server.engine)}
    finally:
        started = time.monotonic()
        service.stop(timeout=5)
        assert time.monotonic() - started < 3
        real.close()


def test_server_status_reports_reachable_once_at_first_success(server, sync, store, clock) -> None:
    posted: list[object] = []

    class Recorder:
        def post(self, event: object) -> None:
            posted.append(event)

    service = service_for(sync, store, clock, Recorder())  # type: ignore[arg-type]
    service.run_once()
    service.run_once()
    assert [e for e in posted if isinstance(e, ServerStatus)] == [ServerStatus(reachable=True)]


def test_an_outage_counts_from_the_last_success_across_a_restart(
    server: Server, sync, store: SqlStore, clock: ManualClock
) -> None:
    settings = sync.__class__(**{**sync.__dict__, "unreachable_alarm_after_s": 120.0})
    posted: list[object] = []

    class Recorder:
        def post(self, event: object) -> None:
            posted.append(event)

    assert service_for(settings, store, clock).run_once().ok  # the last success, recorded
    server.stop()
    clock.advance(100)  # the kiosk restarts meanwhile: a new service, nothing in memory
    restarted = service_for(settings, store, clock, Recorder())  # type: ignore[arg-type]
    assert not restarted.run_once().ok
    assert posted == []  # 100 s: not yet
    clock.advance(30)
    assert not restarted.run_once().ok
    (event,) = posted
    assert isinstance(event, ServerStatus) and not event.reachable
    assert event.down_for_s == 130.0


def test_stopping_during_a_long_backlog_ends_between_batches(server, sync, tmp_path) -> None:
    from kiosk.store import open_store

    real = open_store(tmp_path / "long.db", SystemClock())
    journal_rows(real, 600)
    small = sync.__class__(**{**sync.__dict__, "batch_size": 2})  # 300 requests to drain
    service = service_for(small, real, SystemClock())  # type: ignore[arg-type]
    try:
        service.start()
        deadline = time.monotonic() + 5
        while len(unsent(real)) == 600 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        service.stop(timeout=5)
        assert time.monotonic() - started < 1.0
        left = unsent(real)
        assert 0 < len(left) < 600  # stopped part-way, between two batches
        sent = [u for u, _ in server_rows(server.engine)]
        kept = [e.uuid for e in real.journal_entries()]
        assert sent == kept[: len(sent)] and left == kept[len(sent) :]  # a clean cut, in order
    finally:
        real.close()
