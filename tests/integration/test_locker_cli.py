"""The installer commands, run as a person runs them: a subprocess against a board
emulator on a real pseudo-terminal."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from hardware.locker.emulator import BoardEmulator
from hardware.locker.layout import Feedback


def run(
    *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cu_boards() -> Iterator[BoardEmulator]:
    with BoardEmulator("cu", [0, 1], channels=16) as emulator:
        emulator.start_pty()
        yield emulator


def fast_config(
    tmp_path: Path,
    port: str,
    family: str = "cu",
    boards: str = "[0, 1]",
    feedback: str = "closed_when_set",
    channels: int = 4,
) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(f"""
[locker]
driver = "serial"
[locker.open]
watch_ms = 400
cooldown_ms = 200
[locker.poll]
interval_ms = 30
[[locker.buses]]
port = "{port}"
family = "{family}"
boards = {boards}
channels = {channels}
feedback = "{feedback}"
""")
    return path


def test_config_check_good_and_bad(tmp_path: Path) -> None:
    good = run("config", "check", "config/kiosk.example.toml")
    assert good.returncode == 0, good.stderr
    assert "ok: kiosk 'digibank-kiosk', serial cabinet with 2 compartments" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[locker]\ndriver = "serial"\nbogus = 1\n[[locker.buses]]\nport = "x"\n'
        "boards = [0]\nchannels = 17\n"
    )
    result = run("config", "check", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert f"{bad}: locker.bogus: unknown key" in lines
    assert f"{bad}: locker.buses[0].channels: 17 is out of range 1-16" in lines
    assert "Traceback" not in result.stderr


def test_status_json_is_exactly_the_documented_shape(cu_boards: BoardEmulator) -> None:
    cu_boards.open_door(1, 1)
    cu_boards.set_item(0, 2, True)
    result = run(
        "locker", "status", "--port", cu_boards.url, "--family", "cu", "--boards", "0,1", "--json"
    )
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["boards"] == [
        {"port": cu_boards.url, "address": 0, "online": True},
        {"port": cu_boards.url, "address": 1, "online": True},
    ]
    assert len(status["compartments"]) == 32
    first, second = status["compartments"][0], status["compartments"][1]
    assert first == {"number": 1, "board": 0, "channel": 1, "door": "closed", "item": None}
    assert second["door"] == "closed"
    # board 1 channel 1 is compartment 17, and its door was opened by hand
    assert status["compartments"][16] == {
        "number": 17,
        "board": 1,
        "channel": 1,
        "door": "open",
        "item": None,
    }


def test_status_with_a_silent_board(cu_boards: BoardEmulator) -> None:
    cu_boards.set_offline(1)
    result = run(
        "locker", "status", "--port", cu_boards.url, "--family", "cu", "--boards", "0,1", "--json"
    )
    assert result.returncode == 3
    status = json.loads(result.stdout)
    assert [b["online"] for b in status["boards"]] == [True, False]
    assert {c["door"] for c in status["compartments"] if c["board"] == 1} == {"unknown"}
    assert result.stderr.strip() == f"error: board 1 on {cu_boards.url} did not answer"


def test_open_prints_outcome_and_time(cu_boards: BoardEmulator) -> None:
    result = run(
        "locker",
        "open",
        "5",
        "--port",
        cu_boards.url,
        "--family",
        "cu",
        "--boards",
        "0,1",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["number"] == 5 and outcome["outcome"] == "opened"
    assert 0 < outcome["ms"] < 4000
    assert cu_boards.pulses(0, 5) == 1 and cu_boards.door_open(0, 5)


def test_open_jammed_exits_non_zero(cu_boards: BoardEmulator, tmp_path: Path) -> None:
    cu_boards.jam(0, 2)
    config = fast_config(tmp_path, cu_boards.url)
    result = run("locker", "open", "2", "--config", str(config))
    assert result.returncode == 1
    assert result.stdout.startswith("compartment 2: jammed (2 pulses")
    assert "never read open" in result.stderr
    assert cu_boards.pulses(0, 2) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "/dev/ttyNOPE9", "--family", "cu", "--boards", "0"], "/dev/ttyNOPE9"),
        (["--port", "/dev/null", "--boards", "x"], "expected numbers like 0,1"),
        (
            ["--port", "/dev/ttyS0", "--family", "8a", "--boards", "0"],
            "--boards[0]: 0 is out of range 1-31 for 8a boards",
        ),
        (["--config", "nope.toml", "--port", "/dev/ttyS0"], "either --config or --port"),
        (["--family", "cu"], "need --port"),
    ],
)
def test_bad_arguments_and_ports_give_one_clear_line(args: list[str], message: str) -> None:
    result = run("locker", "status", *args)
    assert result.returncode in (2, 3)
    # one line says what is wrong (argparse shows its usage lines before it)
    assert message in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_port_busy(cu_boards: BoardEmulator) -> None:
    with serial.Serial(cu_boards.url, 19200, exclusive=True):
        result = run("locker", "status", "--port", cu_boards.url, "--boards", "0")
    assert result.returncode == 3
    assert "busy" in result.stderr.lower() or "in use" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def _close_doors_behind_the_installer(emulator: BoardEmulator, stop: threading.Event) -> None:
    """The installer's hands: every door that opens is shut again a moment later."""
    while not stop.is_set():
        for address in (0, 1):
            for channel in range(1, 5):
                if emulator.door_open(address, channel):
                    time.sleep(0.05)
                    emulator.close_door(address, channel)
        stop.wait(0.02)


