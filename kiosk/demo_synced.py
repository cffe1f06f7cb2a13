"""A scenario played with the sync link on: the kiosk talks to a real loan server.

``SyncedRunner`` is the scenario runner (``kiosk.scenario.Runner``: the real core, SQLite
store, simulated cabinet and eID reader) with one difference: nothing of the server's
data is seeded. Reservations and the staff list come from the server through the kiosk's
sync link (``kiosk.sync``), which runs one cycle (send the journal, pull, heartbeat) when
the kiosk starts and after every step, before the step's expectations are checked. An
``after_step`` callback then sees the step (the demo prints, the end-to-end test asks
the server whether it agrees).

The simulated clock starts at 08:00 UTC of the day it runs (the server's reservations are
made "now"). An ``enter`` value ``{code:ASSET_TAG}`` is replaced by the pickup code the
server printed for that device (known only at run time).
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from kiosk.core.clock import Clock
from kiosk.core.engine import KioskCore
from kiosk.core.events import Snapshot
from kiosk.core.ports import Store
from kiosk.scenario import Outcome, Runner
from kiosk.scenario_checks import StepFailed
from kiosk.scenario_format import Action, Scenario, Step
from kiosk.settings_sync import SyncSettings
from kiosk.sync.client import SyncClient
from kiosk.sync.service import CycleResult, SyncService

CODE_PLACEHOLDER = re.compile(r"\{code:([^}]+)\}")
DAY_START = dt.time(8, 0)
SETTLE_S = 10.0


class SyncLink(Protocol):
    """What the runner needs of the kiosk's sync link."""

    def cycle(self) -> None:
        """One whole round now: journal out, reservations/loans/staff in, a heartbeat."""
        ...

    def close(self) -> None:
        """Release the link."""
        ...


LinkFactory = Callable[[Store, KioskCore, Clock], SyncLink]


class ServiceLink:
    """The kiosk's real ``SyncService`` as a ``SyncLink``: a failed cycle fails the step."""

    def __init__(self, service: SyncService) -> None:
        self.service = service
        self.cycles: list[CycleResult] = []

    def cycle(self) -> None:
        """``run_once``; StepFailed naming the reason when the server failed."""
        result = self.service.run_once()
        self.cycles.append(result)
        if not result.ok:
            raise StepFailed(f"the sync with the loan server failed: {result.error}")

    def close(self) -> None:
        """Stop the service (closes its HTTP session)."""
        self.service.stop()


def service_link(url: str, token: str, **settings: float) -> LinkFactory:
    """A factory of ``ServiceLink`` to the server at ``url`` with the kiosk's ``token``."""
    sync = SyncSettings(url=url, **settings)  # type: ignore[arg-type]

    def make(store: Store, core: KioskCore, clock: Clock) -> SyncLink:
        client = SyncClient(sync, token=token)
        return ServiceLink(SyncService(sync, store, core, clock, client=client))

    return make


AfterStep = Callable[[Step, "SyncedRunner"], None]


KIOSK_NAME = "digibank-demo"
STAFF_PIN = "1234"


@dataclass(frozen=True)
class StorySetup:
    """What the back office handed out: the kiosk's token and each device's pickup code."""

    token: str
    codes: dict[str, str]
    borrowers: dict[str, str]  # person name (or "code-only") -> borrower id


def set_up_story(admin: Callable[..., str], scenario: Scenario, *, workers: int = 1) -> StorySetup:
    """The story's server data through ``loanserver admin`` (``admin(*args)``: last line).

    Kiosk, two devices, Ann (by eID), a code-only resident, Els as staff (by eID, PIN
    1234) and two reservations: Ann's laptop and the code-only resident's tablet.
    ``workers`` > 1 runs the independent commands side by side (ids then vary by run).
    """
    ann = scenario.persons["ann"].national_number
    els = scenario.persons["els"].national_number
    assert ann is not None and els is not None, "the story's persons need national numbers"
    first = [
        ("add-kiosk", KIOSK_NAME),
        ("add-device", "LAP-0042", "--type", "laptop", "--charging"),
        ("add-device", "TAB-0007", "--type", "tablet"),
        ("add-borrower", "--national-number", ann, "--first-name", "Ann"),
        ("add-borrower", "--code-only"),
        ("add-staff", "--national-number", els, "--pin", STAFF_PIN, "--name", "Els"),
    ]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        token, _lap, _tab, ann_id, anon_id, _els = pool.map(lambda a: admin(*a), first)
        borrowers = {"ann": ann_id, "code-only": anon_id}
        tags = (("LAP-0042", "ann"), ("TAB-0007", "code-only"))
        reserve = [
            ("reserve", "--borrower", borrowers[who], "--device", tag, "--kiosk", KIOSK_NAME)
            for tag, who in tags
        ]
        printed = pool.map(lambda a: admin(*a), reserve)
        codes = dict(zip((t for t, _w in tags), printed, strict=True))
    return StorySetup(token, codes, borrowers)


