"""The sync link under faults: the real kiosk and the real loan server, a fault proxy between.

- The server is down while 1,000 transactions happen (a resident's pickup through the
  core among them): the kiosk keeps serving, the server-unreachable alarm appears once
  the outage lasts the configured time, and when the server is back the sync thread
  delivers everything: each uuid exactly once in the server's transactions table, in
  the kiosk's sequence order; the alarm clears.
- The whole day of ``config/demo-server-story.toml`` played while the proxy answers 500,
  is slow, answers garbage or JSON of the wrong shape, resets, cuts the connection after
  the server applied a batch or is down, a different fault at each step: every step
  still works for the residents, and once the proxy behaves the server holds each
  transaction once and agrees on every loan.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from kiosk.core.clock import Clock
from kiosk.core.engine import KioskCore
from kiosk.core.model import AlarmKind
from kiosk.core.ports import Store
from kiosk.demo_synced import (
    ServiceLink,
    SyncedRunner,
    SyncLink,
    service_link,
    set_up_story,
)
from kiosk.scenario_format import Action, load_scenario
from kiosk.sync.service import CycleResult
from loanserver.models import Alarm, Loan
from tests.e2e.world import STORY, Admin, server_rows, server_view, transaction_counts
from tests.support.faultproxy import FaultProxy
from tests.support.live_server import LiveServer

ALARM_AFTER_S = 1800.0  # the default unreachable_alarm_after_ms, in seconds
BULK = 1000
DRAIN_TIMEOUT_S = 30.0
FAULTS = ("error500", "slow", "garbage", "wrong_shape", "reset", "drop_after_apply", "down")
READ_TIMEOUT_S = 0.5  # the client gives up on a slow answer after this (faulty day only)
PASS_ATTEMPTS = 3
FAST_RETRY = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05}


@pytest.fixture
def proxy(loan_server: LiveServer) -> Iterator[FaultProxy]:
    with FaultProxy(loan_server.url, slow_s=READ_TIMEOUT_S * 2.5) as p:
        yield p


def assert_delivered_once_in_order(runner: SyncedRunner, engine: Engine) -> int:
    """Every kiosk row acknowledged and stored once; the server stored them in seq order."""
    journal = runner.store.journal_entries()
    assert [r.seq for r in journal if r.sent_at is None] == []
    stored = server_rows(engine)
    rows, distinct = transaction_counts(engine)
    assert rows == distinct == len(journal), (rows, distinct, len(journal))
    assert {u for u, _s in stored} == {r.uuid for r in journal}
    seqs = [s for _u, s in stored]
    assert seqs == sorted(seqs), "the server stored rows out of the kiosk's order"
    return rows


def alarms_shown(runner: SyncedRunner) -> list[str]:
    assert runner.core is not None
    return [a.kind for a in runner.core.snapshot().alarms]


def test_a_thousand_transactions_while_the_server_is_down_arrive_once_and_in_order(
    loan_server: LiveServer, server_engine: Engine, admin: Admin, proxy: FaultProxy, tmp_path: Path
) -> None:
    scenario = load_scenario(STORY)
    setup = set_up_story(admin.last, scenario)
    runner = SyncedRunner(
        scenario,
        tmp_path / "kiosk.db",
        make_link=service_link(proxy.url, setup.token, **FAST_RETRY),
    )
    try:
        runner.begin()
        link = runner.link
        assert isinstance(link, ServiceLink)
        service = link.service
        before = transaction_counts(server_engine)  # the start-up rows, sent at once
        proxy.set_mode("down")
        # The kiosk keeps serving: Els logs in and out, the sync fails meanwhile.
        for action in (
            Action("insert_card", "els"),
            Action("enter", "1234"),
            Action("tap", "logout"),
        ):
            runner.act(action)
            assert not service.run_once().ok
        began = time.monotonic()
        for n in range(BULK):  # one store transaction each, as the core writes them
            with runner.store.transaction() as tx:
                tx.journal("fault_test_bulk", {"n": n})  # kind: [a-z_] only
            if n % 250 == 0:
                assert "cannot connect" in service.run_once().error
        written_s = time.monotonic() - began
        runner.clock.advance(ALARM_AFTER_S - 60)
        assert not service.run_once().ok
        runner.core.settle(5)  # type: ignore[union-attr]
        assert AlarmKind.SERVER_UNREACHABLE not in alarms_shown(runner), "alarm too early"
        runner.clock.advance(120)
        assert not service.run_once().ok
        runner.core.settle(5)  # type: ignore[union-attr]
        assert alarms_shown(runner) == [AlarmKind.SERVER_UNREACHABLE]
        assert transaction_counts(server_engine) == before
        unsent = len(runner.store.journal_entries(unsent_only=True))
        assert unsent >= BULK + 3

        # Back: the sync thread drains the backlog by itself and the alarm clears.
        proxy.set_mode("pass")
        runner.clock.advance(60)  # past any backoff the failures left
        service.start()
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            # Simulated time passes too, so a retry after a chance failure comes (backoff).
            runner.clock.advance(1.0)
            runner.core.settle(5)  # type: ignore[union-attr]
            if not alarms_shown(runner) and not runner.store.journal_entries(unsent_only=True):
                break
            time.sleep(0.05)
        service.stop()
        assert alarms_shown(runner) == []
        stored = assert_delivered_once_in_order(runner, server_engine)
        assert stored >= BULK + 5  # + login, logout, alarm raised and cleared ...
    finally:
        runner.close()
    with server_engine.connect() as conn:
        cleared = conn.execute(
            select(Alarm.cleared_at).where(Alarm.kind == "server_unreachable")
        ).scalar_one()
    assert cleared is not None, "the server still shows the kiosk's unreachable alarm"
    assert written_s < 30


class FaultyLink:
    """Each sync after the first meets the next fault; the kiosk must cope."""

    def __init__(self, inner: ServiceLink, proxy: FaultProxy) -> None:
        self.inner = inner
        self.proxy = proxy
        self.faults = itertools.cycle(FAULTS)
        self.results: list[tuple[str, CycleResult]] = []

    def cycle(self) -> None:
        mode = next(self.faults) if self.results else "pass"
        self.proxy.set_mode(mode)
        for _attempt in range(PASS_ATTEMPTS if mode == "pass" else 1):
            result = self.inner.service.run_once()
            if result.ok:
                break
        self.results.append((mode, result))
        if mode == "pass":  # a loaded machine may time a call out; three in a row: broken
            assert result.ok, result.error

    def close(self) -> None:
        self.inner.close()


def test_a_day_with_a_fault_at_every_sync_loses_and_doubles_nothing(
    loan_server: LiveServer, server_engine: Engine, admin: Admin, proxy: FaultProxy, tmp_path: Path
) -> None:
    scenario = load_scenario(STORY)
    setup = set_up_story(admin.last, scenario)
    inner = service_link(proxy.url, setup.token, read_timeout_s=READ_TIMEOUT_S, **FAST_RETRY)
    links: list[FaultyLink] = []

    def make(store: Store, core: KioskCore, clock: Clock) -> SyncLink:
        link = inner(store, core, clock)
        assert isinstance(link, ServiceLink)
        links.append(FaultyLink(link, proxy))
        return links[-1]

    runner = SyncedRunner(scenario, tmp_path / "kiosk.db", make_link=make, codes=setup.codes)
    try:
        outcome = runner.run()  # every step's expectations: the residents were served
        assert outcome.ok, outcome.failure
        link = links[-1]
        failed = {mode for mode, result in link.results if not result.ok}
        assert failed == set(FAULTS), f"faults that did not fail a sync: {set(FAULTS) - failed}"
        applied_then_cut = proxy.count("/api/v1/kiosk/transactions", mode="drop_after_apply")
        assert applied_then_cut > 0
        proxy.set_mode("pass")
        for _ in range(5):  # bounded: one cycle should do
            if link.inner.service.run_once().ok and not runner.store.journal_entries(
                unsent_only=True
            ):
                break
        assert_delivered_once_in_order(runner, server_engine)
    finally:
        runner.close()
    assert server_view(server_engine) == {
        "LAP-0042": ("1", "picked_up", "to_check"),
        "TAB-0007": ("2", "picked_up", "to_check"),
    }
    with server_engine.connect() as conn:
        loans = conn.execute(select(func.count()).select_from(Loan)).scalar_one()
    assert loans == 2
    assert admin.loans() == []
    month = runner.clock.now().strftime("%Y-%m")
    report = admin.report(month)
    assert (report["people_reached"], report["loans_started"], report["returns"]) == (2, 2, 2)
