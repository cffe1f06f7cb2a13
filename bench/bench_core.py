"""Core benchmarks: identification-to-unlock time, one journalled transaction, memory over
many sessions; every figure next to a baseline measured in the same run.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_core.py [--sessions N] [--quick]
[--dir DIR]``). Prints tables and writes bench/results/core.json. Databases go to a
temporary directory (or DIR) on this machine's disk and are removed at the end.

1. Identification -> unlock request (software time): from ``core.present(key, name)`` to
   the snapshot CHOOSE_RESERVATION (stamped by a subscriber on the worker thread), plus
   from ``core.tap("open")`` to the moment ``locker.open()`` is entered (a proxy around
   the simulated locker). The SQLite store (WAL, synchronous=FULL: ``open_requested`` is
   on disk before the pulse) against ``MemoryStore``, the same core without a disk.
2. One journalled transaction, ``with store.transaction() as tx: tx.journal(...)``: the
   store as shipped, the same store with synchronous=OFF, MemoryStore; floors: a raw
   sqlite3 INSERT + COMMIT in WAL (FULL, OFF) and os.write + fsync / fdatasync of 200
   bytes in the same directory. Methods take turns round by round (same disk weather).
3. Memory over N sessions (SQLite store): identify -> choose -> cancel; every 10th a step
   of a full cycle through the core (pickup, return, staff unload, staff load, in turn) so
   the journal grows on disk. At every tenth of N, after gc.collect(): VmRSS, SQLite's own
   heap (sqlite3_memory_used), live pymalloc blocks, gc-tracked objects; the growth from
   the 2nd checkpoint to the end. Then a traced window of N/10 more sessions (tracemalloc
   triples a session's cost, too slow for all N): Python memory allocated in the window
   and alive at its middle and end; the allocation lines that grew from middle to end.
"""

from __future__ import annotations

import _sqlite3
import argparse
import ctypes
import gc
import json
import logging
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event

from hardware.locker.base import OpenResult
from hardware.locker.layout import CompartmentSpec, OpenTiming, PollTiming
from hardware.locker.simulated import SimulatedLocker
from kiosk.core.clock import ManualClock
from kiosk.core.codes import hash_code
from kiosk.core.engine import KioskCore
from kiosk.core.events import Screen, Snapshot
from kiosk.core.memstore import MemoryStore
from kiosk.core.model import (
    Compartment,
    CompartmentStatus,
    Reservation,
    ReservationStatus,
    StaffMember,
)
from kiosk.core.ports import Store
from kiosk.store import SqlStore, open_store

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SPECS = [CompartmentSpec(n, size="M", item_sensor=True) for n in range(1, 5)]
STAFF_KEY, STAFF_PIN = "staff-key", "2468"
# About the size of an open_requested row.
PAYLOAD = {"open_id": "f" * 32, "compartment": 3, "asset_tag": "LAP-0042", "borrower_key": "k" * 43}


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, Any]:
    """n, p50, p95 and max of durations in seconds, as milliseconds."""
    return {
        "n": len(values),
        "p50_ms": pct(values, 0.5) * 1000,
        "p95_ms": pct(values, 0.95) * 1000,
        "max_ms": max(values) * 1000,
    }