def today_at_eight(now: dt.datetime | None = None) -> dt.datetime:
    """08:00 UTC of today (or of ``now``'s day): the simulated clock's start."""
    now = now or dt.datetime.now(dt.UTC)
    return dt.datetime.combine(now.astimezone(dt.UTC).date(), DAY_START, tzinfo=dt.UTC)


class SyncedRunner(Runner):
    """The scenario runner with the sync link (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        db_path: Path,
        *,
        make_link: LinkFactory,
        codes: Mapping[str, str] | None = None,
        after_step: AfterStep | None = None,
        start: dt.datetime | None = None,
    ) -> None:
        scenario = replace(scenario, start=start or today_at_eight(), reservations=[], staff=[])
        super().__init__(scenario, db_path)
        self.make_link = make_link
        self.codes = dict(codes or {})
        self.after_step = after_step
        self.link: SyncLink | None = None

    def begin(self) -> None:
        """Set up the kiosk and sync once, as ``run()`` does before the first step."""
        self._seed()
        self.locker.start()
        self.reader.start()
        self._start_core()

    def act(self, action: Action) -> Snapshot:
        """Do one action (as a step would) and wait until the kiosk has handled it."""
        self._do(action)
        self._settle()
        assert self.core is not None
        return self.core.snapshot()

    def _start_core(self) -> None:
        super()._start_core()
        assert self.core is not None
        if self.link is not None:
            self.link.close()
        self.link = self.make_link(self.store, self.core, self.clock)
        self.sync()
        self._mark = self._last_seq()

    def sync(self) -> None:
        """One sync cycle now, then wait until the core has handled what it brought."""
        assert self.core is not None and self.link is not None
        self.link.cycle()
        if not self.core.settle(SETTLE_S):
            raise StepFailed(f"the kiosk did not settle within {SETTLE_S:g} s after a sync")

    def _do(self, action: Action) -> None:
        if action.kind == "enter" and isinstance(action.value, str):
            action = replace(action, value=CODE_PLACEHOLDER.sub(self._code, action.value))
        super()._do(action)

    def _code(self, match: re.Match[str]) -> str:
        tag = match.group(1)
        if tag not in self.codes:
            raise StepFailed(f"no pickup code known for {tag!r} (the server printed none)")
        return self.codes[tag]

    def _expect(self, step: Step) -> None:
        self.sync()
        super()._expect(step)
        if self.after_step is not None:
            self.after_step(step, self)

    def close(self) -> None:
        """Close the link, then everything the scenario runner started."""
        if self.link is not None:
            self.link.close()
            self.link = None
        super().close()


def run_synced(
    scenario: Scenario,
    make_link: LinkFactory,
    *,
    codes: Mapping[str, str] | None = None,
    after_step: AfterStep | None = None,
    database: Path | None = None,
    start: dt.datetime | None = None,
) -> Outcome:
    """Play ``scenario`` with the sync link; ``database``: keep the kiosk's SQLite file;
    ``start``: the simulated clock's start (default 08:00 UTC today)."""
    with tempfile.TemporaryDirectory(prefix="kiosk-synced-") as tmp:
        runner = SyncedRunner(
            scenario,
            database or Path(tmp) / "kiosk.db",
            make_link=make_link,
            codes=codes,
            after_step=after_step,
            start=start,
        )
        try:
            return runner.run()
        finally:
            runner.close()