def test_locker_test_finds_dead_channel_and_swapped_wiring(
    cu_boards: BoardEmulator, tmp_path: Path
) -> None:
    config = fast_config(tmp_path, cu_boards.url, boards="[0]")
    cu_boards.jam(0, 3)  # compartment 3: nothing opens
    stop = threading.Event()
    hands = threading.Thread(target=_close_doors_behind_the_installer, args=(cu_boards, stop))
    hands.start()
    try:
        # 1: fine; 2: the person saw door 4 open; 3: nothing opened; 4: fine
        answers = "\n\n4\n\n0\n\n\n"
        result = run("locker", "test", "--config", str(config), "--ask", stdin=answers)
    finally:
        stop.set()
        hands.join(5)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "summary: 2 of 4 compartments fine" in result.stdout
    assert "compartment 2: its channel opens compartment 4: wiring swapped" in result.stdout
    assert "compartment 3: no door opened: dead channel, lock or lock wiring" in result.stdout


def test_locker_test_spots_inverted_polarity(tmp_path: Path) -> None:
    with BoardEmulator("8a", [1], channels=8, feedback=Feedback.OPEN_WHEN_SET) as emulator:
        emulator.start_pty()
        config = fast_config(
            tmp_path, emulator.url, family="8a", boards="[1]", feedback="closed_when_set"
        )
        result = run("locker", "test", "--config", str(config), "--no-ask")
    assert result.returncode == 1
    assert "feedback polarity is probably inverted" in result.stdout
    assert 'set feedback = "open_when_set"' in result.stdout


def test_demo_tour_shows_the_cabinet_end_to_end() -> None:
    result = run("demo", "--tour", timeout=90)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "compartment 3: opened" in out
    assert "event: door 3 opened" in out
    assert "event: compartment 3: empty" in out
    assert "event: door 3 closed" in out
    assert "ALARM: door 5 opened without a command" in out
    assert "compartment 7: jammed (2 pulses" in out
    assert "ALARM: board 1 not answering" in out
    assert "compartment 9: board_offline" in out
    assert "event: board 1 answering" in out
    # Part two: a day at the kiosk, played by the real core (config/demo-story.toml).
    assert "A day at the kiosk" in out
    assert "pickup_done (pickup.done)" in out
    assert "return_done (return.done)" in out
    assert "every expectation holds" in out
