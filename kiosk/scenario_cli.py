"""``digibank-kiosk scenario FILE [--json] [--database PATH]``: play a scenario file.

Exit codes: 0 every expectation held; 1 the first one that did not (named with its step
and line); 2 the file is not a valid scenario (every error listed, with did-you-mean).
Output never holds a national number; borrower keys are shortened.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from kiosk.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from kiosk.core.model import JournalEntry
from kiosk.core.ports import StoreError
from kiosk.scenario import Outcome, run_scenario
from kiosk.scenario_format import ScenarioError, load_scenario

# Journal payload fields shown in the text output, in this order.
SHOWN = ("compartment", "purpose", "outcome", "pulses", "kind", "asset_tag", "reason", "staff_id")
KEYS = ("borrower_key",)


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``scenario`` on the top-level parser."""
    scenario = commands.add_parser(
        "scenario", help="run a scenario file against the real core and a simulated cabinet"
    )
    scenario.add_argument("file", metavar="FILE", help="a scenario (TOML, see docs/scenarios.md)")
    scenario.add_argument("--json", action="store_true", help="print one JSON document")
    scenario.add_argument(
        "--database", metavar="PATH", help="keep the SQLite database in this new file"
    )
    scenario.set_defaults(handler=scenario_command)


def scenario_command(args: argparse.Namespace) -> int:
    """Load, run and report one scenario."""
    try:
        scenario = load_scenario(args.file)
    except ScenarioError as exc:
        for line in exc.errors:
            print(f"{exc.source}: {line}", file=sys.stderr)
        return EXIT_USAGE
    if args.database and Path(args.database).exists():
        print(f"error: {args.database} already exists; name a new file", file=sys.stderr)
        return EXIT_USAGE
    began = time.monotonic()
    try:
        outcome = run_scenario(scenario, args.database)
    except StoreError as exc:
        print(f"error: cannot use the database: {exc}", file=sys.stderr)
        return EXIT_USAGE if args.database else EXIT_FAILED
    seconds = time.monotonic() - began
    if args.json:
        print(json.dumps(to_json(outcome, seconds), indent=2))
    else:
        print_text(outcome, seconds)
    if not outcome.ok:
        print(f"{scenario.source}: {outcome.failure}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def short(value: object) -> object:
    """A borrower key cut to 8 characters: enough to tell people apart in a scenario."""
    return f"{value[:8]}…" if isinstance(value, str) and len(value) > 12 else value


def payload(entry: JournalEntry) -> dict[str, Any]:
    """The row's payload with borrower keys shortened."""
    return {k: short(v) if k in KEYS else v for k, v in entry.payload.items()}


def to_json(outcome: Outcome, seconds: float) -> dict[str, Any]:
    """One JSON document: steps with their results, every state, the journal."""
    sc = outcome.scenario
    return {
        "scenario": sc.source,
        "title": sc.title,
        "store": outcome.store_kind,
        "ok": outcome.ok,
        "failure": outcome.failure or None,
        "seconds": round(seconds, 3),
        "steps": [
            {
                "step": r.step.number,
                "line": r.step.line,
                "note": r.step.note or None,
                "action": r.step.action.describe() if r.step.action else None,
                "expect": r.step.expects,
                "states": r.states,
                "ok": not r.failure,
                "failure": r.failure or None,
            }
            for r in outcome.steps
        ],
        "states": outcome.states,
        "journal": [
            {
                "seq": e.seq,
                "kind": e.kind,
                "boot": e.boot,
                "time": e.wall_time.isoformat() if e.wall_time else None,
                "payload": payload(e),
            }
            for e in outcome.journal
        ],
    }


def print_text(outcome: Outcome, seconds: float) -> None:
    """Steps with the screens they passed through, then the journal, then the verdict."""
    sc = outcome.scenario
    print(f"scenario: {sc.title} ({sc.source}, {outcome.store_kind} store)")
    for r in outcome.steps:
        step = r.step
        line = f"line {step.line}" if step.line else ""
        what = step.action.describe() if step.action else "(check)"
        states = " -> ".join(r.states) or "-"
        mark = "FAILED" if r.failure else "ok"
        if step.note:
            print(f"              # {step.note}")
        print(f"{step.number:3} {line:9} {what:32} {states}  [{mark}]")
    print("journal:")
    for e in outcome.journal:
        facts = payload(e)
        shown = " ".join(f"{k}={facts[k]}" for k in SHOWN if facts.get(k) not in (None, ""))
        print(f"  {e.seq:4} {e.kind:20} {shown}")
    if outcome.ok:
        print(f"ok: {len(outcome.steps)} steps, every expectation holds ({seconds:.2f} s)")
    else:
        print(f"FAILED: {outcome.failure}")
