"""The crash harness: run a flow, SIGKILL the kiosk at one checkpoint, restart it, look.

The board emulator lives here, in the test process: the cabinet outlives the kiosk, so
the harness counts pulses across the crash and plays the resident. For one crash point:

1. a fresh database (seeded) and a fresh emulator (seeded devices);
2. the child runs the flow with ``--crash-at NAME#K`` until it kills itself;
3. pulses are counted, the child restarted without a crash point; once start-up is done
   (and a few polls later) the pulses are counted again and the store read (read-only);
4. doors left open are shut, the probe pickup proves the restarted kiosk serves; it is
   stopped and read again.

``checks.py`` judges the ``CrashRun`` this returns. ``dry_run`` plays a flow without a
crash and lists the checkpoints it passes: those are the flow's crash points.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from hardware.locker.emulator import BoardEmulator
from kiosk.core.clock import SystemClock
from kiosk.core.model import Alarm, Compartment, JournalEntry
from kiosk.store import open_store
from tests.crash.cabinet import BOARD, COMPARTMENTS, STORE_LOCK, new_emulator, seed
from tests.crash.flows import FLOWS, Hands, probe
from tests.crash.process import Child, ChildDied, FlowError

TIMED = "after:"  # a crash point "after:0.35": killed 0.35 s after start-up, anywhere
TIMED_MAX_S = 3.0  # timed kills come sooner than this
AFTER_START_S = 0.25  # watch the restarted kiosk this long (about 12 polls) for pulses


@dataclass(frozen=True)
class Cabinet:
    """What the emulated cabinet shows: per compartment, pulses, item and door."""

    pulses: dict[int, int]
    items: dict[int, bool]
    doors: dict[int, bool]


@dataclass(frozen=True)
class StoreState:
    """The store as read from the file by the harness (read-only)."""

    journal: list[JournalEntry]
    compartments: list[Compartment]
    alarms: list[Alarm]  # active ones


@dataclass(frozen=True)
class Kill:
    """One child killed at its crash point: its boot and the checkpoints it reported."""

    boot: int
    reported: list[str]
    timed: bool = False  # killed after a delay, not at a checkpoint


@dataclass
class CrashRun:
    """Everything observed around one crash; judged by ``checks.check_run``."""

    flow: str
    point: str
    kills: list[Kill] = field(default_factory=list)  # the flow's child, a killed restart
    restart_boot: int = 0
    restart_refused: str = ""
    at_kill: Cabinet | None = None
    after_start: Cabinet | None = None
    state: StoreState | None = None  # after the restart's start-up
    final_cabinet: Cabinet | None = None
    final: StoreState | None = None  # after the probe and a clean stop
    probe_error: str = ""
    stderr: Path | None = None


def look(emulator: BoardEmulator) -> Cabinet:
    """The emulator's cabinet now."""
    return Cabinet(
        pulses={n: emulator.pulses(BOARD, n) for n in COMPARTMENTS},
        items={n: emulator.item(BOARD, n) for n in COMPARTMENTS},
        doors={n: emulator.door_open(BOARD, n) for n in COMPARTMENTS},
    )


SETTLE_QUIET_S = 0.1  # the cabinet unchanged this long: nothing in flight any more
SETTLE_MAX_S = 3.0


def settled_look(emulator: BoardEmulator) -> Cabinet:
    """The cabinet once it stopped changing: a command the child wrote to the serial line
    just before it was killed is still processed by the emulator after the kill, so a
    look right after the kill can miss a pulse the dead child legitimately asked for (and
    the restart would be blamed for it). Bounded: after SETTLE_MAX_S the last look."""
    deadline = time.monotonic() + SETTLE_MAX_S
    seen = look(emulator)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_QUIET_S)
        now = look(emulator)
        if now == seen:
            return now
        seen = now
    return seen


def read_store(db: Path) -> StoreState:
    """The store's journal, compartments and active alarms, read without writing."""
    with STORE_LOCK:
        store = open_store(db, SystemClock(), read_only=True)
    try:
        journal = store.journal_entries()
        with store.reading() as tx:
            return StoreState(journal, tx.compartments(), tx.alarms(active_only=True))
    finally:
        store.close()


