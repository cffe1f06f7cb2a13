"""Installer commands for the cabinet: ``locker status|open|test|emulate``.

They build the locker through ``kiosk.bootstrap`` from a config file, from
``--port/--family/--boards`` flags, or (neither given) from the demo configuration.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import uuid
from contextlib import ExitStack
from typing import Any

from hardware.locker.base import LockerState, OpenOutcome, OpenResult
from hardware.locker.codecs import families
from hardware.locker.layout import CabinetSpec, Feedback
from kiosk import bootstrap, locker_test, logs
from kiosk.cli import EXIT_FAILED, EXIT_HARDWARE, EXIT_OK, UsageError
from kiosk.settings import DEMO_CONFIG, ConfigError, Settings, load_settings, parse_settings

# Outcomes after which the installer has an open door in front of them.
GOOD_OUTCOMES = (OpenOutcome.OPENED, OpenOutcome.ALREADY_OPEN, OpenOutcome.UNCONFIRMED)

# Key paths of the settings built from flags, and the flag an installer typed.
_FLAG_OF = {
    "locker.buses[0].port": "--port",
    "locker.buses[0].family": "--family",
    "locker.buses[0].boards": "--boards",
    "locker.buses[0].baud": "--baud",
    "locker.buses[0].feedback": "--feedback",
    "locker.buses[0].channels": "--channels",
}


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``locker ...`` on the top-level parser."""
    locker = commands.add_parser("locker", help="check and drive the cabinet's locks")
    actions = locker.add_subparsers(title="locker commands", metavar="ACTION")

    status = actions.add_parser("status", help="read every door, item sensor and board")
    _cabinet_args(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=status_command)

    open_ = actions.add_parser("open", help="open one compartment and report what the door did")
    open_.add_argument("number", type=int, metavar="N", help="compartment number")
    _cabinet_args(open_)
    open_.add_argument("--json", action="store_true", help="print JSON")
    open_.set_defaults(handler=open_command)

    test = actions.add_parser("test", help="open every compartment in turn and check the wiring")
    _cabinet_args(test)
    test.add_argument("--only", type=_numbers, metavar="N,M", help="test these compartments only")
    asking = test.add_mutually_exclusive_group()
    asking.add_argument(
        "--ask",
        dest="ask",
        action="store_true",
        default=None,
        help="ask the installer about each door (default when on a terminal)",
    )
    asking.add_argument(
        "--no-ask", dest="ask", action="store_false", help="trust the sensors only, ask nothing"
    )
    test.set_defaults(handler=locker_test.test_command)

    emulate = actions.add_parser("emulate", help="run a lock-board emulator (for demos and tests)")
    emulate.add_argument("--family", choices=families(), default="cu")
    emulate.add_argument("--boards", type=_numbers, default=None, metavar="A,B")
    emulate.add_argument("--channels", type=int, default=16)
    emulate.add_argument("--baud", type=int, default=None)
    emulate.add_argument(
        "--feedback", choices=[f.value for f in Feedback], default=Feedback.CLOSED_WHEN_SET.value
    )
    emulate.add_argument("--latency-ms", type=float, default=3.0)
    emulate.add_argument("--tcp", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT")
    emulate.set_defaults(handler=emulate_command)


def _cabinet_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="kiosk configuration (TOML)")
    wiring = parser.add_argument_group("without a config file")
    wiring.add_argument("--port", help="serial device or pyserial URL (socket://host:port)")
    wiring.add_argument("--family", choices=families(), help="board family")
    wiring.add_argument("--boards", type=_numbers, metavar="A,B", help="board addresses")
    wiring.add_argument("--baud", type=int)
    wiring.add_argument("--feedback", choices=[f.value for f in Feedback])
    wiring.add_argument("--channels", type=int, help="locks per board (default 16)")


def _numbers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0,1 — got {text!r}") from None


def cabinet_settings(args: argparse.Namespace) -> Settings:
    """The settings the installer asked for: --config, the wiring flags, or the demo.

    A configuration file's ``logging.level`` applies unless ``--log-level`` was given.
    """
    settings = _cabinet_settings(args)
    if args.config and not getattr(args, "log_level", None):
        logs.configure(settings.logging.level)
    return settings


def _cabinet_settings(args: argparse.Namespace) -> Settings:
    flags = {k: getattr(args, k) for k in ("family", "boards", "baud", "feedback", "channels")}
    if args.config and (args.port or any(v is not None for v in flags.values())):
        raise UsageError("give either --config or --port/--family/--boards, not both")
    if args.port is None:
        if any(v is not None for v in flags.values()):
            raise UsageError("--family/--boards/--baud/--feedback/--channels need --port")
        return load_settings(args.config or DEMO_CONFIG)
    bus: dict[str, Any] = {"name": "cli", "port": args.port}
    bus.update({k: v for k, v in flags.items() if v is not None})
    try:
        return parse_settings({"locker": {"driver": "serial", "buses": [bus]}}, "command line")
    except ConfigError as exc:
        lines = []
        for line in exc.errors:
            path, _, message = line.partition(": ")
            for prefix, flag in _FLAG_OF.items():
                if path.startswith(prefix):
                    path = flag + path.removeprefix(prefix)
            lines.append(f"{path}: {message}")
        raise UsageError("; ".join(lines)) from None


