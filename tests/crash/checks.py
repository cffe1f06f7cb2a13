"""The four promises a crash must not break, judged on a ``CrashRun``.

1. No transaction lost: the killed boot's journal holds exactly the rows whose transaction
   was reported committed, in that order (a row reported ``committed`` is there; nothing
   was committed after the last report; a transaction is all or nothing).
2. None duplicated: ``seq`` is 1..N without gaps, UUIDs are unique, an opening has at most
   one outcome or interruption, a reservation is picked up or loaded at most once, a loan
   returned at most once, an opening leads to at most one pickup / return / load /
   unload / staff_open.
3. No door opened by the restart: pulses after the restart's start-up equal those at the
   kill; every opening of the killed boot without an outcome is ``open_interrupted`` by
   the restart, and every pulse the cabinet got has an ``open_requested`` before it.
4. The store agrees with the cabinet: LOADED/RETURNED <=> a device inside, EMPTY <=>
   none, unless the compartment is UNKNOWN/OUT_OF_SERVICE or has an active alarm; an open
   door has an active ``door_left_open`` alarm.

Every check returns a list of problems (empty: kept); ``check_run`` collects them all.
"""

from __future__ import annotations

from collections import Counter

from kiosk.core.model import CompartmentStatus
from tests.crash.harness import Cabinet, CrashRun, StoreState

PROBE_COMPARTMENT = 4  # flows.probe: Bob's pickup after the restart
HOLDS = (CompartmentStatus.LOADED, CompartmentStatus.RETURNED)
EXEMPT = (CompartmentStatus.UNKNOWN, CompartmentStatus.OUT_OF_SERVICE)
ONE_PER_OPENING = ("pickup", "return", "load", "unload", "staff_open", "pickup_abandoned")


