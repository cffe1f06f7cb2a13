"""``loanserver admin command | report | make-admin-token`` as an operator runs them.

Subprocesses on a SQLite file (``python -m loanserver ...``), plus one end-to-end run: the
admin token made on the command line opens the back office of a served ``loanserver``, and
a command queued on the command line reaches the kiosk in its heartbeat answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from loanserver import admin, db
from tests.loanserver.report_data import NOVEMBER, build_month
from tests.loanserver.test_admin_cli import ROOT, Cli, _last
from tests.loanserver.test_admin_cli import cli as cli  # the fixture, shared
from tests.support.live_server import free_port

SERVE_TIMEOUT_S = 20.0


def _commands(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT id, kind, compartment, reason, done_at FROM commands ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def test_commands_are_queued_and_their_ids_printed(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{cli.db}"
    # Set-up and refusal in-process (the same run() the console script calls): faster.
    assert admin.run(["admin", "add-kiosk", "Bib Noord", "--database", url]) == 0
    runs = [
        cli("admin", "command", "Bib Noord", "open", "3", "--reason", "resident on the phone"),
        cli("admin", "command", "Bib Noord", "out-of-service", "4", "--reason", "hinge broken"),
        cli("admin", "command", "Bib Noord", "back-in-service", "4"),
        cli("admin", "command", "Bib Noord", "refresh"),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0, 0], [r.stderr for r in runs]
    assert [_last(r.stdout) for r in runs] == ["1", "2", "3", "4"]
    assert _commands(cli.db) == [
        (1, "open", 3, "resident on the phone", None),
        (2, "out_of_service", 4, "hinge broken", None),
        (3, "back_in_service", 4, None, None),
        (4, "refresh", None, None, None),
    ]
    capsys.readouterr()
    assert admin.run(["admin", "command", "Nowhere", "refresh", "--database", url]) == 1
    assert capsys.readouterr().err == "refused: unknown kiosk 'Nowhere'\n"
    assert len(_commands(cli.db)) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["K", "open", "3"], "--reason"),
        (["K", "open", "0", "--reason", "x"], "1 to 999"),
        (["K", "open", "three", "--reason", "x"], "invalid int"),
        (["K", "out-of-service", "1000"], "1 to 999"),
        (["K", "refresh", "3"], "unrecognized arguments"),
        (["K", "back-in-service", "2", "--reason", "x"], "unrecognized arguments"),
        (["K", "open", "1", "--reason", " "], "reason is 1 to 200"),
        (["K", "reboot"], "invalid choice"),
    ],
)
def test_a_bad_command_is_one_line_exit_2_and_queues_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    # In-process (the same run() the console script calls): nine subprocesses cost 9 s.
    url = f"sqlite:///{tmp_path / 'server.db'}"
    assert admin.run(["admin", "add-kiosk", "K", "--database", url]) == 0
    capsys.readouterr()
    assert admin.run(["admin", "command", *args, "--database", url]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert _commands(tmp_path / "server.db") == []


def test_a_command_without_its_kind_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.run(["admin", "command", "K"]) == 2
    err = capsys.readouterr().err
    assert "required: KIND" in err and len(err.strip().splitlines()) == 1


def test_the_report_as_json_and_csv(cli: Cli) -> None:
    engine = db.make_engine(f"sqlite:///{cli.db}")
    db.migrate(engine)
    with db.session_factory(engine)() as session:
        build_month(session)
    engine.dispose()

    as_json = cli("admin", "report", "--month", "2026-11")
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert {k: figures[k] for k in NOVEMBER} == NOVEMBER

    as_csv = cli("admin", "report", "--month", "2026-11", "--format", "csv")
    assert as_csv.returncode == 0
    assert as_csv.stdout.splitlines() == [
        "month,scope,kiosk,people_reached,loans_started,returns,average_loan_days,alarms,conflicts",
        "2026-11,kiosk,Noord,,,,,2,1",
        "2026-11,kiosk,Zuid,,,,,0,0",
        "2026-11,kiosk,(server),,,,,1,0",
        "2026-11,total,,3,4,2,11.8,3,1",
    ]
    bad = cli("admin", "report", "--month", "11/2026")
    assert bad.returncode == 2 and bad.stderr.startswith("error: a month is YYYY-MM")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_make_admin_token_writes_only_the_hash_mode_0600(cli: Cli) -> None:
    file = cli.cwd / "admin.sha256"
    made = cli("admin", "make-admin-token", str(file), database=False)
    assert made.returncode == 0, made.stderr
    token = _last(made.stdout)
    assert len(token) >= 43
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert file.read_text().strip() == hashlib.sha256(token.encode()).hexdigest()
    assert token not in file.read_text()
    assert not (cli.cwd / "loanserver.db").exists()  # no database opened nor created

    again = cli("admin", "make-admin-token", str(file), database=False)
    assert again.returncode == 1 and "--force" in again.stderr
    assert file.read_text().strip() == hashlib.sha256(token.encode()).hexdigest()
    forced = cli("admin", "make-admin-token", str(file), "--force", database=False)
    assert forced.returncode == 0 and _last(forced.stdout) != token
    assert file.read_text().strip() == hashlib.sha256(_last(forced.stdout).encode()).hexdigest()
    assert sorted(p.name for p in cli.cwd.iterdir()) == ["admin.sha256", "pepper"]  # no temp left

    nowhere = cli("admin", "make-admin-token", str(cli.cwd / "no" / "f"), database=False)
    assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr


@pytest.fixture
def served(cli: Cli) -> Iterator[tuple[str, str]]:
    """``loanserver serve`` on the CLI's database with a token from make-admin-token."""
    token = _last(cli("admin", "make-admin-token", str(cli.cwd / "admin"), database=False).stdout)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANSERVER_")}
    env["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "loanserver", "serve", "--port", str(port)]
    argv += ["--database", f"sqlite:///{cli.db}", "--admin-token-file", str(cli.cwd / "admin")]
    server = subprocess.Popen(argv, cwd=cli.cwd, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "loanserver serve did not answer in time"
            try:
                requests.get(f"{url}/health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


def test_the_cli_token_opens_the_served_back_office_and_commands_reach_the_kiosk(
    cli: Cli, served: tuple[str, str]
) -> None:
    url, token = served
    admin_api = f"{url}/api/v1/admin"
    wrong = requests.post(f"{admin_api}/kiosks", json={"name": "K"}, timeout=5)
    assert wrong.status_code == 401
    made = requests.post(
        f"{admin_api}/kiosks",
        json={"name": "Bib Zuid"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert made.status_code == 201, made.text
    kiosk = {"Authorization": f"Bearer {made.json()['token']}"}

    queued = cli("admin", "command", "Bib Zuid", "open", "2", "--reason", "stuck charger")
    assert queued.returncode == 0, queued.stderr
    beat = requests.post(f"{url}/api/v1/kiosk/heartbeat", json={}, headers=kiosk, timeout=5)
    assert beat.status_code == 200, beat.text
    assert beat.json()["commands"] == [
        {
            "id": int(_last(queued.stdout)),
            "kind": "open",
            "compartment": 2,
            "reason": "stuck charger",
        }
    ]
