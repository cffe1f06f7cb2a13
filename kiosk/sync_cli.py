"""``digibank-kiosk sync status`` and ``digibank-kiosk sync now``: the link, for installers.

``status`` reads the database only (read-only, works while the kiosk runs): backlog,
the oldest unsent row's age, the last success and the last error. ``now`` runs one relay
and pull from this process on the same database (the kiosk may run meanwhile: SQLite
serialises the writes) and exits 0 when everything was sent, 1 when the server could not
be used (the reason on one line). The database is ``[store] path`` of ``--config`` or
``--database PATH``; the server is ``[sync]`` of ``--config``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from kiosk.cli import EXIT_FAILED, EXIT_OK, UsageError
from kiosk.core.clock import SystemClock
from kiosk.core.ports import StoreError
from kiosk.settings import DEMO_CONFIG, Settings, load_settings


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``sync status`` and ``sync now`` on the top-level parser."""
    sync = commands.add_parser("sync", help="the link to the loan server")
    actions = sync.add_subparsers(title="sync commands", metavar="ACTION")
    status = actions.add_parser(
        "status", help="backlog, oldest unsent row, last success and last error"
    )
    _common(status)
    status.add_argument("--json", action="store_true", help="print a JSON object")
    status.set_defaults(handler=status_command)
    now = actions.add_parser("now", help="send the journal and pull reservations now")
    _common(now)
    now.set_defaults(handler=now_command)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="kiosk configuration (TOML)")
    parser.add_argument("--database", metavar="PATH", help="the database file (overrides FILE)")


def _where(args: argparse.Namespace) -> tuple[Settings, Path]:
    """The settings of ``--config`` (or the demo's) and the database (``--database`` wins).

    The config's log level is not applied: it is the running kiosk's; this command prints
    its own outcome (``--log-level`` shows more).
    """
    settings = load_settings(args.config or DEMO_CONFIG)
    return settings, Path(args.database or settings.store.path)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _local(value: dt.datetime | None) -> str:
    return "never" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def status_command(args: argparse.Namespace) -> int:
    """``sync status``: the link's state from the database."""
    from kiosk.store import open_store
    from kiosk.sync import status

    _settings, path = _where(args)
    if not path.exists():
        print(f"error: {path}: the database does not exist", file=sys.stderr)
        return EXIT_FAILED
    try:
        with closing(open_store(path, SystemClock(), create=False, read_only=True)) as store:
            state = status.read(store)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    now = dt.datetime.now(dt.UTC)
    age = None if state.oldest_unsent is None else (now - state.oldest_unsent).total_seconds()
    if args.json:
        body: dict[str, Any] = {
            "backlog": state.backlog,
            "oldest_unsent": _iso(state.oldest_unsent),
            "oldest_unsent_age_s": None if age is None else round(age, 1),
            "last_success": _iso(state.last_success),
            "last_error": state.last_error or None,
            "last_error_at": _iso(state.last_error_at),
            "failing": state.failing,
            "refused": state.refused,
        }
        print(json.dumps(body, indent=2))
        return EXIT_OK
    oldest = "" if age is None else f" (oldest {_local(state.oldest_unsent)}, {age:.0f} s ago)"
    print(f"backlog: {state.backlog} unsent row(s){oldest}")
    print(f"last success: {_local(state.last_success)}")
    error = f"{_local(state.last_error_at)}: {state.last_error}" if state.last_error else "none"
    print(f"last error: {error}")
    for item in state.refused:
        print(
            f"refused by the server, kept here: row {item.get('seq')} ({item.get('kind')}): "
            f"{item.get('reason')}"
        )
    if state.failing:
        print("server: unreachable (the last attempt failed)")
    else:
        print("server: " + ("ok" if state.last_success else "not contacted yet"))
    return EXIT_OK


def now_command(args: argparse.Namespace) -> int:
    """``sync now``: one relay and pull; 0 when all sent, 1 when the server failed."""
    from kiosk.store import open_store
    from kiosk.sync.service import SyncService

    settings, path = _where(args)
    if not settings.sync.enabled:
        raise UsageError(f"{settings.source}: no [sync] url configured; nothing to sync with")
    if not path.exists():
        print(f"error: {path}: the database does not exist", file=sys.stderr)
        return EXIT_FAILED
    clock = SystemClock()
    try:
        with closing(open_store(path, clock, create=False)) as store:
            service = SyncService(settings.sync, store, None, clock)
            try:
                result = service.run_once(heartbeat=False)
            finally:
                service.stop()
            left = len(store.journal_entries(unsent_only=True))
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not result.ok:
        print(f"server unreachable: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    pull = result.pull
    pulled = (
        f"pulled {pull.reservations} reservation(s), {pull.loans} loan(s), {pull.staff} staff"
        if pull is not None and pull.applied
        else "pull skipped (rows written meanwhile; run again)"
    )
    print(f"sent {result.sent} row(s), {left} left; {pulled}")
    return EXIT_OK if left == 0 else EXIT_FAILED
