"""``loanserver``: ``migrate``, ``admin ...`` and (later) ``serve``.

Exit codes: 0 done, 1 refused (the data does not allow it), 2 usage or configuration
error. Errors are one line on stderr, never a traceback. A secret (kiosk token, pickup
code) or an id the caller needs is printed on the LAST line of stdout, so scripts can
take ``tail -n 1``. No national register number is ever printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from loanserver import admin_more, db, keys, services
from loanserver.models import DEVICE_TYPES, LANGUAGES, SIZES, STAFF_ROLES

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
ENV_PEPPER = "LOANSERVER_PEPPER_FILE"


class UsageError(Exception):
    """A command line or configuration problem: exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting (one clear line)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--database", metavar="URL", help="database URL (default: env or file)")
    parser = _Parser(prog="loanserver", description="Reference central loan server.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("migrate", parents=[common], help="bring the database schema up to date")
    serve = sub.add_parser("serve", parents=[common], help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--pepper-file", metavar="F", help=f"pepper file (or {ENV_PEPPER})")
    serve.add_argument(
        "--admin-token-file", metavar="F", help="back-office token hash file (or env)"
    )

    admin = sub.add_parser("admin", help="back-office commands")
    cmds = admin.add_subparsers(dest="action", required=True, parser_class=_Parser)
    with_pepper = _Parser(add_help=False, parents=[common])
    with_pepper.add_argument("--pepper-file", metavar="F", help=f"pepper file (or {ENV_PEPPER})")

    p = cmds.add_parser("add-kiosk", parents=[common], help="add a kiosk; prints its token once")
    p.add_argument("name")
    p = cmds.add_parser("add-device", parents=[common], help="add a lendable device")
    p.add_argument("asset_tag")
    p.add_argument("--type", required=True, choices=DEVICE_TYPES)
    p.add_argument("--size", default="M", choices=SIZES)
    p.add_argument("--charging", action="store_true", help="needs a charging compartment")
    p = cmds.add_parser("add-borrower", parents=[with_pepper], help="register a borrower")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--national-number", metavar="N", help="turned into the key, never stored")
    who.add_argument("--code-only", action="store_true", help="no eID: picks up with a code")
    p.add_argument("--first-name")
    p.add_argument("--language", default="nl", choices=LANGUAGES)
    p = cmds.add_parser("reserve", parents=[common], help="reserve; prints the pickup code once")
    p.add_argument("--borrower", required=True, type=int, metavar="ID")
    p.add_argument("--device", required=True, metavar="ASSET_TAG")
    p.add_argument("--kiosk", required=True, metavar="NAME")
    p = cmds.add_parser("cancel", parents=[common], help="cancel a reservation")
    p.add_argument("reservation_id", type=int)
    p = cmds.add_parser("loans", parents=[common], help="list open loans")
    p.add_argument("--overdue", action="store_true", help="only loans past their due date")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p = cmds.add_parser("add-staff", parents=[with_pepper], help="add a staff member")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--national-number", metavar="N", help="turned into the key, never stored")
    who.add_argument("--code", metavar="C", help="staff code typed at the kiosk")
    p.add_argument("--pin", required=True, metavar="P")
    p.add_argument("--name", required=True)
    p.add_argument("--role", default="staff", choices=STAFF_ROLES)
    admin_more.add_parsers(cmds, common)
    return parser


def _pepper(args: argparse.Namespace) -> bytes | None:
    """The pepper when a national number is given; a clear usage error without one."""
    if getattr(args, "national_number", None) is None:
        return None
    path = args.pepper_file or os.environ.get(ENV_PEPPER)
    if not path:
        raise UsageError(
            f"a national register number needs the pepper: pass --pepper-file F or set {ENV_PEPPER}"
        )
    try:
        return keys.load_pepper(path)
    except keys.InvalidKeyInput as exc:
        raise UsageError(str(exc)) from None


def _run_admin(args: argparse.Namespace, session: Session) -> None:
    action = args.action
    if action == "add-kiosk":
        kiosk = services.add_kiosk(session, args.name)
        print(f"kiosk {kiosk.id} {kiosk.name!r} added; its token (shown only once):")
        print(kiosk.token)
    elif action == "add-device":
        device = services.add_device(
            session, args.asset_tag, type=args.type, size=args.size, charging=args.charging
        )
        print(f"device {device.asset_tag} added ({device.type}, size {device.size})")
    elif action == "add-borrower":
        borrower = services.register_borrower(
            session,
            pepper=_pepper(args),
            national_number=args.national_number,
            code_only=args.code_only,
            first_name=args.first_name,
            language=args.language,
        )
        kind = "code-only" if borrower.key is None else "by eID"
        print(f"borrower registered ({kind}); borrower id:")
        print(borrower.id)
    elif action == "reserve":
        new = services.reserve(session, args.borrower, args.device, args.kiosk)
        print(f"reservation {new.id} made, expires {new.expires_at:%Y-%m-%d %H:%M} UTC")
        print("pickup code (shown only once):")
        print(new.pickup_code)
    elif action == "cancel":
        reservation = services.cancel(session, args.reservation_id)
        print(f"reservation {reservation.id} cancelled")
    elif action == "loans":
        _print_loans(services.list_loans(session, overdue_only=args.overdue), as_json=args.json)
    elif action == "add-staff":
        staff = services.add_staff(
            session,
            name=args.name,
            pin=args.pin,
            role=args.role,
            pepper=_pepper(args),
            national_number=args.national_number,
            code=args.code,
        )
        print(f"staff member {staff.id} added ({staff.role}); staff id:")
        print(staff.id)
    elif action in admin_more.ACTIONS:
        admin_more.run(args, session)
    else:  # pragma: no cover - argparse allows only the choices above
        raise UsageError(f"unknown admin command {action!r}")


def _print_loans(rows: list[services.LoanRow], *, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "loan_id": r.loan_id,
                        "asset_tag": r.asset_tag,
                        "borrower_id": r.borrower_id,
                        "started_at": r.started_at.isoformat(),
                        "due_at": r.due_at.isoformat(),
                        "overdue": r.overdue,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        print("no open loans")
        return
    print(f"{'loan':>6}  {'device':<16} {'borrower':>8}  {'due (UTC)':<16}  overdue")
    for r in rows:
        due = f"{r.due_at:%Y-%m-%d %H:%M}"
        print(
            f"{r.loan_id:>6}  {r.asset_tag:<16} {r.borrower_id:>8}  {due:<16}  "
            f"{'yes' if r.overdue else ''}"
        )


def _open(args: argparse.Namespace) -> Engine:
    """The engine with the schema brought to head (every admin command migrates first)."""
    engine = db.make_engine(db.database_url(args.database))
    db.migrate(engine)
    return engine


def run(argv: Sequence[str] | None = None) -> int:
    """Parse and run one command; returns the exit code (errors go to stderr)."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "serve":
            from loanserver import serve  # uvicorn is loaded only to serve

            return serve.run(args)
        if args.command == "admin" and args.action in admin_more.NO_DATABASE:
            admin_more.run_offline(args)
            return EXIT_OK
        engine = _open(args)
        try:
            if args.command == "migrate":
                print(f"database schema is up to date ({engine.url.render_as_string()})")
                return EXIT_OK
            with db.session_factory(engine)() as session:
                _run_admin(args, session)
        finally:
            engine.dispose()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except services.InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except services.Refused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except db.DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OperationalError as exc:
        # The driver's own message ("unable to open database file", "connection refused")
        # without SQLAlchemy's statement and parameters, which may hold a key.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        print(f"error: cannot use the database: {reason}; check --database", file=sys.stderr)
        return EXIT_USAGE
    except IntegrityError:
        # A concurrent change won the race (same asset tag, same kiosk name ...).
        print("refused: the change conflicts with data stored meanwhile; retry", file=sys.stderr)
        return EXIT_REFUSED
    except SQLAlchemyError as exc:
        # The message may quote parameters (a key): show the kind only.
        print(f"error: database failure ({type(exc).__name__}); check --database", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        return run(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
