"""``digibank-kiosk db check`` and ``journal``, run as an installer runs them (subprocess)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.core.clock import ManualClock
from kiosk.core.model import Alarm, AlarmKind, Compartment, CompartmentStatus, TxKind
from kiosk.store import open_store

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
KEY = "f" * 64  # a borrower key (HMAC), the only borrower reference a payload may hold


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TZ": "Europe/Brussels"}  # local time: UTC+1 in November
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database with 3 journal rows (the first sent), compartments and an alarm."""
    path = tmp_path / "kiosk.db"
    clock = ManualClock(T0)
    store = open_store(path, clock)
    with store.transaction() as tx:
        tx.put_compartment(Compartment(1))
        tx.put_compartment(Compartment(2, status=CompartmentStatus.LOADED))
        tx.put_alarm(Alarm("a1", AlarmKind.JAMMED, T0, compartment=2))
        first = tx.journal(TxKind.OPEN_REQUESTED, {"open_id": "o1", "compartment": 2})
    clock.advance(86400)
    with store.transaction() as tx:
        tx.journal(TxKind.PICKUP, {"loan_id": "L1", "borrower_key": KEY, "compartment": 2})
        tx.journal(TxKind.RETURN, {"asset_tag": "DB-0042"})
    store.mark_sent([first.uuid], T0)
    store.close()
    return path


def config_for(tmp_path: Path, database: Path) -> Path:
    config = tmp_path / "kiosk.toml"
    demo = (Path(__file__).resolve().parents[2] / "config" / "demo.toml").read_text()
    config.write_text(demo + f'\n[store]\npath = "{database}"\n')
    return config


def test_db_check_ok(db: Path) -> None:
    done = run("db", "check", "--database", str(db))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"{db}: ok" in out
    assert "schema revision: 0001 (current)" in out
    assert "boot count: 1" in out
    assert "journal: 3 rows, 2 unsent (oldest unsent 2026-11-03 10:00:00)" in out
    assert "compartments: 1 empty, 1 loaded" in out
    assert "active alarms: 1 (jammed x1)" in out
    assert done.stderr == ""


def test_db_check_takes_the_path_from_the_config(tmp_path: Path, db: Path) -> None:
    done = run("db", "check", "--config", str(config_for(tmp_path, db)))
    assert done.returncode == 0, done.stderr
    assert f"{db}: ok" in done.stdout


def test_db_check_counts_no_start_and_changes_nothing(db: Path) -> None:
    before = db.read_bytes()
    assert run("db", "check", "--database", str(db)).returncode == 0
    assert db.read_bytes() == before
    assert "boot count: 1" in run("db", "check", "--database", str(db)).stdout


def test_db_check_missing(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    done = run("db", "check", "--database", str(missing))
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {missing}: the database does not exist"
    assert not missing.exists()


def test_db_check_corrupt_is_one_line_and_keeps_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "kiosk.db"
    bad.write_bytes(os.urandom(4096))
    before = bad.read_bytes()
    done = run("db", "check", "--database", str(bad))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "not a SQLite database" in done.stderr
    assert "Traceback" not in done.stderr
    assert bad.read_bytes() == before


def test_db_check_damaged_page(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    store = open_store(path, ManualClock(T0))
    with store.transaction() as tx:
        for i in range(400):
            tx.journal("pickup", {"i": i, "pad": "x" * 200})
    store.close()
    data = bytearray(path.read_bytes())
    data[5 * 4096 : 6 * 4096] = os.urandom(4096)
    path.write_bytes(bytes(data))
    done = run("db", "check", "--database", str(path))
    assert done.returncode == 1
    assert "integrity check" in done.stderr and done.stderr.count("\n") == 1
    assert path.read_bytes() == bytes(data)


def test_db_check_newer_schema(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff'")
    conn.close()
    done = run("db", "check", "--database", str(db))
    assert done.returncode == 1
    assert "schema revision ffff is newer than this program knows" in done.stderr


def test_journal_text(db: Path) -> None:
    done = run("journal", "--database", str(db))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split()[:4] == ["1", "2026-11-02", "10:00:00", "open_requested"]
    assert lines[0].endswith("  sent")
    assert "open_id=o1 compartment=2" in lines[0]
    assert lines[1].split()[:4] == ["2", "2026-11-03", "10:00:00", "pickup"]
    assert "borrower_key=ffffffffffff…" in lines[1]  # shortened, and nothing else about anyone
    assert lines[2].endswith("  unsent") and "asset_tag=DB-0042" in lines[2]


def test_journal_json(db: Path) -> None:
    done = run("journal", "--database", str(db), "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {
        "seq",
        "uuid",
        "kind",
        "payload",
        "wall_time",
        "boot",
        "sent_at",
        "attempts",
    }
    assert rows[0]["sent_at"] == "2026-11-02T09:00:00+00:00"
    assert rows[1] == {
        "seq": 2,
        "uuid": rows[1]["uuid"],
        "kind": "pickup",
        "payload": {"loan_id": "L1", "borrower_key": KEY, "compartment": 2},
        "wall_time": "2026-11-03T09:00:00+00:00",
        "boot": 1,
        "sent_at": None,
        "attempts": 0,
    }


def test_journal_unsent_and_since(db: Path) -> None:
    unsent = json.loads(run("journal", "--database", str(db), "--unsent", "--json").stdout)
    assert [r["seq"] for r in unsent] == [2, 3]
    # A date is local midnight; 2026-11-03 00:00 in Brussels is 2026-11-02 23:00 UTC.
    since = json.loads(
        run("journal", "--database", str(db), "--since", "2026-11-03", "--json").stdout
    )
    assert [r["seq"] for r in since] == [2, 3]
    later = run("journal", "--database", str(db), "--since", "2026-11-03T09:00:01+00:00")
    assert later.returncode == 0 and later.stdout.strip() == "no journal rows"
    nothing = run("journal", "--database", str(db), "--unsent", "--since", "2030-01-01")
    assert nothing.stdout.strip() == "no journal rows to send"


def test_journal_bad_since(db: Path) -> None:
    done = run("journal", "--database", str(db), "--since", "last tuesday")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: --since 'last tuesday': expected an ISO date")
    assert done.stderr.count("\n") == 1


def test_journal_missing_database(tmp_path: Path) -> None:
    done = run("journal", "--database", str(tmp_path / "none.db"))
    assert done.returncode == 1 and "does not exist" in done.stderr
    assert not (tmp_path / "none.db").exists()
