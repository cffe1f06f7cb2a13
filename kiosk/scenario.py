"""The scenario runner: the real core, store and simulated locker driven by a script.

``run_scenario(scenario)`` builds a ``KioskCore`` on the SQLite store (a memory store when
``kiosk.store`` cannot be imported), a ``SimulatedLocker`` and a ``SimulatedReader`` (real
card protocol), seeds the store, then plays the steps one by one. After every action it
waits until the core has handled everything (``settle``) and checks the step's
expectations; the first one that does not hold ends the run. Simulated time only moves
with ``wait``; lock pulses and door watches take (a little) real time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from hardware.eid.base import ReaderErrorKind
from hardware.eid.cardmaker import TestPki, make_card
from hardware.eid.simulated import SimulatedReader
from hardware.errors import HardwareError
from hardware.locker.layout import OpenTiming, PollTiming
from hardware.locker.simulated import SimulatedLocker
from kiosk.core.clock import ManualClock
from kiosk.core.engine import KioskCore
from kiosk.core.events import ServerStatus, Snapshot
from kiosk.core.memstore import MemoryStore
from kiosk.core.model import Compartment, JournalEntry
from kiosk.core.ports import Store
from kiosk.scenario_checks import (
    CoreErrors,
    StepFailed,
    alarm_name,
    check_expectations,
    choice_matches,
)
from kiosk.scenario_format import PEPPER, Action, Person, Scenario, Step

SETTLE_S = 5.0
POLL = PollTiming(interval_s=0.02, offline_after=3, stable_reads=1)
_PKI: list[TestPki] = []  # made once per process: generating keys is the slow part


def _pki() -> TestPki:
    if not _PKI:
        _PKI.append(TestPki.create("ec"))
    return _PKI[0]


@dataclass
class StepResult:
    """What one step did: the screens it passed through, and whether it held."""

    step: Step
    states: list[str] = field(default_factory=list)
    failure: str = ""


@dataclass
class Outcome:
    """A whole run: ``failure`` is empty when every expectation held."""

    scenario: Scenario
    store_kind: str
    steps: list[StepResult] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    journal: list[JournalEntry] = field(default_factory=list)
    failure: str = ""

    @property
    def ok(self) -> bool:
        """True when every expectation held."""
        return not self.failure


def run_scenario(scenario: Scenario, database: str | Path | None = None) -> Outcome:
    """Play ``scenario``; ``database`` names a new SQLite file to keep (else a temporary one)."""
    with tempfile.TemporaryDirectory(prefix="kiosk-scenario-") as tmp:
        path = Path(database) if database else Path(tmp) / "kiosk.db"
        runner = Runner(scenario, path)
        try:
            return runner.run()
        finally:
            runner.close()


class Runner:
    """Holds the world of one run (see module docstring)."""

    def __init__(self, scenario: Scenario, db_path: Path) -> None:
        self.sc = scenario
        self.db_path = db_path
        self.clock = ManualClock(scenario.start)
        self.store, kind = self._open_store()
        self.outcome = Outcome(scenario, kind)
        self.locker = SimulatedLocker(
            scenario.specs,
            OpenTiming(watch_s=scenario.watch_s, cooldown_s=0.0, check_interval_s=0.005),
            POLL,
        )
        self.reader = SimulatedReader(trusted_roots=[_pki().root_certificate])
        self.core: KioskCore | None = None
        self._states: list[str] = []
        self._lock = threading.Lock()
        self._armed: dict[str, Action] = {}
        self._mark = 0  # journal rows up to this seq were looked at already
        self._card_via_reader = False
        self._server_down = False
        self._hook_error = ""
        self._core_errors = CoreErrors()

    # -- set up and tear down --------------------------------------------------------------------
    def _open_store(self) -> tuple[Store, str]:
        try:
            from kiosk.store import open_store
        except ImportError:  # the SQLite store is not there yet: memory keeps the flows testable
            return MemoryStore(self.clock), "memory"
        return open_store(self.db_path, self.clock), "sqlite"

    def _seed(self) -> None:
        sc = self.sc
        with self.store.transaction() as tx:
            tx.replace_reservations(sc.reservations)
            tx.replace_loans(sc.loans)
            tx.replace_staff(sc.staff)
            for spec in sc.specs:
                given = sc.compartments.get(spec.number, Compartment(spec.number))
                tx.put_compartment(replace(given, size=spec.size, charging=spec.charging))
        for number, present in sc.items.items():
            self.locker.set_item(number, present)
        for number in sc.open_doors:
            self.locker.open_by_hand(number)

    def _start_core(self) -> None:
        core = KioskCore(
            store=self.store,
            locker=self.locker,
            policy=self.sc.policy,
            clock=self.clock,
            pepper=PEPPER,
            checkpoint=self._checkpoint,
        )
        core.attach_reader(self.reader)
        core.subscribe(self._on_snapshot)
        self.core = core
        core.start()
        self._settle()
        self._mark = self._last_seq()

    def close(self) -> None:
        """Stop everything this run started."""
        self._core_errors.detach()
        if self.core is not None:
            self.core.stop()
        self.reader.close()
        self.locker.close()
        with contextlib.suppress(Exception):
            self.store.close()

    # -- running ----------------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Play every step until the first failure."""
        self._seed()
        self.locker.start()
        self.reader.start()
        self._start_core()
        for step in self.sc.steps:
            result = StepResult(step)
            self.outcome.steps.append(result)
            with self._lock:
                self._states = []
            try:
                if step.action is not None:
                    self._arm(step)
                    self._do(step.action)
                    self._settle()
                    self._check_hooks(step)
                self._core_errors.check()
                self._expect(step)
            except StepFailed as exc:
                result.failure = f"{step.where}: {exc}"
            except Exception as exc:  # a runner problem: name the step instead of a traceback
                result.failure = f"{step.where}: the runner failed: {type(exc).__name__}: {exc}"
            self.outcome.failure = result.failure
            with self._lock:
                result.states = _dedupe(self._states)
            self.outcome.states += result.states
            if result.failure:
                break
        self.outcome.journal = self.store.journal_entries()
        return self.outcome

    def _settle(self) -> None:
        assert self.core is not None
        if not self.core.settle(SETTLE_S):
            raise StepFailed(f"the kiosk did not settle within {SETTLE_S:g} s")

    def _on_snapshot(self, snap: Snapshot) -> None:
        state = snap.screen.value + (f" ({snap.message})" if snap.message else "")
        with self._lock:
            self._states.append(state)

    def _last_seq(self) -> int:
        rows = self.store.journal_entries()
        return rows[-1].seq if rows else 0

    # -- actions ----------------------------------------------------------------------------------
    def _do(self, action: Action) -> None:
        core = self.core
        assert core is not None
        kind, value = action.kind, action.value
        if kind == "insert_card":
            self._insert(self.sc.persons[value])
        elif kind == "remove_card":
            if self._card_via_reader:
                self.reader.remove()
                self.reader.wait_idle()
            else:
                core.card_removed()
        elif kind == "tap":
            core.tap(value, self._tap_value(action))
        elif kind == "enter":
            core.enter_text(value)
        elif kind == "scan":
            core.scan(value)
        elif kind == "wait":
            self.clock.advance(value)
            core.tick()
        elif kind == "restart":
            self._restart()
        else:
            self._world(action)

    def _world(self, action: Action) -> None:
        """Doors, items and faults: may run on the opener thread (pulse hooks)."""
        kind, value = action.kind, action.value
        number = action.args.get("compartment", value)
        world = {
            "open_door": lambda: self.locker.open_by_hand(number),
            "close_door": lambda: self.locker.close_door(number),
            "take_out": lambda: self.locker.set_item(number, False),
            "put_in": lambda: self.locker.set_item(number, True),
        }
        if kind in world:
            world[kind]()
        elif kind in ("fault", "clear_fault"):
            self._fault(value, number, on=kind == "fault")
        self._refresh(POLL.offline_after if kind in ("fault", "clear_fault") else 1)

    def _fault(self, fault: str, number: int | None, *, on: bool) -> None:
        faults = self.locker.faults
        if fault == "all" and not on:
            faults.clear()
            if self._server_down:
                self._server(False)
        elif fault == "jam":
            faults.jam(number or 0, on)
        elif fault == "chatter":
            faults.chatter(number or 0, on, probability=0.5)
        elif fault == "board_offline":
            faults.board_offline(on)
        elif fault == "board_garbled":
            faults.garbled(on)
        elif fault == "board_silent":
            faults.no_answer(on)
        elif fault == "server_unreachable":
            self._server(on)
        elif on:  # reader faults happen once; a card read clears reader_unavailable
            kinds = {
                "reader_unavailable": ReaderErrorKind.NO_READER,
                "card_not_an_eid": ReaderErrorKind.NOT_AN_EID,
                "card_mute": ReaderErrorKind.MUTE_CARD,
            }
            self.reader.fail(kinds[fault], f"scenario: {fault}")
            self.reader.wait_idle()

    def _server(self, down: bool) -> None:
        assert self.core is not None
        self._server_down = down
        self.core.post(ServerStatus(not down, 7200.0 if down else 0.0, "scenario"))

    def _refresh(self, times: int) -> None:
        # Read the board now, so the core has the door and board events before settle().
        for _ in range(times):
            with contextlib.suppress(HardwareError):
                self.locker.refresh()

    def _insert(self, person: Person) -> None:
        assert self.core is not None
        if person.national_number is None:
            self._card_via_reader = False
            self.core.present(person.key, person.first_name)
            return
        self._card_via_reader = True
        start = self.sc.start.date()
        card = make_card(
            _pki(),
            national_number=person.national_number,
            given_names=person.first_name or "Test",
            surname="Scenario",
            validity_begin=min(start, person.card_valid_until or start) - dt.timedelta(days=365),
            validity_end=person.card_valid_until or start + dt.timedelta(days=5 * 365),
        )
        self.reader.insert(card)
        if not self.reader.wait_idle(SETTLE_S):
            raise StepFailed("the simulated card reader did not finish reading the card")

    def _tap_value(self, action: Action) -> str | None:
        args = action.args
        snap = self._snap()
        if "value" in args:
            return str(args["value"])
        if "alarm" in args:
            number = args.get("compartment")
            for alarm in snap.alarms:
                if alarm.kind == args["alarm"] and (number is None or alarm.compartment == number):
                    return alarm.id
            seen = ", ".join(alarm_name(a.kind, a.compartment) for a in snap.alarms) or "none"
            raise StepFailed(f"no active alarm {args['alarm']!r} to tap; active: {seen}")
        if "choose" in args:
            wanted = str(args["choose"])
            for choice in snap.choices:
                if choice_matches(wanted, choice.id, choice.label):
                    return choice.id
            offered = ", ".join(f"{c.label}" for c in snap.choices) or "nothing"
            raise StepFailed(f"no choice matching {wanted!r} on the screen; offered: {offered}")
        if "compartment" in args:
            return str(args["compartment"])
        return None

    def _restart(self) -> None:
        assert self.core is not None
        self.core.stop()
        if isinstance(self.store, MemoryStore):
            self.store.restart()
        else:
            self.store.close()
            self.store, _ = self._open_store()
        self._start_core_keeping_mark()

    def _start_core_keeping_mark(self) -> None:
        mark = self._mark
        self._start_core()
        self._mark = mark  # the start-up rows belong to this step's journal

    # -- pulse hooks ------------------------------------------------------------------------
    def _arm(self, step: Step) -> None:
        self._armed = {}
        if step.before_pulse is not None:
            self._armed["pulse:before"] = step.before_pulse
        if step.after_pulse is not None:
            self._armed["pulse:after"] = step.after_pulse

    def _checkpoint(self, name: str) -> None:
        # Runs on the core's opener thread: an exception here would end that thread.
        action = self._armed.pop(name, None)
        if action is not None:
            try:
                self._world(action)
            except Exception as exc:
                self._hook_error = f"{name} {action.describe()}: {type(exc).__name__}: {exc}"

    def _check_hooks(self, step: Step) -> None:
        left, self._armed = self._armed, {}
        error, self._hook_error = self._hook_error, ""
        if error:
            raise StepFailed(f"the pulse hook failed: {error}")
        if left:
            names = " and ".join(n.replace("pulse:", "") + "_pulse" for n in left)
            raise StepFailed(f"{names} was given but no lock was pulsed in this step")

    # -- expectations -----------------------------------------------------------------------
    def _snap(self) -> Snapshot:
        assert self.core is not None
        return self.core.snapshot()

    def _expect(self, step: Step) -> None:
        check_expectations(step.expects, self._snap(), self.locker.pulses, self._new_rows)

    def _new_rows(self) -> list[str]:
        """Journal kinds written since the last journal expectation (and move the mark)."""
        rows = self.store.journal_entries(after_seq=self._mark)
        if rows:
            self._mark = rows[-1].seq
        return [row.kind for row in rows]


def _dedupe(states: list[str]) -> list[str]:
    out: list[str] = []
    for state in states:
        if not out or out[-1] != state:
            out.append(state)
    return out
