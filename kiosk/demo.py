"""``digibank-kiosk demo``: the cabinet end to end on the built-in board emulator.

The real serial driver talks over a real pseudo-terminal to emulated lock boards. On a
terminal it is interactive (type ``help``); otherwise it plays a short tour: a pickup,
a forced door, a stuck lock and a board losing power; then "a day at the kiosk"
(``config/demo-story.toml``) played by the real kiosk core through the scenario runner;
then the same kind of day with an embedded loan server (``demo_with_server``: ``loanserver
serve`` in a child process, set up with ``loanserver admin``, the kiosk's sync link on).
``--parts`` picks the parts. (The touchscreen UI replaces this as ``make run`` once it
exists.)
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING

from hardware.errors import HardwareError
from hardware.locker.base import (
    BoardOffline,
    BoardOnline,
    DoorClosed,
    DoorForced,
    DoorOpened,
    DoorSensorFault,
    DoorSensorOk,
    ItemChanged,
    Locker,
    LockerEvent,
)
from kiosk import bootstrap, logs
from kiosk.locker_cli import describe_open, explain, status_text
from kiosk.settings import DEMO_CONFIG, EMULATOR_PORT, Settings, load_settings

if TYPE_CHECKING:
    from hardware.locker.emulator import BoardEmulator

DEMO_STORY = DEMO_CONFIG.parent / "demo-story.toml"
SERVER_STORY = DEMO_CONFIG.parent / "demo-server-story.toml"
PARTS = ("tour", "story", "server")  # the cabinet tour, a day at the kiosk, with the server

HELP = """commands:
  status            read the cabinet
  open N            open compartment N (as the kiosk would for a resident)
  close N           the resident closes door N
  force N           someone forces door N open
  take N / put N    take the laptop out of N / put one in
  jam N / free N    lock N gets stuck / works again
  off B / on B      board B loses power / gets it back
  quit"""


def add_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``demo`` on the top-level parser."""
    demo = commands.add_parser("demo", help="the cabinet end to end on emulated lock boards")
    demo.add_argument(
        "--config",
        metavar="FILE",
        default=str(DEMO_CONFIG),
        help='a configuration whose buses use port = "emulator"',
    )
    demo.add_argument(
        "--tour", action="store_true", help="play the scripted tour even on a terminal"
    )
    demo.add_argument(
        "--story",
        metavar="FILE",
        default=str(DEMO_STORY),
        help="the kiosk story played after the tour (a scenario, see docs/scenarios.md)",
    )
    demo.add_argument(
        "--server-story",
        metavar="FILE",
        default=str(SERVER_STORY),
        help="the story played with the embedded loan server (part three)",
    )
    demo.add_argument(
        "--parts",
        metavar="LIST",
        default=",".join(PARTS),
        type=_parts,
        help=f"comma-separated parts to play, of {', '.join(PARTS)} (default: all)",
    )
    demo.set_defaults(handler=demo_command)


def _parts(text: str) -> tuple[str, ...]:
    """``tour,server`` -> the parts, or a usage error (exit 2) naming the unknown one."""
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise argparse.ArgumentTypeError(
            f"unknown part {unknown[0]!r}" if unknown else "no part given"
        )
    return parts


class Demo:
    """The locker plus the emulated world around it."""

    def __init__(self, settings: Settings, locker: Locker, emulators: dict[str, BoardEmulator]):
        self.settings = settings
        self.locker = locker
        self.emulators = emulators
        self.specs = {c.number: c for c in settings.locker.compartments}

    def where(self, number: int) -> tuple[BoardEmulator, int, int]:
        """The emulator, board address and channel of compartment ``number``."""
        spec = self.specs.get(number)
        if spec is None or spec.bus not in self.emulators:
            raise ValueError(f"no emulated compartment {number}")
        return self.emulators[spec.bus], spec.board or 0, spec.channel or 1

    def board(self, address: int) -> BoardEmulator:
        """The emulator that has board ``address``."""
        for spec in self.specs.values():
            if spec.board == address and spec.bus in self.emulators:
                return self.emulators[spec.bus]
        raise ValueError(f"no emulated board {address}")

    def open(self, number: int) -> None:
        """Open a compartment as the kiosk would."""
        result = self.locker.open(number, f"demo-{uuid.uuid4()}")
        line = describe_open(result)
        if result.outcome.value in ("jammed", "board_offline"):
            line += f": {explain(result)}"
        say(line)

    def run(self, line: str) -> bool:
        """Carry out one typed command; False on quit."""
        words = line.split()
        if not words:
            return True
        verb, args = words[0].lower(), words[1:]
        if verb in ("quit", "exit", "q"):
            return False
        if (
            verb == "help"
            or (verb != "status" and len(args) != 1)
            or not all(a.isdigit() for a in args)
        ):
            say(HELP)
            return True
        if verb == "status":
            say(status_text(self.settings.locker, self.locker.refresh()))
            return True
        number = int(args[0])
        actions: dict[str, Callable[[int], None]] = {
            "open": self.open,
            "close": lambda n: self._world(n, lambda e, a, c: e.close_door(a, c)),
            "force": lambda n: self._world(n, lambda e, a, c: e.open_door(a, c)),
            "take": lambda n: self._world(n, lambda e, a, c: e.set_item(a, c, False)),
            "put": lambda n: self._world(n, lambda e, a, c: e.set_item(a, c, True)),
            "jam": lambda n: self._world(n, lambda e, a, c: e.jam(a, c, True)),
            "free": lambda n: self._world(n, lambda e, a, c: e.jam(a, c, False)),
            "off": lambda b: self.board(b).set_offline(b, True),
            "on": lambda b: self.board(b).set_offline(b, False),
        }
        action = actions.get(verb)
        if action is None:
            say(HELP)
            return True
        try:
            action(number)
        except (ValueError, HardwareError) as exc:
            say(f"error: {exc}")
        return True

    def _world(self, number: int, change: Callable[[BoardEmulator, int, int], None]) -> None:
        emulator, address, channel = self.where(number)
        change(emulator, address, channel)


