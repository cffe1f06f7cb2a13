"""Every scenario in tests/scenarios runs green through the runner; the CLI reports like it says.

The scenarios are the flow tests (see docs/scenarios.md): each file is one test here. A
scenario that shows a core bug is listed in ``CORE_BUGS`` (strict xfail) with the reason,
and described in full where the core's author reads it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.scenario import run_scenario
from kiosk.scenario_format import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
FILES = sorted(SCENARIOS.glob("*.toml"))

# file name -> why it fails today (a core bug: the scenario expects the right behaviour)
CORE_BUGS: dict[str, str] = {}


def _param(path: Path) -> object:
    reason = CORE_BUGS.get(path.name)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, id=path.stem, marks=marks)


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m kiosk ARGS`` as a person runs it."""
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_there_are_scenarios() -> None:
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", [_param(p) for p in FILES])
def test_scenario(path: Path) -> None:
    began = time.monotonic()
    outcome = run_scenario(load_scenario(path))
    assert outcome.ok, outcome.failure
    assert time.monotonic() - began < 5.0  # watch times are real time: keep them small


def test_cli_text_output_shows_states_and_journal() -> None:
    done = run_cli("scenario", str(SCENARIOS / "pickup_eid.toml"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "choose_reservation (pickup.choose)" in out
    assert "opening (opening) -> take_item (pickup.take)" in out
    assert "journal:" in out and "pickup" in out
    assert "every expectation holds" in out
    assert "85073003328" not in out  # the national number never leaves the card reader


def test_cli_json_document() -> None:
    done = run_cli("scenario", "--json", str(SCENARIOS / "return_eid.toml"))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True and doc["failure"] is None
    assert [s["step"] for s in doc["steps"]] == list(range(1, len(doc["steps"]) + 1))
    assert all(s["ok"] for s in doc["steps"])
    assert "place_item (return.place)" in doc["states"]
    kinds = [row["kind"] for row in doc["journal"]]
    assert kinds[0] == "kiosk_started" and "return" in kinds
    keys = [row["payload"]["borrower_key"] for row in doc["journal"] if row["kind"] == "return"]
    assert keys and all(key.endswith("…") and len(key) == 9 for key in keys)
    assert "85073003328" not in done.stdout


def test_cli_first_failing_expectation_exits_1_naming_step_and_line(tmp_path: Path) -> None:
    text = (SCENARIOS / "pickup_jammed.toml").read_text()
    bad = tmp_path / "jammed.toml"
    bad.write_text(text.replace("expect_pulses = { 2 = 2 }", "expect_pulses = { 2 = 1 }", 1))
    line = next(n for n, row in enumerate(bad.read_text().splitlines(), 1) if "{ 2 = 1 }" in row)
    step_line = max(
        n
        for n, row in enumerate(bad.read_text().splitlines(), 1)
        if row.startswith("[[step]]") and n < line
    )
    done = run_cli("scenario", str(bad))
    assert done.returncode == 1
    assert f"step 3 (line {step_line}): expected pulses on compartment 2: 1, saw 2" in done.stderr
    assert "FAILED" in done.stdout
    assert "tap open" in done.stdout  # the steps up to the failure are shown
    assert "[ok]" not in done.stdout.split("FAILED")[-1]  # nothing after the failure ran


def test_cli_malformed_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\ntapp = "open"\n')
    done = run_cli("scenario", str(bad))
    assert done.returncode == 2
    assert "step 1 (line 1): tapp: unknown key (did you mean 'tap'?)" in done.stderr
    assert done.stdout == ""


def test_cli_database_is_kept_and_never_overwritten(tmp_path: Path) -> None:
    database = tmp_path / "kiosk.db"
    done = run_cli("scenario", "--database", str(database), str(SCENARIOS / "return_scan.toml"))
    assert done.returncode == 0, done.stderr
    assert database.stat().st_size > 0
    again = run_cli("scenario", "--database", str(database), str(SCENARIOS / "return_scan.toml"))
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_the_example_in_the_documentation_runs(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"
    text = docs.read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.toml"
    path.write_text(example)
    outcome = run_scenario(load_scenario(path))
    assert outcome.ok, outcome.failure
    assert len(outcome.steps) == 5


def test_database_in_a_missing_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kiosk.cli import main

    database = tmp_path / "missing" / "kiosk.db"
    assert main(["scenario", "--database", str(database), str(FILES[0])]) == 2
    assert "cannot use the database" in capsys.readouterr().err