class StampingLocker:
    """Delegates everything to a locker; notes when ``open()`` is entered."""

    def __init__(self, inner: SimulatedLocker) -> None:
        self.inner = inner
        self.entered = 0.0

    def open(self, compartment: int, txn_id: str) -> OpenResult:
        """Stamp, then the real open."""
        self.entered = time.perf_counter()
        return self.inner.open(compartment, txn_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Rig:
    """A started core over a store and a simulated cabinet."""

    core: KioskCore
    locker: SimulatedLocker
    proxy: StampingLocker
    store: Store
    stamps: dict[Screen, float]  # when each screen was first published since clear()

    def expect(self, screen: Screen) -> Snapshot:
        """Wait until the core is idle showing ``screen`` (a poller event may still be due)."""
        deadline = time.monotonic() + 10
        while True:
            self.core.settle(10)
            snap = self.core.snapshot()
            if snap.screen is screen:
                return snap
            if time.monotonic() > deadline:
                raise RuntimeError(f"expected {screen.value}, got {snap.screen.value}")
            time.sleep(0.001)

    def close_door(self, number: int, *, item: bool) -> None:
        """The person puts a device in (or takes it out) and shuts the door."""
        self.locker.refresh()  # the door is seen open before it closes
        self.locker.set_item(number, item)
        self.locker.close_door(number)
        self.locker.refresh()

    def stop(self) -> None:
        """Stop the core and the cabinet, close the store."""
        self.core.stop()
        self.locker.close()
        self.store.close()


def build(store: Store, clock: ManualClock) -> Rig:
    """A core over ``store`` and a 4-compartment simulated cabinet (doors spring open)."""
    locker = SimulatedLocker(
        SPECS,
        OpenTiming(watch_s=1.0, cooldown_s=0.0, check_interval_s=0.005),
        # A bench door changes far more often than a real one: no chatter filter.
        PollTiming(interval_s=0.01, stable_reads=1, chatter_changes=10**9),
    )
    locker.start()
    proxy = StampingLocker(locker)
    core = KioskCore(store=store, locker=proxy, clock=clock)  # type: ignore[arg-type]
    core.start()
    rig = Rig(core, locker, proxy, store, {})
    core.subscribe(lambda snap: rig.stamps.setdefault(snap.screen, time.perf_counter()))
    pin = hash_code(STAFF_PIN)
    with store.transaction() as tx:
        tx.replace_staff([StaffMember("S1", "Staff", pin, borrower_key=STAFF_KEY)])
    rig.expect(Screen.IDLE)
    return rig


def load_directly(rig: Rig, rid: str, tag: str, key: str, number: int) -> None:
    """Put a loaded reservation into compartment ``number`` through the store (untimed)."""
    with rig.store.transaction() as tx:
        tx.put_reservation(Reservation(rid, tag, ReservationStatus.LOADED, key, compartment=number))
        tx.put_compartment(
            Compartment(number, status=CompartmentStatus.LOADED, asset_tag=tag, reservation_id=rid)
        )
    rig.locker.set_item(number, True)
    rig.locker.refresh()
    rig.expect(Screen.IDLE)


# -- 1. identification -> unlock request ----------------------------------------------------------
def pickup(rig: Rig, key: str, name: str) -> tuple[float, float]:
    """One whole pickup; returns (present -> choose, tap open -> open() entered)."""
    rig.stamps.clear()
    start = time.perf_counter()
    rig.core.present(key, name)
    rig.expect(Screen.CHOOSE_RESERVATION)
    identify = rig.stamps[Screen.CHOOSE_RESERVATION] - start
    start = time.perf_counter()
    rig.core.tap("open")
    number = rig.expect(Screen.TAKE_ITEM).compartment
    assert number is not None
    unlock = rig.proxy.entered - start
    rig.close_door(number, item=False)
    rig.expect(Screen.PICKUP_DONE)
    rig.core.tap("ok")
    rig.expect(Screen.IDLE)
    return identify, unlock


def unlock_latency(
    name: str, store: Store, clock: ManualClock, pickups: int
) -> list[dict[str, Any]]:
    """``pickups`` timed pickups (after 10 untimed) with ``store``: three rows of figures."""
    rig = build(store, clock)
    identify, unlock, total = [], [], []
    try:
        for i in range(pickups + 10):
            load_directly(rig, f"R{i}", f"LAP-{i:05d}", f"key-{i}", 1 + i % 4)
            a, b = pickup(rig, f"key-{i}", "Ann")
            if i >= 10:
                identify.append(a)
                unlock.append(b)
                total.append(a + b)
    finally:
        rig.stop()
    return [
        {"store": name, "span": "present -> choose", **summary(identify)},
        {"store": name, "span": "tap open -> open()", **summary(unlock)},
        {"store": name, "span": "sum of both", **summary(total)},
    ]


# -- 2. one journalled transaction ---------------------------------------------------------------
def synchronous_off(store: SqlStore) -> None:
    """Every new connection of ``store`` gets synchronous=OFF (after the store's own set-up)."""

    @event.listens_for(store.engine, "connect")
    def _off(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    store.engine.dispose()
    if store.pragmas()["synchronous"] != 0:
        raise RuntimeError("could not set synchronous=OFF on the second store")


def raw_sqlite(path: Path, synchronous: str, stack: ExitStack) -> Callable[[], None]:
    """One INSERT + COMMIT through a bare sqlite3 connection in WAL mode."""
    conn = sqlite3.connect(path, isolation_level=None)
    stack.callback(conn.close)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE j (seq INTEGER PRIMARY KEY, uuid TEXT, kind TEXT, payload TEXT)")
    text = json.dumps(PAYLOAD)

    def once() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO j (uuid, kind, payload) VALUES (?, ?, ?)", (str(uuid.uuid4()), "b", text)
        )
        conn.execute("COMMIT")

    return once


def journal_commits(directory: Path, rounds: int) -> list[dict[str, Any]]:
    """Per-commit time of each method; the methods take turns, round by round."""
    clock, block = ManualClock(), b"x" * 200

    def store_commit(store: Store) -> Callable[[], None]:
        def once() -> None:
            with store.transaction() as tx:
                tx.journal("bench", PAYLOAD)

        return once

    with ExitStack() as stack:
        full = stack.enter_context(open_store(directory / "journal-full.db", clock))
        off = stack.enter_context(open_store(directory / "journal-off.db", clock))
        synchronous_off(off)
        fd = os.open(directory / "floor.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stack.callback(os.close, fd)
        methods: dict[str, Callable[[], object]] = {
            "SqlStore, synchronous=FULL (shipped)": store_commit(full),
            "SqlStore, synchronous=OFF": store_commit(off),
            "MemoryStore (no disk)": store_commit(MemoryStore(clock)),
            "raw sqlite3 WAL, FULL": raw_sqlite(directory / "raw-full.db", "FULL", stack),
            "raw sqlite3 WAL, OFF": raw_sqlite(directory / "raw-off.db", "OFF", stack),
            "os.write 200 B + fsync": lambda: (os.write(fd, block), os.fsync(fd)),
            "os.write 200 B + fdatasync": lambda: (os.write(fd, block), os.fdatasync(fd)),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        for once in methods.values():
            once()  # warm up
        for _ in range(rounds):
            for name, once in methods.items():
                start = time.perf_counter()
                once()
                times[name].append(time.perf_counter() - start)
    floor = statistics.median(times["os.write 200 B + fsync"])
    return [
        {"method": name, **summary(t), "x_fsync": statistics.median(t) / floor}
        for name, t in times.items()
    ]


# -- 3. memory over many sessions ----------------------------------------------------------------
class Cycle:
    """Borrower B's device goes round: pickup, return, staff unload, staff load."""

    KEY, RID, TAG = "key-B", "RB", "LAP-B0001"

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.step = 0
        self.returned_to = 0

    def next(self, name: str) -> None:
        """One step of the cycle, through the core."""
        rig = self.rig
        step, self.step = self.step % 4, self.step + 1
        if step == 0:
            pickup(rig, self.KEY, name)
        elif step == 1:
            rig.core.scan(self.TAG)
            self.returned_to = self._door(Screen.PLACE_ITEM, item=True)
            rig.expect(Screen.RETURN_DONE)
            rig.core.tap("ok")
        else:
            rig.core.present(STAFF_KEY, "")
            rig.expect(Screen.STAFF_PIN)
            rig.core.enter_text(STAFF_PIN)
            rig.expect(Screen.STAFF_MAP)
            if step == 2:
                rig.core.tap("unload", str(self.returned_to))
                self._door(Screen.STAFF_DOOR, item=False)
            else:
                with rig.store.transaction() as tx:  # the server's next reservation for B
                    reservation = tx.reservation(self.RID)
                    assert reservation is not None
                    tx.put_reservation(
                        replace(reservation, status=ReservationStatus.REQUESTED, compartment=None)
                    )
                rig.core.tap("load")
                rig.expect(Screen.STAFF_SCAN)
                rig.core.scan(self.TAG)
                self._door(Screen.STAFF_DOOR, item=True)
            rig.expect(Screen.STAFF_MAP)
            rig.core.tap("logout")
        rig.expect(Screen.IDLE)

    def _door(self, screen: Screen, *, item: bool) -> int:
        number = self.rig.expect(screen).compartment
        assert number is not None
        self.rig.close_door(number, item=item)
        return number


def rss_kib() -> int:
    """VmRSS of this process in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def sqlite_kib() -> float:
    """What SQLite's allocator holds (page caches, statements) in KiB; -1 when unknown."""
    try:
        used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
    except (OSError, AttributeError):
        return -1.0
    used.restype = ctypes.c_int64
    return float(used()) / 1024


def one_session(rig: Rig, cycle: Cycle, i: int) -> None:
    """Session ``i``: identify -> choose -> cancel; every 10th a step of the cycle."""
    name = f"Resident{i}"  # a new first name every time: none may stay behind
    if i % 10 == 0:
        cycle.next(name)
        return
    rig.core.present("key-A", name)
    rig.expect(Screen.CHOOSE_RESERVATION)
    rig.core.tap("cancel")
    rig.expect(Screen.IDLE)


def traced_kib(snapshot: tracemalloc.Snapshot) -> float:
    """What a (filtered) snapshot holds, in KiB."""
    return sum(stat.size for stat in snapshot.statistics("filename")) / 1024


def memory_growth(directory: Path, sessions: int) -> dict[str, Any]:
    """Sessions on the SQLite store, memory at every tenth; then a traced window."""
    clock = ManualClock()
    rig = build(open_store(directory / "memory.db", clock), clock)
    load_directly(rig, "RA", "LAP-A0001", "key-A", 1)
    load_directly(rig, Cycle.RID, Cycle.TAG, Cycle.KEY, 2)
    cycle = Cycle(rig)
    every = max(10, sessions // 10)
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    try:
        for i in range(1, sessions + 1):
            one_session(rig, cycle, i)
            if i % every == 0:
                gc.collect()
                disk = sum(p.stat().st_size for p in directory.glob("memory.db*"))
                rows.append(
                    {
                        "sessions": i,
                        "rss_kib": rss_kib(),
                        "sqlite_kib": sqlite_kib(),
                        "py_blocks": sys.getallocatedblocks(),
                        "gc_objects": len(gc.get_objects()),
                        "journal_rows": rig.store.report().journal_rows,  # type: ignore[attr-defined]
                        "db_kib": disk / 1024,
                        "elapsed_s": time.perf_counter() - start,
                    }
                )
        # The traced window: only what is allocated from here on is seen; what is still
        # alive at the end of the window and grew since its middle is what accumulates.
        tracemalloc.start()
        snapshots, half = [], every // 2
        for i in range(sessions + 1, sessions + 2 * half + 1):
            one_session(rig, cycle, i)
            if (i - sessions) % half == 0:
                gc.collect()
                snapshots.append(tracemalloc.take_snapshot().filter_traces(ignore))
    finally:
        tracemalloc.stop()
        rig.stop()
    mid, end = snapshots
    top = []
    for stat in [stat for stat in end.compare_to(mid, "lineno") if stat.size_diff > 0][:5]:
        frame = stat.traceback[0]
        where = frame.filename.removeprefix(f"{ROOT}/").removeprefix(f"{sys.base_prefix}/")
        top.append(
            {
                "line": f"{where}:{frame.lineno}",
                "size_diff_kib": stat.size_diff / 1024,
                "count_diff": stat.count_diff,
            }
        )
    first, last = rows[min(1, len(rows) - 1)], rows[-1]
    span = max(1, last["sessions"] - first["sessions"])
    growth = {"from": first["sessions"], "to": last["sessions"]}
    for key in ("rss_kib", "sqlite_kib", "py_blocks", "gc_objects"):
        growth[key] = last[key] - first[key]
    growth["rss_bytes_per_session"] = growth["rss_kib"] * 1024 / span
    window = {
        "sessions": f"{sessions + 1}..{sessions + 2 * half}",
        "traced_kib_mid": traced_kib(mid),
        "traced_kib_end": traced_kib(end),
        "grew_kib": traced_kib(end) - traced_kib(mid),
    }
    return {"rows": rows, "growth": growth, "window": window, "top_growth": top}


# -- output ----------------------------------------------------------------------------------------
def machine(directory: Path) -> dict[str, Any]:
    """Facts that make the figures comparable: CPU, disk, versions."""
    cpu = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line]
    names = [line.split(":", 1)[1].strip() for line in cpu if line.startswith("model name")]
    mounts = [line.split()[:3] for line in Path("/proc/mounts").read_text().splitlines()]
    here = str(directory.resolve())
    device, mount, kind = max((m for m in mounts if here.startswith(m[1])), key=lambda m: len(m[1]))
    usage = shutil.disk_usage(directory)
    return {
        "cpus": os.cpu_count(),
        "cpu": names[0] if names else platform.machine(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "bench_dir": here,
        "filesystem": f"{device} ({kind}) on {mount}",
        "disk_free_gib": round(usage.free / 2**30, 1),
        "disk_size_gib": round(usage.total / 2**30, 1),
    }


def table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print rows as an aligned table."""
    print(f"\n{title}", flush=True)
    cells = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()] for row in rows]
    keys = list(rows[0])
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print("  ".join(k.rjust(w) for k, w in zip(keys, widths, strict=True)))
    for cell in cells:
        print("  ".join(c.rjust(w) for c, w in zip(cell, widths, strict=True)), flush=True)


def main() -> None:
    """Run every benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--sessions", type=int, help="sessions for the memory run (10000)")
    parser.add_argument("--dir", type=Path, help="where the databases go (a temporary dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    pickups, rounds = (40, 50) if args.quick else (300, 300)
    sessions = args.sessions or (1000 if args.quick else 10_000)
    with tempfile.TemporaryDirectory(prefix="bench-core-", dir=args.dir) as name:
        directory = Path(name)
        facts = machine(directory)
        table("machine", [{"fact": k, "value": v} for k, v in facts.items()])
        clock = ManualClock()
        sql = open_store(directory / "unlock.db", clock)
        unlock = unlock_latency("sqlite", sql, clock, pickups)
        unlock += unlock_latency("memory", MemoryStore(clock), clock, pickups)
        table("identification -> unlock request, software time (simulated cabinet)", unlock)
        journal = journal_commits(directory, rounds)
        table("one journalled transaction (commit), floors in the same directory", journal)
        memory = memory_growth(directory, sessions)
    table(f"memory over {sessions} sessions (SQLite store, after gc.collect())", memory["rows"])
    table("growth from the 2nd checkpoint to the end", [memory["growth"]])
    table(
        "traced window (tracemalloc on): Python memory allocated in it, alive", [memory["window"]]
    )
    if memory["top_growth"]:
        table(
            "allocation lines that grew from the middle to the end of the window",
            memory["top_growth"],
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "core.json"
    results = {"machine": facts, "unlock": unlock, "journal": journal, "memory": memory}
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
