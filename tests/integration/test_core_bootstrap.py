"""bootstrap.build_core: the real SQLite store under the core, and a damaged database."""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from pathlib import Path

from hardware.locker.layout import CompartmentSpec, OpenTiming, PollTiming
from kiosk import bootstrap
from kiosk.core.events import Screen
from kiosk.core.model import TxKind
from kiosk.settings import DEMO_CONFIG, load_settings
from kiosk.settings_core import StoreSettings


def settings_for(db: Path):
    base = load_settings(DEMO_CONFIG)
    cabinet = dataclasses.replace(
        base.locker,
        driver="simulated",
        compartments=tuple(CompartmentSpec(n, item_sensor=True) for n in range(1, 4)),
        open_timing=OpenTiming(watch_s=0.2, cooldown_s=0.0, check_interval_s=0.01),
        poll=PollTiming(interval_s=0.02, stable_reads=1),
    )
    return dataclasses.replace(base, locker=cabinet, store=StoreSettings(str(db)))


def start(db: Path):
    stack = ExitStack()
    settings = settings_for(db)
    locker = bootstrap.start_locker(settings.locker, stack)
    core = bootstrap.build_core(settings, locker, stack, pepper=b"pepper")
    report = core.start()
    assert core.settle(5)
    return stack, core, report


def test_first_and_second_start_on_a_fresh_database(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    stack, core, report = start(db)
    with stack:
        assert core.snapshot().screen is Screen.IDLE
        assert report.boot == 1 and db.exists()
        assert [c.stored_status for c in core.snapshot().compartments] == ["empty"] * 3
    stack, core, report = start(db)
    with stack:
        assert report.boot == 2
        assert core.store is not None
        kinds = [e.kind for e in core.store.journal_entries()]
        assert kinds == [TxKind.KIOSK_STARTED, TxKind.KIOSK_STARTED]


def test_a_damaged_database_is_kept_and_the_kiosk_refuses_service(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    db.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    before = db.read_bytes()
    stack, core, report = start(db)
    with stack:
        snap = core.snapshot()
        assert snap.screen is Screen.OUT_OF_ORDER
        assert snap.alarms and snap.alarms[0].kind == "database"
        assert str(db) in snap.alarms[0].detail or "kiosk.db" in snap.alarms[0].detail
        assert report.refused
        core.tap("return")
        assert core.settle(5)
        assert core.snapshot().screen is Screen.OUT_OF_ORDER
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kiosk.db"]


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    stack, core, report = start(tmp_path / "nowhere" / "kiosk.db")
    with stack:
        assert core.snapshot().screen is Screen.OUT_OF_ORDER
        assert "nowhere" in report.refused