_STARTED = time.monotonic()


def say(text: str) -> None:
    """Print a demo line (flushed: the demo is often piped)."""
    print(text, flush=True)


def show_event(event: LockerEvent) -> None:
    """Print a locker event the way a librarian would want to read it."""
    stamp = f"[{event.at - _STARTED:7.2f}s]"
    texts = {
        DoorOpened: lambda e: f"door {e.compartment} opened",
        DoorClosed: lambda e: f"door {e.compartment} closed",
        DoorForced: lambda e: f"ALARM: door {e.compartment} opened without a command",
        ItemChanged: lambda e: (
            f"compartment {e.compartment}: " + ("laptop inside" if e.present else "empty")
        ),
        BoardOffline: lambda e: f"ALARM: board {e.address} not answering ({e.reason})",
        BoardOnline: lambda e: f"board {e.address} answering",
        DoorSensorFault: lambda e: (
            f"ALARM: door sensor {e.compartment} unreliable "
            f"({e.changes} changes in a short time); its door now reads unknown"
        ),
        DoorSensorOk: lambda e: f"door sensor {e.compartment} steady again ({e.door.value})",
    }
    text = texts.get(type(event), repr)(event)
    say(f"  {stamp} event: {text}")


TOUR = [
    ("A resident picks up the laptop reserved in compartment 3.", ["open 3"]),
    ("They take it out and close the door.", ["take 3", "close 3"]),
    ("Someone pulls door 5 open without a command.", ["force 5", "close 5"]),
    ("The lock of compartment 7 is stuck.", ["jam 7", "open 7", "free 7"]),
    ("Board 1 (compartments 9-16) loses power.", ["off 1", "open 9"]),
    ("Power is back.", ["on 1"]),
    ("The cabinet now:", ["status"]),
]


def demo_command(args: argparse.Namespace) -> int:
    """Start the emulated cabinet and run the tour or the interactive prompt."""
    settings = load_settings(args.config)
    if not args.log_level:
        logs.configure(settings.logging.level)
    if settings.locker.driver != "serial" or any(
        b.port != EMULATOR_PORT for b in settings.locker.buses
    ):
        say(
            f"error: {args.config}: the demo needs a serial cabinet whose ports are "
            f'"{EMULATOR_PORT}"'
        )
        return 2
    interactive = sys.stdin.isatty() and not args.tour
    if interactive or "tour" in args.parts:
        _cabinet(settings, interactive)
    if interactive:
        return 0
    code = 0
    if "story" in args.parts:
        code = play_story(args.story)
    if "server" in args.parts and code == 0:
        from kiosk.demo_with_server import play_with_server  # the sync link's imports

        code = play_with_server(args.server_story)
    return code


def _cabinet(settings: Settings, interactive: bool) -> None:
    """Part one: the emulated cabinet, interactive or the scripted tour."""
    with ExitStack() as stack:
        emulators: dict[str, BoardEmulator] = {}
        locker = bootstrap.start_locker(settings.locker, stack, emulators)
        demo = Demo(settings, locker, emulators)
        for emulator, address, channel in (demo.where(n) for n in demo.specs):
            emulator.set_item(address, channel, True)  # every compartment loaded
        ports = ", ".join(e.url for e in emulators.values())
        say(
            f"digibank-kiosk demo: {len(demo.specs)} compartments on emulated lock boards "
            f"({ports}), driven by the real serial driver"
        )
        say(status_text(settings.locker, locker.refresh()))
        stack.callback(locker.subscribe(show_event))
        if interactive:
            say("type 'help' for commands")
            _interactive(demo)
        else:
            _tour(demo)


def play_story(path: str) -> int:
    """Part two of the tour: a day at the kiosk, played by the real core on a scenario."""
    from kiosk.scenario import run_scenario
    from kiosk.scenario_cli import print_text
    from kiosk.scenario_format import load_scenario

    say("\n== A day at the kiosk: the real kiosk core, SQLite store and journal, with a")
    say("   simulated cabinet and eID reader (" + path + ")")
    began = time.monotonic()
    outcome = run_scenario(load_scenario(path))
    print_text(outcome, time.monotonic() - began)
    return 0 if outcome.ok else 1


def _tour(demo: Demo) -> None:
    for caption, commands in TOUR:
        say(f"\n== {caption}")
        for command in commands:
            say(f"> {command}")
            demo.run(command)
            if command.startswith(("off", "on")):
                _settle(demo.settings.locker.poll.interval_s * 5)
            else:
                _settle(demo.settings.locker.poll.interval_s * 3)


def _settle(seconds: float) -> None:
    threading.Event().wait(seconds)  # give the poller time to report what happened


def _interactive(demo: Demo) -> None:
    while True:
        try:
            line = input("cabinet> ")
        except EOFError:
            return
        if not demo.run(line):
            return