# --- status --------------------------------------------------------------------------------


def status_command(args: argparse.Namespace) -> int:
    """``locker status``: read the cabinet once and print it."""
    settings = cabinet_settings(args)
    with ExitStack() as stack:
        locker = bootstrap.start_locker(settings.locker, stack)
        state = locker.refresh()
    silent = [b for b in state.boards if not b.online]
    if args.json:
        print(json.dumps(status_json(settings.locker, state)))
    else:
        print(status_text(settings.locker, state))
    for board in silent:
        print(f"error: board {board.address} on {board.port} did not answer", file=sys.stderr)
    return EXIT_HARDWARE if silent else EXIT_OK


def status_json(cabinet: CabinetSpec, state: LockerState) -> dict[str, Any]:
    """The documented JSON form of ``locker status``."""
    specs = {c.number: c for c in cabinet.compartments}
    return {
        "boards": [
            {"port": b.port, "address": b.address, "online": b.online} for b in state.boards
        ],
        "compartments": [
            {
                "number": c.number,
                "board": specs[c.number].board if specs[c.number].board is not None else 0,
                "channel": specs[c.number].channel,
                "door": c.door.value,
                "item": c.item,
            }
            for c in state.compartments
        ],
    }


def status_text(cabinet: CabinetSpec, state: LockerState) -> str:
    """A table an installer can read at a glance."""
    lines = []
    for bus in cabinet.buses:
        lines.append(
            f"bus {bus.name}: {bus.family} boards at {bus.baud} baud, "
            f"feedback {bus.feedback.value}, {bus.channels} channels per board"
        )
    for board in state.boards:
        lines.append(
            f"  board {board.address:>2} on {board.port}: "
            + ("online" if board.online else "NOT ANSWERING")
        )
    lines.append(" nr  board  ch  door     item")
    specs = {c.number: c for c in cabinet.compartments}
    for c in state.compartments:
        spec = specs[c.number]
        item = "-" if c.item is None else ("present" if c.item else "empty")
        board = "-" if spec.board is None else str(spec.board)
        channel = "-" if spec.channel is None else str(spec.channel)
        lines.append(f"{c.number:>3}  {board:>5}  {channel:>2}  {c.door.value:<7}  {item}")
    return "\n".join(lines)


# --- open ----------------------------------------------------------------------------------


def open_command(args: argparse.Namespace) -> int:
    """``locker open N``: pulse one lock, watch the door, print the outcome."""
    settings = cabinet_settings(args)
    with ExitStack() as stack:
        locker = bootstrap.start_locker(settings.locker, stack)
        result = locker.open(args.number, f"cli-{uuid.uuid4()}")
    if args.json:
        print(
            json.dumps(
                {
                    "number": result.compartment,
                    "outcome": result.outcome.value,
                    "ms": round(result.total_ms),
                }
            )
        )
    else:
        print(describe_open(result))
    if result.outcome in GOOD_OUTCOMES:
        return EXIT_OK
    print(f"error: compartment {result.compartment}: {explain(result)}", file=sys.stderr)
    return EXIT_HARDWARE if result.outcome is OpenOutcome.BOARD_OFFLINE else EXIT_FAILED


def describe_open(result: OpenResult) -> str:
    """One line for an installer about one opening."""
    pulses = f"{result.pulses} pulse{'s' if result.pulses != 1 else ''}"
    took = f"{result.total_ms:.0f} ms"
    return f"compartment {result.compartment}: {result.outcome.value} ({pulses}, {took})"


def explain(result: OpenResult) -> str:
    """What a bad outcome means and what to look at."""
    if result.outcome is OpenOutcome.JAMMED:
        return (
            f"pulsed {result.pulses} times but the door never read open: "
            "a stuck lock, a dead channel, or a door sensor that is not wired"
        )
    if result.outcome is OpenOutcome.BOARD_OFFLINE:
        return f"the board did not answer ({result.detail}); nothing was pulsed"
    return result.detail or result.outcome.value


# --- emulate -------------------------------------------------------------------------------


def emulate_command(args: argparse.Namespace) -> int:
    """``locker emulate``: serve emulated boards on a pty (or TCP) until interrupted."""
    from hardware.locker.emulator import BoardEmulator, describe

    boards = args.boards or ([0] if args.family == "cu" else [1])
    try:
        emulator = BoardEmulator(
            args.family,
            boards,
            channels=args.channels,
            feedback=Feedback(args.feedback),
            baud=args.baud,
            latency_s=args.latency_ms / 1000,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with emulator:
        if args.tcp is not None:
            emulator.start_tcp(args.tcp)
        else:
            emulator.start_pty()
        print(describe(emulator), file=sys.stderr)
        print(f"port: {emulator.url}", flush=True)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    return EXIT_OK
