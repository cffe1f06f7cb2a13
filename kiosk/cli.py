"""The ``digibank-kiosk`` command line: one entry point for installers, the demo and CI.

Every failure ends as one clear line on stderr and a non-zero exit code, never a
traceback (run with ``--log-level DEBUG`` to see one).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from hardware.errors import HardwareError
from kiosk import logs
from kiosk.settings import ConfigError, load_settings

log = logging.getLogger("kiosk.cli")

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran, and the outcome is bad (jammed, a board silent ...)
EXIT_USAGE = 2  # bad arguments or configuration
EXIT_HARDWARE = 3  # a device is missing, busy or silent


class UsageError(Exception):
    """Bad command-line arguments; the message is shown as is."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level or "ERROR")  # commands print their own outcome
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"{exc.source}: {line}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HardwareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_HARDWARE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the promise: never a traceback for an installer
        log.debug("internal error", exc_info=True)
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    from kiosk import db_cli, demo, eid_cli, locker_cli, scenario_cli, sync_cli

    parser = argparse.ArgumentParser(
        prog="digibank-kiosk", description="Self-service laptop-lending locker for digibanks."
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log to stderr from this level (default: ERROR, or the config file's level)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    config = commands.add_parser("config", help="check a configuration file")
    config_commands = config.add_subparsers(title="config commands", metavar="ACTION")
    check = config_commands.add_parser("check", help="validate FILE and list every error")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(handler=config_check)

    locker_cli.add_commands(commands)
    eid_cli.add_commands(commands)
    db_cli.add_commands(commands)
    sync_cli.add_commands(commands)
    scenario_cli.add_commands(commands)
    demo.add_command(commands)
    return parser


def config_check(args: argparse.Namespace) -> int:
    """``config check FILE``: print every error with its key path, or a summary."""
    settings = load_settings(args.file)
    cabinet = settings.locker
    where = f", {len(cabinet.buses)} bus(es)" if cabinet.driver == "serial" else ""
    print(
        f"{args.file}: ok: kiosk {settings.kiosk.name!r}, {cabinet.driver} cabinet with "
        f"{len(cabinet.compartments)} compartments{where}"
    )
    return EXIT_OK
