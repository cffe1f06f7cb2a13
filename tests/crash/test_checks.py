"""The checks themselves fail when they should: each broken promise, on made-up runs.

No processes here: a ``CrashRun`` is built by hand from a consistent base (a pickup killed
after its outcome was committed), then broken one way at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from kiosk.core.model import Alarm, AlarmKind, Compartment, CompartmentStatus, JournalEntry
from tests.crash.checks import check_run, committed_kinds
from tests.crash.harness import Cabinet, CrashRun, Kill, StoreState

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
REPORTED = [
    "journal:kiosk_started:before_commit#1",
    "journal:kiosk_started:committed#1",
    "journal:open_requested:before_commit#1",
    "journal:open_requested:committed#1",
    "pulse:before#1",
    "pulse:after#1",
]


def _row(seq: int, kind: str, boot: int, **payload: object) -> JournalEntry:
    return JournalEntry(seq=seq, uuid=f"u{seq}", kind=kind, payload=payload, boot=boot)


def _base() -> CrashRun:
    """Killed at pulse:after#1 (door 1 open), restarted: interrupted, alarms, consistent."""
    journal = [
        _row(1, "kiosk_started", 2),
        _row(2, "open_requested", 2, open_id="o1", compartment=1),
        _row(3, "open_interrupted", 3, open_id="o1", compartment=1),
        _row(4, "alarm_raised", 3),
        _row(5, "kiosk_started", 3),
    ]
    compartments = [
        Compartment(1, status=CompartmentStatus.UNKNOWN),
        Compartment(2, status=CompartmentStatus.RETURNED, asset_tag="LAP-7"),
        Compartment(3),
    ]
    alarms = [Alarm("a1", AlarmKind.DOOR_LEFT_OPEN, NOW, compartment=1)]
    cabinet = Cabinet(
        pulses={1: 1, 2: 0, 3: 0},
        items={1: True, 2: True, 3: False},
        doors={1: True, 2: False, 3: False},
    )
    return CrashRun(
        "pickup_eid",
        "pulse:after#1",
        kills=[Kill(2, list(REPORTED))],
        restart_boot=3,
        at_kill=cabinet,
        after_start=cabinet,
        state=StoreState(journal, compartments, alarms),
    )


def _state(run: CrashRun, **changes: object) -> CrashRun:
    assert run.state is not None
    return dataclasses.replace(run, state=dataclasses.replace(run.state, **changes))


def test_a_consistent_run_passes() -> None:
    assert check_run(_base()) == []


def test_committed_kinds_takes_a_transaction_at_its_first_committed_report() -> None:
    reported = [
        "journal:open_outcome:before_commit#1",
        "journal:alarm_raised:before_commit#1",
        "journal:open_outcome:committed#1",  # the kill came here: alarm_raised is in too
    ]
    both = ["open_outcome", "alarm_raised"]
    assert committed_kinds(reported) == (both, [], [])
    assert committed_kinds(reported[:2]) == ([], [], both)  # killed before COMMIT: unsure


def test_a_lost_committed_row_is_caught() -> None:
    run = _base()
    assert run.state is not None
    problems = check_run(_state(run, journal=[e for e in run.state.journal if e.seq != 2]))
    assert any(p.startswith("lost: boot 2 journal") for p in problems), problems


def test_a_row_committed_after_the_last_report_is_caught() -> None:
    run = _base()
    assert run.state is not None
    extra = _row(6, "open_outcome", 2, open_id="o1", compartment=1)
    problems = check_run(_state(run, journal=[*run.state.journal, extra]))
    assert any(p.startswith("lost: boot 2 journal") for p in problems), problems


def test_duplicates_are_caught() -> None:
    run = _base()
    assert run.state is not None
    journal = list(run.state.journal)
    journal[4] = dataclasses.replace(journal[4], uuid="u1")  # a UUID twice
    journal.append(_row(7, "open_interrupted", 3, open_id="o1", compartment=1))  # seq gap
    problems = check_run(_state(run, journal=journal))
    duplicated = [p for p in problems if p.startswith("duplicated:")]
    assert any("uuid u1" in p for p in duplicated), problems
    assert any("seq not" in p for p in duplicated), problems
    assert any("outcome/interruption" in p for p in duplicated), problems


def test_a_pulse_by_the_restart_is_caught() -> None:
    run = _base()
    after = dataclasses.replace(run.after_start, pulses={1: 2, 2: 0, 3: 0})
    problems = check_run(dataclasses.replace(run, after_start=after))
    assert any(p.startswith("reopened: pulses changed") for p in problems), problems


def test_an_opening_neither_finished_nor_interrupted_is_caught() -> None:
    run = _base()
    assert run.state is not None
    journal = [e for e in run.state.journal if e.kind != "open_interrupted"]
    journal = [dataclasses.replace(e, seq=i) for i, e in enumerate(journal, 1)]
    problems = check_run(_state(run, journal=journal))
    assert any("was not marked interrupted" in p for p in problems), problems


def test_a_store_that_disagrees_with_the_cabinet_is_caught() -> None:
    run = _base()
    assert run.state is not None
    compartments = [
        Compartment(1, status=CompartmentStatus.UNKNOWN),
        Compartment(2, status=CompartmentStatus.RETURNED),
        Compartment(3, status=CompartmentStatus.LOADED),  # the cabinet says empty
    ]
    problems = check_run(_state(run, compartments=compartments, alarms=[]))
    assert "disagrees: compartment 3: store loaded, cabinet empty" in problems
    assert "disagrees: compartment 1: door open, no door_left_open alarm" in problems


def test_an_alarm_excuses_a_disagreement() -> None:
    run = _base()
    assert run.state is not None
    compartments = [*run.state.compartments[:2], Compartment(3, status=CompartmentStatus.LOADED)]
    alarms = [*run.state.alarms, Alarm("a2", AlarmKind.ITEM_MISSING, NOW, compartment=3)]
    assert check_run(_state(run, compartments=compartments, alarms=alarms)) == []
