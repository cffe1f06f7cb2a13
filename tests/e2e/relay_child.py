"""A kiosk's sync link alone in a child process, to be killed mid-batch by
``test_kill_mid_batch``.

    python tests/e2e/relay_child.py --db kiosk.db --url http://127.0.0.1:P \\
        --token-file F [--batch-size N]

Opens the kiosk store and runs the real ``SyncService`` one cycle after another (no
heartbeat) until no journal row is unsent. Prints one JSON line when ready, one per
cycle, and a last ``{"done": true, "unsent": N}``; exit 0 when drained, 1 when the
server kept failing. The parent kills it with SIGKILL at its chosen moment.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from kiosk.core.clock import SystemClock
from kiosk.settings_sync import SyncSettings
from kiosk.store import open_store
from kiosk.sync.relay import backlog
from kiosk.sync.service import SyncService

MAX_CYCLES = 200  # every retry has a bound


def say(**fields: object) -> None:
    """One JSON line to the parent."""
    print(json.dumps(fields), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Drain the store's journal to the server; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    clock = SystemClock()
    store = open_store(args.db, clock)
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
