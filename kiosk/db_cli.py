"""Installer and staff commands for the local store: ``db check`` and ``journal``.

Both open the database read-only: they never create, migrate or repair it, and never
count a start. The database is ``[store] path`` of ``--config`` (the demo configuration
when not given), or ``--database PATH``. Exit codes as in ``kiosk.cli``: 0 ok, 1 a bad
outcome (missing, damaged or too-new database), 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk import logs
from kiosk.cli import EXIT_FAILED, EXIT_OK, UsageError
from kiosk.core.clock import SystemClock
from kiosk.core.model import JournalEntry
from kiosk.core.ports import StoreError
from kiosk.settings import DEMO_CONFIG, load_settings

if TYPE_CHECKING:
    from kiosk.store import SqlStore

SUMMARY_WIDTH = 60  # characters of payload summary per journal line
_VALUE_WIDTH = 16  # a longer value (a borrower key) is shortened in text output


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``db check`` and ``journal`` on the top-level parser."""
    db = commands.add_parser("db", help="check the kiosk's local database")
    actions = db.add_subparsers(title="db commands", metavar="ACTION")
    check = actions.add_parser(
        "check", help="integrity check, schema revision, journal backlog, compartments, alarms"
    )
    _database_args(check)
    check.set_defaults(handler=check_command)

    journal = commands.add_parser("journal", help="list the transaction journal, oldest first")
    _database_args(journal)
    journal.add_argument(
        "--since",
        metavar="T",
        help="rows written at or after T: an ISO date or date-time (local time unless it "
        "has an offset), e.g. 2026-11-02 or 2026-11-02T09:30",
    )
    journal.add_argument("--unsent", action="store_true", help="only rows the server lacks")
    journal.add_argument("--json", action="store_true", help="print a JSON array")
    journal.set_defaults(handler=journal_command)


def _database_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="kiosk configuration (TOML)")
    parser.add_argument("--database", metavar="PATH", help="the database file (overrides FILE)")


def database_path(args: argparse.Namespace) -> Path:
    """``--database``, else ``[store] path`` of ``--config`` or of the demo configuration."""
    if args.database:
        return Path(args.database)
    settings = load_settings(args.config or DEMO_CONFIG)
    if args.config and not getattr(args, "log_level", None):
        logs.configure(settings.logging.level)
    return Path(settings.store.path)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


def _open(path: Path) -> SqlStore:
    # Imported here: SQLAlchemy and Alembic load only for the commands that need them.
    from kiosk.store import open_store

    return open_store(path, SystemClock(), create=False, read_only=True)


def _local(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


# --- db check --------------------------------------------------------------------------------


def check_command(args: argparse.Namespace) -> int:
    """``db check``: integrity, schema and backlog of the database; 1 when it is not sound."""
    path = database_path(args)
    if not path.exists():
        return _fail(f"{path}: the database does not exist")
    try:
        with closing(_open(path)) as store:
            problems = store.integrity_check(full=True)
            if problems:
                more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
                return _fail(
                    f"{path}: the database fails its integrity check ({problems[0]}{more}); "
                    "keep the file for rescue and restore a backup"
                )
            report = store.report()
    except StoreError as exc:
        return _fail(str(exc))
    oldest = f" (oldest unsent {_local(report.oldest_unsent)})" if report.unsent_rows else ""
    statuses = ", ".join(f"{n} {status}" for status, n in report.compartments.items())
    alarms = Counter(str(a.kind) for a in report.active_alarms)
    print(f"{path}: ok (integrity check passed, journal mode {report.journal_mode})")
    print(f"schema revision: {report.revision} (current)")
    print(f"boot count: {report.boot}")
    print(f"journal: {report.journal_rows} rows, {report.unsent_rows} unsent{oldest}")
    print(f"compartments: {statuses or 'none'}")
    print(
        f"active alarms: {len(report.active_alarms)}"
        + (" (" + ", ".join(f"{k} x{n}" for k, n in sorted(alarms.items())) + ")" if alarms else "")
    )
    return EXIT_OK


# --- journal ---------------------------------------------------------------------------------


def parse_since(text: str) -> dt.datetime:
    """``--since``: an ISO date or date-time; without an offset it is local time."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected an ISO date or date-time, like 2026-11-02 or "
            "2026-11-02T09:30"
        ) from None
    if value.tzinfo is None:
        value = value.astimezone()  # the installer's local time
    return value.astimezone(dt.UTC)


def journal_command(args: argparse.Namespace) -> int:
    """``journal``: the rows in sequence order (newest last), as text or JSON."""
    since = parse_since(args.since) if args.since is not None else None
    path = database_path(args)
    if not path.exists():
        return _fail(f"{path}: the database does not exist")
    try:
        with closing(_open(path)) as store:
            entries: list[JournalEntry] = store.journal_entries(
                since=since, unsent_only=args.unsent
            )
    except StoreError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps([entry_json(e) for e in entries], ensure_ascii=False, indent=2))
    elif not entries:
        print("no journal rows" + (" to send" if args.unsent else ""))
    else:
        for entry in entries:
            print(entry_line(entry))
    return EXIT_OK


def entry_json(entry: JournalEntry) -> dict[str, Any]:
    """One row for ``--json``: only what the row holds."""
    return {
        "seq": entry.seq,
        "uuid": entry.uuid,
        "kind": entry.kind,
        "payload": dict(entry.payload),
        "wall_time": None if entry.wall_time is None else entry.wall_time.isoformat(),
        "boot": entry.boot,
        "sent_at": None if entry.sent_at is None else entry.sent_at.isoformat(),
        "attempts": entry.attempts,
    }


def entry_line(entry: JournalEntry) -> str:
    """One row as text: seq, local wall time, kind, payload summary, sent or unsent."""
    sent = "sent" if entry.sent_at is not None else "unsent"
    summary = payload_summary(entry.payload)
    return f"{entry.seq:>6}  {_local(entry.wall_time)}  {entry.kind:<18} {summary}  {sent}"


def payload_summary(payload: Mapping[str, Any], width: int = SUMMARY_WIDTH) -> str:
    """``key=value ...`` of the payload, long values shortened, cut to ``width``, padded."""
    parts = []
    for key, value in payload.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if len(shown) > _VALUE_WIDTH:
            shown = shown[: _VALUE_WIDTH - 4] + "…"
        parts.append(f"{key}={shown}")
    text = " ".join(parts)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.ljust(width)
