"""Part three of ``digibank-kiosk demo``: a day at the kiosk with an embedded loan server.

``loanserver serve`` runs as a child process on a free 127.0.0.1 port with a SQLite
database in a temporary directory (``demo_server``); the back office sets up a kiosk,
devices, borrowers, staff and reservations with ``loanserver admin``; the kiosk plays
``config/demo-server-story.toml`` with its sync link on (``demo_synced``), and the demo
prints what the server says (open loans as they change, the month's report). The server
is stopped on every way out: the end, a failure, Ctrl-C, SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from kiosk.core.model import ReservationStatus
from kiosk.demo_server import LoanServerProcess, ServerError
from kiosk.demo_synced import (
    SyncedRunner,
    run_synced,
    service_link,
    set_up_story,
    today_at_eight,
)
from kiosk.scenario_checks import StepFailed
from kiosk.scenario_cli import print_text
from kiosk.scenario_format import PEPPER, Scenario, ScenarioError, Step, load_scenario

SERVER_STORY = Path(__file__).resolve().parent.parent / "config" / "demo-server-story.toml"
SETUP_WORKERS = 4  # admin commands side by side: each is an interpreter start
WATCHED = ("pickup", "return")  # journal kinds the demo tells about as they reach the server
OPEN_RESERVATIONS = (ReservationStatus.REQUESTED, ReservationStatus.LOADED)


def say(text: str) -> None:
    """Print a demo line (flushed: the demo is often piped)."""
    print(text, flush=True)


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C does: through every ``finally`` (the server stops)."""

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, _exit)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def show_loans(server: LoanServerProcess) -> None:
    """Print ``loanserver admin loans``, indented."""
    say("   $ loanserver admin loans")
    for line in server.admin("loans").rstrip().splitlines():
        say(f"      {line}")


class LoanWatcher:
    """After each step: say when a pickup or return reached the server, and show the
    server's open loans once every reservation is out and once every device is back
    (each ``loanserver admin`` call is an interpreter start: two, not one per event)."""

    def __init__(self, server: LoanServerProcess) -> None:
        self.server = server
        self.seen = 0  # watched journal rows already told

    def __call__(self, step: Step, runner: SyncedRunner) -> None:
        rows = [r for r in runner.store.journal_entries() if r.kind in WATCHED]
        if len(rows) == self.seen:
            return
        self.seen = len(rows)
        last = rows[-1]
        say(
            f"   after step {step.number}: the {last.kind} of {last.payload.get('asset_tag')} "
            "reached the server"
        )
        with runner.store.reading() as tx:  # the cache, just pulled from the server
            waiting = tx.reservations(statuses=OPEN_RESERVATIONS)
            out = tx.loans()
        if (last.kind == "pickup" and not waiting) or (last.kind == "return" and not out):
            show_loans(self.server)


def play_with_server(path: str | Path = SERVER_STORY) -> int:
    """Run part three; 0 when the story held and the server agrees, 1 when not, 2 on bad input."""
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        print(f"error: {exc}: {exc.errors[0] if exc.errors else ''}", file=sys.stderr)
        return 2
    say("\n== The same kind of day with the loan server: `loanserver serve` in a child process")
    say("   (SQLite in a temporary directory), set up with `loanserver admin`; the kiosk")
    say(f"   syncs over HTTP after every step ({path})")
    began = time.monotonic()
    try:
        with sigterm_as_exit(), LoanServerProcess(PEPPER) as server:
            ok = _play(server, scenario, began)
    except (ServerError, StepFailed) as exc:  # no server, or it failed the first sync
        print(f"error: {exc}", file=sys.stderr)
        return 1
    say(f"   loan server stopped ({time.monotonic() - began:.1f} s for this part)")
    return 0 if ok else 1


def _play(server: LoanServerProcess, scenario: Scenario, began: float) -> bool:
    """Set up, play, show the server's view; True when every expectation held."""
    say(f"   loan server at {server.url}: {json.dumps(server.health())}, data in {server.dir}")

    def admin(*args: str) -> str:
        shown = ["***" if prev == "--national-number" else a for prev, a in _pairs(args)]
        say(f"   $ loanserver admin {' '.join(shown)}")
        return server.admin_last(*args)

    setup = set_up_story(admin, scenario, workers=SETUP_WORKERS)
    say(
        f"   the kiosk's token and {len(setup.codes)} pickup codes were printed once "
        "(not shown here); the kiosk now pulls the reservations and the staff list"
    )
    watcher = LoanWatcher(server)
    start = today_at_eight()  # the kiosk's day: the report is for its month
    outcome = run_synced(
        scenario,
        service_link(server.url, setup.token),
        codes=setup.codes,
        after_step=watcher,
        start=start,
    )
    print_text(outcome, time.monotonic() - began)
    month = start.strftime("%Y-%m")
    say(f"\n== What the loan server says at the end (report for {month}):")
    say(f"   $ loanserver admin report --month {month} --format json")
    report = json.loads(server.admin("report", "--month", month, "--format", "json"))
    for key in ("people_reached", "loans_started", "returns", "average_loan_days"):
        say(f"      {key}: {report.get(key)}")
    return outcome.ok


def _pairs(args: tuple[str, ...]) -> list[tuple[str, str]]:
    """Each argument with the one before it (to hide the value after --national-number)."""
    return list(zip(("", *args[:-1]), args, strict=True))