@contextlib.contextmanager
def workspace(workdir: Path) -> Iterator[tuple[Path, BoardEmulator]]:
    """A seeded database and a started emulator with the seeded devices; stopped after."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "kiosk.db"
    emulator = new_emulator()
    emulator.start_pty()
    try:
        seed(db, emulator)
        yield db, emulator
    finally:
        emulator.stop()


def dry_run(flow: str, workdir: Path, *, with_probe: bool = True) -> list[str]:
    """Play ``flow`` without a crash; its crash points (``NAME#K``) in order.

    The first start-up's checkpoints belong to the ``startup`` flow only; the other flows
    list what they pass after it. ``with_probe``: restart and run the probe as well (proves
    the script and the probe work before any crash is judged).
    """
    with workspace(workdir) as (db, emulator):
        stderr = workdir / "child.log"
        child = Child.spawn(db, emulator.url, stderr)
        try:
            before = len(child.checkpoints)
            FLOWS[flow](Hands(child, emulator))
            child.stop()
        finally:
            child.close()
        points = child.checkpoints if flow == "startup" else child.checkpoints[before:]
        if with_probe:
            again = Child.spawn(db, emulator.url, stderr)
            try:
                probe(Hands(again, emulator))
                again.stop()
            finally:
                again.close()
    return points


def _kill_at(
    db: Path, url: str, log: Path, point: str, script: Callable[[Child], None], forked: bool
) -> Kill:
    """Start a child with crash point ``point``, run ``script`` until it dies there."""
    child = Child.launch(db, url, log, crash_at=point, forked=forked)
    code: int | None = None
    try:
        child.wait_started()
        script(child)
    except ChildDied as died:
        code = died.returncode
    else:
        raise FlowError(f"the script finished without reaching crash point {point}")
    finally:
        reported, boot = list(child.checkpoints), child.boot
        child.close()
    if code != -9:
        raise FlowError(f"the child ended with {code}, not SIGKILL; see {log}")
    timed = point.startswith(TIMED)
    if not timed and (not reported or reported[-1] != point):
        raise FlowError(f"the child died at {reported[-1:]} instead of {point}")
    return Kill(boot, reported, timed)


def run_crash(
    flow: str,
    point: str,
    workdir: Path,
    *,
    then: str = "",
    bad_restart: bool = False,
    forked: bool = False,
) -> CrashRun:
    """Kill the kiosk at ``point`` of ``flow``, restart it, observe (see module docstring).

    ``then``: kill the first restart too, at that point of its start-up; the next start
    is the one observed. ``forked``: children come from the fork server (faster), else
    from the command line.
    """
    run = CrashRun(flow, point, stderr=workdir / "child.log")
    assert run.stderr is not None
    with workspace(workdir) as (db, emulator):
        url = emulator.url
        hands = partial(Hands, emulator=emulator)

        def play(child: Child) -> None:
            FLOWS[flow](hands(child))
            if point.startswith(TIMED):  # a kill due after the flow's end: wait for it
                child.command(sleep=TIMED_MAX_S)

        run.kills.append(_kill_at(db, url, run.stderr, point, play, forked))
        run.at_kill = settled_look(emulator)
        if then:
            run.kills.append(_kill_at(db, url, run.stderr, then, lambda _c: None, forked))
        again = Child.spawn(db, url, run.stderr, bad_restart=bad_restart, forked=forked)
        try:
            run.restart_boot = int(again.started["boot"])
            run.restart_refused = str(again.started.get("refused") or "")
            again.command(sleep=AFTER_START_S)
            run.after_start = look(emulator)
            run.state = read_store(db)
            # Someone shuts the doors the crash left open (devices stay as they are): the
            # restarted kiosk must see it and clear its door_left_open alarms by itself.
            for number, is_open in run.after_start.doors.items():
                if is_open:
                    emulator.close_door(BOARD, number)
            try:
                probe(hands(again))
            except (FlowError, AssertionError) as exc:
                run.probe_error = str(exc)
            again.stop()
        finally:
            again.close()
        run.final_cabinet = look(emulator)
        run.final = read_store(db)
    return run


def restart_points(flow: str, point: str, workdir: Path) -> list[str]:
    """The checkpoints a restart passes after ``flow`` was killed at ``point``."""
    with workspace(workdir) as (db, emulator):
        url = emulator.url
        log = workdir / "child.log"
        play: Callable[[Child], None] = lambda c: FLOWS[flow](Hands(c, emulator))  # noqa: E731
        _kill_at(db, url, log, point, play, False)
        again = Child.spawn(db, url, log)
        try:
            again.stop()
        finally:
            again.close()
    return again.checkpoints
