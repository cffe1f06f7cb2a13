"""A day at the kiosk against the real loan server: after EVERY step the server agrees.

The back office (``loanserver admin``) adds the kiosk, two devices, Ann (by eID), a
code-only resident, Els as staff and two reservations. The kiosk (real core, SQLite
store, simulated cabinet and eID reader) syncs over real HTTP with its real
``SyncService``: it pulls the reservations and the staff list; Els loads both devices;
Ann picks up with her eID, the other resident with the code ``admin reserve`` printed;
both return in the evening (``config/demo-server-story.toml``).

After each step the kiosk syncs and the test asks the server: every journal row is
stored exactly once, reservations and devices have the status the kiosk's facts imply,
``admin loans`` lists exactly the devices out, ``admin report`` counts the pickups and
returns so far, and the kiosk's cache says what the server says. At the end ``admin
report`` counts 2 people reached, 2 loans, 2 returns.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from kiosk.demo_synced import (
    SyncedRunner,
    service_link,
    set_up_story,
)
from kiosk.scenario_format import Scenario, Step, load_scenario
from loanserver import reports, services
from loanserver.db import session_factory
from loanserver.models import Transaction
from tests.e2e.world import STORY, TAGS, Admin, server_view, transaction_counts
from tests.support.live_server import LiveServer


def story() -> Scenario:
    return load_scenario(STORY)


def expected_from_kiosk(runner: SyncedRunner) -> dict[str, tuple[str, str]]:
    """What the kiosk's journal implies for each device: (reservation, device) status."""
    done: dict[str, set[str]] = defaultdict(set)
    for row in runner.store.journal_entries():
        tag = row.payload.get("asset_tag")
        if tag:
            done[str(tag)].add(row.kind)
    expected = {}
    for tag in TAGS:
        kinds = done[tag]
        if "return" in kinds:
            expected[tag] = ("picked_up", "to_check")
        elif "pickup" in kinds:
            expected[tag] = ("picked_up", "on_loan")
        elif "load" in kinds:
            expected[tag] = ("loaded", "loaded")
        else:
            expected[tag] = ("requested", "reserved")
    return expected


class ServerAgrees:
    """The after-step check; counts the steps it saw."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.steps = 0

    def __call__(self, step: Step, runner: SyncedRunner) -> None:
        self.steps += 1
        where = f"after {step.where} ({step.action.describe() if step.action else 'check'})"
        journal = runner.store.journal_entries()
        unsent = [r.seq for r in journal if r.sent_at is None]
        assert not unsent, f"{where}: kiosk rows not acknowledged: {unsent}"
        with self.engine.connect() as conn:
            stored = list(conn.execute(select(Transaction.uuid, Transaction.seq)))
        assert sorted(stored) == sorted((r.uuid, r.seq) for r in journal), (
            f"{where}: the server's transactions differ from the kiosk's journal"
        )
        view = server_view(self.engine)
        expected = expected_from_kiosk(runner)
        got = {tag: (view[tag][1], view[tag][2]) for tag in TAGS}
        assert got == expected, f"{where}: server {got}, kiosk facts imply {expected}"
        out = sorted(t for t, (_r, device) in expected.items() if device == "on_loan")
        # The services behind `admin loans` and `admin report` (the CLI itself is checked at
        # the end: a CLI call per step would cost an engine and a migration check each).
        with session_factory(self.engine)() as session:
            listed = sorted(loan.asset_tag for loan in services.list_loans(session))
            report = reports.report(session, runner.clock.now().strftime("%Y-%m"))
        assert listed == out, f"{where}: admin loans lists {listed}, kiosk lent {out}"
        kinds = [r.kind for r in journal]
        figures = (report["people_reached"], report["loans_started"], report["returns"])
        # Each pickup here is a different person: people reached = loans started.
        implied = (kinds.count("pickup"), kinds.count("pickup"), kinds.count("return"))
        assert figures == implied, f"{where}: admin report says {figures}, kiosk {implied}"
        with runner.store.reading() as tx:
            cached = {r.id: str(r.status) for r in tx.reservations()}
        on_server = {rid: rstatus for rid, rstatus, _d in view.values()}
        # The kiosk caches open reservations; those it has must say what the server says.
        for rid, status in cached.items():
            assert on_server.get(rid) == status, (
                f"{where}: kiosk caches reservation {rid} as {status}, server {on_server.get(rid)}"
            )


def test_a_day_at_the_kiosk_the_server_agrees_at_every_step(
    loan_server: LiveServer,
    server_engine: Engine,
    admin: Admin,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every log line of kiosk and server, for the end
    began = time.monotonic()
    scenario = story()
    setup = set_up_story(admin.last, scenario)
    assert set(setup.codes) == set(TAGS) and all(c.isdigit() for c in setup.codes.values())
    assert server_view(server_engine) == {
        "LAP-0042": ("1", "requested", "reserved"),
        "TAB-0007": ("2", "requested", "reserved"),
    }
    check = ServerAgrees(server_engine)
    runner = SyncedRunner(
        scenario,
        tmp_path / "kiosk.db",
        make_link=service_link(loan_server.url, setup.token),
        codes=setup.codes,
        after_step=check,
    )
    try:
        outcome = runner.run()
        with runner.store.reading() as tx:
            staff = [s.name for s in tx.staff()]
    finally:
        runner.close()
    assert outcome.ok, outcome.failure
    assert check.steps == len(scenario.steps)
    assert staff == ["Els"]
    assert server_view(server_engine) == {
        "LAP-0042": ("1", "picked_up", "to_check"),
        "TAB-0007": ("2", "picked_up", "to_check"),
    }
    assert admin.loans() == []
    kinds = [r.kind for r in outcome.journal]
    assert kinds.count("load") == 2 and kinds.count("pickup") == 2 and kinds.count("return") == 2
    rows, distinct = transaction_counts(server_engine)
    assert rows == distinct == len(outcome.journal)
    month = runner.clock.now().strftime("%Y-%m")
    report = admin.report(month)
    assert (report["people_reached"], report["loans_started"], report["returns"]) == (2, 2, 2)
    assert report["faults_total"]["conflicts"] == 0
    assert time.monotonic() - began < 60
    # Privacy: no national number on disk (either side) or in any log, no token in a log.
    numbers = [p.national_number or "" for p in scenario.persons.values()]
    files = [f for f in tmp_path.iterdir() if f.name.startswith(("kiosk.db", "loanserver.db"))]
    assert files, "the kiosk's database file is missing"
    for file in files:
        data = file.read_bytes()
        assert not [n for n in numbers if n.encode() in data], f"a national number in {file}"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert '"path": "/api/v1/kiosk/transactions"' in logged, "the server's access log is missing"
    for secret in (*numbers, setup.token):
        assert secret not in logged, "a national number or the kiosk token was logged"
