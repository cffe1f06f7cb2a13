"""``loanserver admin command | report | make-admin-token``: remote commands, the monthly
report and the back-office token. ``loanserver.admin`` builds the parser and runs these.

Same conventions as ``loanserver.admin``: errors are raised as ``services.InvalidInput``
(exit 2) or ``services.Refused`` (exit 1); what a script needs is on the LAST line.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy.orm import Session

from loanserver import commands, reports
from loanserver.admin_tokens import make_admin_token

ACTIONS = ("command", "report", "make-admin-token")
NO_DATABASE = ("make-admin-token",)  # runs without opening (or creating) a database
# CLI spelling -> stored command kind.
KINDS = {
    "open": "open",
    "out-of-service": "out_of_service",
    "back-in-service": "back_in_service",
    "refresh": "refresh",
}


def add_parsers(cmds: Any, common: argparse.ArgumentParser) -> None:
    """Add this module's admin commands to the ``admin`` subparsers ``cmds``."""
    p = cmds.add_parser(
        "command",
        help="queue a remote command for a kiosk; prints its id",
        description="Queue a command; the kiosk gets it with its next heartbeat.",
    )
    p.add_argument("kiosk", metavar="KIOSK", help="kiosk name")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND", parser_class=type(p))
    k = kinds.add_parser("open", parents=[common], help="open compartment N (reason needed)")
    k.add_argument("compartment", type=int, metavar="N")
    k.add_argument("--reason", required=True, metavar="R", help="shown and journalled")
    k = kinds.add_parser("out-of-service", parents=[common], help="take compartment N out")
    k.add_argument("compartment", type=int, metavar="N")
    k.add_argument("--reason", metavar="R", help="why (optional)")
    k = kinds.add_parser("back-in-service", parents=[common], help="put compartment N back")
    k.add_argument("compartment", type=int, metavar="N")
    kinds.add_parser("refresh", parents=[common], help="pull reservations, loans, staff now")

    p = cmds.add_parser(
        "report",
        parents=[common],
        help="monthly figures: people reached, loans, returns, faults per kiosk",
        description="Figures of one month (default: the current UTC month).\n"
        "JSON: one object.\n" + reports.CSV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--month", metavar="YYYY-MM", help="the month (UTC); default: this month")
    p.add_argument("--format", choices=("json", "csv"), default="json")

    p = cmds.add_parser(
        "make-admin-token",
        help="write a new back-office token's hash to FILE (0600); prints the token once",
    )
    p.add_argument("file", metavar="FILE", help="read by serve --admin-token-file")
    p.add_argument("--force", action="store_true", help="replace an existing FILE")


def run_offline(args: argparse.Namespace) -> None:
    """Run an action of ``NO_DATABASE``."""
    token = make_admin_token(args.file, force=args.force)
    print(f"admin token hash written to {args.file}; the token (shown only once):")
    print(token)


def run(args: argparse.Namespace, session: Session) -> None:
    """Run ``command`` or ``report`` on ``session``."""
    if args.action == "command":
        command = commands.send_command(
            session,
            args.kiosk,
            KINDS[args.kind],
            compartment=getattr(args, "compartment", None),
            reason=getattr(args, "reason", None),
        )
        where = f" compartment {command.compartment}" if command.compartment else ""
        print(f"command {command.kind}{where} queued for kiosk {args.kiosk!r}; command id:")
        print(command.id)
    elif args.action == "report":
        figures = reports.report(session, args.month)
        if args.format == "csv":
            sys.stdout.write(reports.to_csv(figures))
        else:
            print(json.dumps(figures, indent=2))