def committed_kinds(reported: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Journal kinds the reports say were committed, in order; inconsistencies; and the
    kinds of a last transaction reported ``before_commit`` only (committed or not).

    The store reports ``before_commit`` for each row of a transaction, then COMMITs, then
    reports ``committed`` for each row: the first ``committed`` after a run of
    ``before_commit`` means the whole run was committed (later rows of it may go
    unreported when the kill hits between two ``committed`` reports).
    """
    kinds: list[str] = []
    problems: list[str] = []
    pending: list[str] = []  # before_commit reports of the transaction being written
    awaiting: list[str] = []  # committed reports still due for the last transaction
    for point in reported:
        name = point.rpartition("#")[0]
        if not name.startswith("journal:"):
            continue
        _, kind, phase = name.split(":")
        if phase == "before_commit":
            if awaiting:
                problems.append(f"{point} while {awaiting} were not reported committed")
                awaiting = []
            pending.append(kind)
        elif phase == "committed":
            if pending:
                kinds += pending
                awaiting, pending = pending, []
            if not awaiting or awaiting[0] != kind:
                problems.append(f"{point} reported, but no transaction with that row was due")
            else:
                awaiting.pop(0)
    return kinds, problems, pending


def check_lost(run: CrashRun) -> list[str]:
    """Check 1: each killed boot's journal rows are exactly the committed ones."""
    assert run.state is not None
    problems: list[str] = []
    for kill in run.kills:
        expected, inconsistent, unsure = committed_kinds(kill.reported)
        problems += inconsistent
        actual = [e.kind for e in run.state.journal if e.boot == kill.boot]
        # Killed at a checkpoint, a transaction reported before_commit only never committed;
        # killed after a delay, it may have (the kill fell between COMMIT and the report).
        if kill.timed and unsure and actual == expected + unsure:
            continue
        if actual != expected:
            problems.append(f"boot {kill.boot} journal is {actual}, reports say {expected}")
    return problems


def check_duplicates(state: StoreState) -> list[str]:
    """Check 2: no row, opening, pickup or load twice."""
    problems: list[str] = []
    journal = state.journal
    seqs = [e.seq for e in journal]
    if seqs != list(range(1, len(journal) + 1)):
        problems.append(f"journal seq not 1..{len(journal)}: {seqs}")
    for uuid, n in Counter(e.uuid for e in journal).items():
        if n > 1:
            problems.append(f"uuid {uuid} {n} times")
    ends = Counter(
        e.payload.get("open_id") for e in journal if e.kind in ("open_outcome", "open_interrupted")
    )
    requested = Counter(e.payload.get("open_id") for e in journal if e.kind == "open_requested")
    for counter, what in ((ends, "outcome/interruption"), (requested, "open_requested")):
        problems += [f"{n} {what} rows for opening {k}" for k, n in counter.items() if n > 1]
    finished = Counter(e.payload.get("open_id") for e in journal if e.kind in ONE_PER_OPENING)
    problems += [f"{n} results for opening {k}" for k, n in finished.items() if n > 1]
    for kind, key in (
        ("pickup", "reservation_id"),
        ("load", "reservation_id"),
        ("return", "loan_id"),
    ):
        per = Counter(e.payload.get(key) for e in journal if e.kind == kind and e.payload.get(key))
        problems += [f"{n} {kind} rows for {key} {r}" for r, n in per.items() if n > 1]
    return problems


def check_no_reopen(run: CrashRun) -> list[str]:
    """Check 3: the restart pulsed nothing; cut openings were marked interrupted."""
    assert run.state is not None and run.at_kill is not None and run.after_start is not None
    problems: list[str] = []
    if run.after_start.pulses != run.at_kill.pulses:
        problems.append(
            f"pulses changed by the restart: {run.at_kill.pulses} -> {run.after_start.pulses}"
        )
    journal = run.state.journal
    first = run.kills[0].boot
    ended = {e.payload.get("open_id") for e in journal if e.kind == "open_outcome"}
    ended |= {
        e.payload.get("open_id")
        for e in journal
        if e.kind == "open_interrupted" and e.boot > first  # by a restart, not before
    }
    for entry in journal:
        if entry.kind != "open_requested" or entry.boot != first:
            continue
        open_id = entry.payload.get("open_id")
        if open_id not in ended:
            problems.append(f"opening {open_id} has no outcome and was not marked interrupted")
    if any(e.kind == "open_requested" and e.boot > first for e in journal):
        problems.append("a restart requested an opening before anyone asked for one")
    for number, pulses in run.after_start.pulses.items():
        asked = sum(
            1
            for e in journal
            if e.kind == "open_requested" and e.payload.get("compartment") == number
        )
        # The driver pulses at most twice (one retry) per requested opening.
        if pulses > 2 * asked:
            problems.append(f"compartment {number}: {pulses} pulses for {asked} openings")
    return problems


def check_agrees(state: StoreState, cabinet: Cabinet) -> list[str]:
    """Check 4: the store's compartments match the devices and doors of the cabinet."""
    problems: list[str] = []
    alarmed = {a.compartment for a in state.alarms if a.compartment is not None}
    left_open = {a.compartment for a in state.alarms if a.kind.value == "door_left_open"}
    for c in state.compartments:
        item = cabinet.items.get(c.number)
        if cabinet.doors.get(c.number) and c.number not in left_open:
            problems.append(f"compartment {c.number}: door open, no door_left_open alarm")
        if c.status in EXEMPT or c.number in alarmed:
            continue
        if c.status in HOLDS and not item:
            problems.append(f"compartment {c.number}: store {c.status.value}, cabinet empty")
        if c.status is CompartmentStatus.EMPTY and item:
            problems.append(f"compartment {c.number}: store empty, a device inside")
    return problems


def check_run(run: CrashRun) -> list[str]:
    """Every check on the run; the problems, each prefixed with the check it failed."""
    assert run.state is not None and run.after_start is not None
    problems = [f"lost: {p}" for p in check_lost(run)]
    problems += [f"duplicated: {p}" for p in check_duplicates(run.state)]
    problems += [f"reopened: {p}" for p in check_no_reopen(run)]
    problems += [f"disagrees: {p}" for p in check_agrees(run.state, run.after_start)]
    if run.restart_refused:
        problems.append(f"the restarted kiosk refuses service: {run.restart_refused}")
    if run.final_cabinet is not None and run.at_kill is not None and not run.probe_error:
        # Up to its clean stop, the restarted kiosk pulsed once: the probe's compartment 4.
        expected = {n: p + (n == PROBE_COMPARTMENT) for n, p in run.at_kill.pulses.items()}
        if run.final_cabinet.pulses != expected:
            problems.append(
                f"reopened: pulses at the end {run.final_cabinet.pulses}, expected {expected}"
            )
    if run.final is not None and run.final_cabinet is not None:
        problems += [f"after the probe, duplicated: {p}" for p in check_duplicates(run.final)]
        stale = [
            a.compartment
            for a in run.final.alarms
            if a.kind.value == "door_left_open" and not run.final_cabinet.doors.get(a.compartment)
        ]
        if stale:
            problems.append(f"door_left_open still active for shut doors {stale}")
        problems += [
            f"after the probe, disagrees: {p}" for p in check_agrees(run.final, run.final_cabinet)
        ]
    if run.probe_error:
        problems.append(f"the restarted kiosk does not serve: {run.probe_error}")
    return problems
