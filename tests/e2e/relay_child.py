"""A kiosk's sync link alone in a child process, to be killed mid-batch by
``test_kill_mid_batch``.

    python tests/e2e/relay_child.py --db kiosk.db --url http://127.0.0.1:P \\
        --token-file F [--batch-size N] [--die-at MOMENT --die-on N]

Opens the kiosk store and runs the real ``SyncService`` one cycle after another (no
heartbeat) until no journal row is unsent. ``--die-at before_mark_sent`` kills this
process with SIGKILL at the N-th acknowledged batch just before the store records it
(the server has the rows, the kiosk does not know); ``after_mark_sent`` just after.
Prints one JSON line when ready, one per cycle, and a last ``{"done": true, "unsent":
N}``; exit 0 when drained, 1 when the server kept failing. Otherwise the parent kills it
with SIGKILL at its chosen moment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Sequence

from kiosk.core.clock import SystemClock
from kiosk.settings_sync import SyncSettings
from kiosk.store import SqlStore, open_store
from kiosk.sync.relay import backlog
from kiosk.sync.service import SyncService

MAX_CYCLES = 200  # every retry has a bound
MOMENTS = ("before_mark_sent", "after_mark_sent")


def say(**fields: object) -> None:
    """One JSON line to the parent."""
    print(json.dumps(fields), flush=True)


def die_at_mark_sent(store: SqlStore, moment: str, nth: int) -> None:
    """Wrap the store's ``mark_sent``: SIGKILL this process around its ``nth`` call."""
    real = store.mark_sent
    calls = 0

    def mark_sent(uuids: Sequence[str], at: dt.datetime) -> int:
        nonlocal calls
        calls += 1
        if calls == nth and moment == "before_mark_sent":
            os.kill(os.getpid(), signal.SIGKILL)
        changed = real(uuids, at)
        if calls == nth and moment == "after_mark_sent":
            os.kill(os.getpid(), signal.SIGKILL)
        return changed

    store.mark_sent = mark_sent  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> int:
    """Drain the store's journal to the server; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--die-at", choices=MOMENTS)
    parser.add_argument("--die-on", type=int, default=1, metavar="N")
    args = parser.parse_args(argv)
    clock = SystemClock()
    store = open_store(args.db, clock)
    if args.die_at:
        die_at_mark_sent(store, args.die_at, args.die_on)
    settings = SyncSettings(
        url=args.url,
        token_file=args.token_file,
        batch_size=args.batch_size,
        connect_timeout_s=2.0,
        read_timeout_s=20.0,
    )
    service = SyncService(settings, store, None, clock)
    say(ready=True, boot=store.boot)
    try:
        for _ in range(MAX_CYCLES):
            if not backlog(store):
                break
            result = service.run_once(heartbeat=False)
            say(sent=result.sent, error=result.error)
        unsent = len(store.journal_entries(unsent_only=True))
        say(done=True, unsent=unsent)
        return 0 if unsent == 0 else 1
    finally:
        service.stop()
        store.close()


if __name__ == "__main__":
    sys.exit(main())
