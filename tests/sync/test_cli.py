"""``digibank-kiosk sync status`` / ``sync now`` as an installer runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kiosk.core.clock import SystemClock
from kiosk.store import open_store
from tests.sync.conftest import Server, journal_rows, server_rows

ROOT = Path(__file__).resolve().parents[2]


def kiosk_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_config(tmp_path: Path, url: str | None, token: str = "") -> Path:
    token_file = tmp_path / "token"
    token_file.write_text(token, encoding="utf-8")
    sync = (
        f'[sync]\nurl = "{url}"\ntoken_file = "{token_file}"\n'
        "connect_timeout_ms = 1000\nread_timeout_ms = 3000\n"
        if url
        else ""
    )
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "kiosk.db"}"\n'
        '[locker]\ndriver = "simulated"\n[[locker.compartments]]\nnumber = 1\n' + sync,
        encoding="utf-8",
    )
    return config


def status(config: Path) -> dict[str, object]:
    done = kiosk_cli("sync", "status", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_and_now_against_the_server_then_with_the_server_down(
    server: Server, tmp_path: Path
) -> None:
    config = write_config(tmp_path, server.url, server.token)
    store = open_store(tmp_path / "kiosk.db", SystemClock())
    try:
        uuids = journal_rows(store, 3)
    finally:
        store.close()
    text = kiosk_cli("sync", "status", "--config", str(config))
    assert text.returncode == 0 and text.stdout.startswith("backlog: 3 unsent row(s) (oldest ")
    assert "last success: never" in text.stdout and "last error: none" in text.stdout
    assert text.stdout.rstrip().endswith("server: not contacted yet")

    sent = kiosk_cli("sync", "now", "--config", str(config))
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("sent 3 row(s), 0 left; pulled 0 reservation(s)")
    assert set(uuids) <= {u for u, _ in server_rows(server.engine)}
    after = status(config)
    assert after["backlog"] == 0 and after["oldest_unsent_age_s"] is None
    assert after["last_success"] is not None and after["last_error"] is None
    assert after["failing"] is False

    server.stop()
    store = open_store(tmp_path / "kiosk.db", SystemClock())
    try:
        journal_rows(store, 2)
    finally:
        store.close()
    down = kiosk_cli("sync", "now", "--config", str(config))
    assert down.returncode == 1
    lines = down.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("server unreachable: POST /transactions: ")
    assert "Connection refused" in lines[0]
    assert server.token not in down.stderr + down.stdout
    failed = status(config)
    assert failed["backlog"] == 2 and "Connection refused" in str(failed["last_error"])
    assert failed["failing"] is True and failed["last_success"] == after["last_success"]


def test_now_without_a_server_configured_is_a_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, None)
    done = kiosk_cli("sync", "now", "--config", str(config))
    assert done.returncode == 2
    assert "no [sync] url configured" in done.stderr and not done.stdout


def test_status_of_a_missing_database_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path, None)
    done = kiosk_cli("sync", "status", "--config", str(config))
    assert done.returncode == 1 and "the database does not exist" in done.stderr
