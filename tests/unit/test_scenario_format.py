"""Malformed scenario files are refused as a whole: every error, its step and line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.scenario_format import ScenarioError, parse_duration, parse_scenario

GOOD_HEAD = """
title = "t"
[cabinet]
compartments = 2
[[person]]
name = "ann"
first_name = "Ann"
borrower_key = "ann-key-000000000000000000000000"
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.toml")
    return caught.value.errors


def test_a_good_file_reads() -> None:
    scenario = parse_scenario(GOOD_HEAD + '[[step]]\ninsert_card = "ann"\nexpect_screen = "x"\n')
    assert scenario.title == "t"
    assert [s.number for s in scenario.specs] == [1, 2]
    step = scenario.steps[0]
    assert step.action is not None and step.action.kind == "insert_card"
    assert step.expects == {"expect_screen": "x"}
    assert step.line == 9


def test_unknown_step_key_has_a_did_you_mean_with_step_and_line() -> None:
    errors = errors_of(GOOD_HEAD + '[[step]]\ntap = "ok"\n\n[[step]]\nexpect_screan = "idle"\n')
    assert errors == [
        "step 2 (line 12): expect_screan: unknown key (did you mean 'expect_screen'?)"
    ]


def test_unknown_action_is_reported_with_the_closest_action() -> None:
    errors = errors_of(GOOD_HEAD + "[[step]]\nclose_dor = 1\n")
    assert errors == ["step 1 (line 9): close_dor: unknown key (did you mean 'close_door'?)"]


def test_every_error_is_listed_at_once() -> None:
    text = GOOD_HEAD + '[cabinit]\n[[step]]\ntap = "ok"\nscan = "x"\n[[step]]\nwait = "soon"\n'
    errors = errors_of(text)
    assert "step 1 (line 10): tap and scan: one action per step" in errors
    assert any(
        e.startswith("step 2 (line 13): wait: expected seconds or a duration") for e in errors
    )
    assert any(e.startswith("cabinit: unknown key") for e in errors)


def test_a_key_of_another_action_is_out_of_place() -> None:
    errors = errors_of(GOOD_HEAD + '[[step]]\nscan = "LAP-1"\nchoose = "LAP"\n')
    assert errors == ["step 1 (line 9): choose: does not go with this step's action"]


def test_unknown_person_and_compartment() -> None:
    text = GOOD_HEAD + '[[step]]\ninsert_card = "anne"\n[[step]]\nopen_door = 7\n'
    errors = errors_of(text)
    assert (
        "step 1 (line 9): insert_card: no [[person]] named 'anne' (did you mean 'ann'?)" in errors
    )
    assert "step 2 (line 11): open_door: the cabinet has no compartment 7" in errors


def test_bad_fault_and_missing_compartment_of_a_jam() -> None:
    errors = errors_of(GOOD_HEAD + '[[step]]\nfault = "jamed"\n[[step]]\nfault = "jam"\n')
    assert any("fault: 'jamed' is not one of" in e and "did you mean 'jam'?" in e for e in errors)
    assert "step 2 (line 11): compartment: missing; expected a whole number" in errors


def test_setup_errors_name_their_table() -> None:
    text = """
[cabinet]
compartments = 0
size = "XL"
[flows]
idle_timeout_ms = 1
[[reservation]]
id = "R1"
asset_tag = "A"
borrower = "nobody"
compartment = 9
[[step]]
wait = 1
"""
    errors = errors_of(text)
    assert "cabinet.compartments: 0 is out of range 1-64" in errors
    assert any(e.startswith("cabinet.size: 'XL' is not one of") for e in errors)
    assert "flows.idle_timeout_ms: 1.0 is out of range 10000-600000" in errors
    assert "reservation[0].borrower: no [[person]] named 'nobody'" in errors
    assert "reservation[0].compartment: the cabinet has no compartment 9" in errors


def test_expectation_values_are_checked() -> None:
    text = GOOD_HEAD + '[[step]]\nexpect_alarms = "jammed"\nexpect_pulses = { 5 = 1 }\n'
    errors = errors_of(text)
    assert any(
        e.startswith("step 1 (line 9): expect_alarms: expected a list of text") for e in errors
    )
    assert "step 1 (line 9): expect_pulses.5: not a compartment" in errors


def test_hooks_take_one_world_action() -> None:
    errors = errors_of(GOOD_HEAD + '[[step]]\ntap = "open"\nafter_pulse = { wait = 3 }\n')
    assert any("after_pulse" in e and "one of open_door" in e for e in errors)


def test_not_toml_and_no_steps() -> None:
    assert errors_of("[[step]\n")[0].startswith("not valid TOML")
    assert errors_of(GOOD_HEAD) == [
        "step: no [[step]] in the file: a scenario needs at least one step"
    ]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30.0), (2.5, 2.5), ("90 s", 90.0), ("5 min", 300.0), ("2h", 7200.0), ("1 day", 86400.0)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [-1, "soon", "5 weeks", True, [1]])
def test_bad_durations(value: object) -> None:
    assert parse_duration(value) is None


def test_cli_exit_2_lists_errors_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[step]]\ntapp = "open"\n[[step]]\nrestart = false\n')
    assert main(["scenario", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}: step 1 (line 1): tapp: unknown key (did you mean 'tap'?)",
        f"{path}: step 2 (line 3): restart: write true (or leave the key out)",
    ]


def test_cli_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_a_card_can_be_given_in_the_step() -> None:
    text = GOOD_HEAD + '[[step]]\ninsert_card = { national_number = "66.06.06-123.45" }\n'
    scenario = parse_scenario(text)
    action = scenario.steps[0].action
    assert action is not None and action.kind == "insert_card"
    person = scenario.persons[action.value]
    assert person.national_number == "66.06.06-123.45" and len(person.key) == 64


def test_a_card_in_the_step_needs_a_number_or_key() -> None:
    errors = errors_of(GOOD_HEAD + '[[step]]\ninsert_card = { first_name = "Zoë", nn = "1" }\n')
    assert (
        "step 1 (line 9): insert_card: give national_number or borrower_key (one of them)" in errors
    )
    assert any(e.startswith("step 1 (line 9): insert_card.nn: unknown key") for e in errors)


def test_card_valid_until_must_be_a_date() -> None:
    text = GOOD_HEAD.replace('first_name = "Ann"', 'first_name = "Ann"\ncard_valid_until = "soon"')
    errors = errors_of(text + '[[step]]\ninsert_card = "ann"\n')
    assert errors == ["person[0].card_valid_until: expected a date like 2026-01-31, got 'soon'"]
