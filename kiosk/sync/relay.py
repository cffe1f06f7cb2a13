"""The outbox relay: unsent journal rows to ``POST /api/v1/kiosk/transactions``, in order.

Rows go in sequence order, ``batch_size`` at a time. Each batch's attempt is counted
before it leaves (``note_attempt``); only the uuids the server lists as accepted or
duplicates are marked sent, and the first failure stops the round, so a later row never
overtakes an earlier one. The retry timing (backoff) is the caller's (``service``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.core.clock import Clock
from kiosk.core.ports import Store
from kiosk.sync import wire
from kiosk.sync.client import ServerUnavailable, SyncClient

log = logging.getLogger("kiosk.sync")

MAX_BATCHES = 10_000  # bound of one round (5 million rows at 500): the loop always ends


@dataclass(frozen=True)
class RelayResult:
    """What one round sent."""

    sent: int  # rows marked sent
    batches: int
    last_seq: int = 0  # the highest sequence number acknowledged (0: none)


def backlog(store: Store) -> bool:
    """True when at least one journal row waits for the server."""
    return bool(store.journal_entries(unsent_only=True, limit=1))


def relay(
    store: Store,
    client: SyncClient,
    clock: Clock,
    batch_size: int,
    keep_going: Callable[[], bool] = lambda: True,
) -> RelayResult:
    """Send every unsent row, oldest first; raises ``ServerUnavailable`` at the first failure.

    Rows the server acknowledged before the failure stay marked sent. ``keep_going`` is
    asked before each batch (a stopping service ends a long backlog between batches).
    """
    sent = batches = last_seq = 0
    for _ in range(MAX_BATCHES):
        if not keep_going():
            break
        rows = store.journal_entries(unsent_only=True, limit=batch_size)
        if not rows:
            break
        uuids = [r.uuid for r in rows]
        store.note_attempt(uuids)
        answer = client.post("/transactions", {"transactions": [wire.row(r) for r in rows]})
        listed = wire.acknowledged(answer, uuids)
        # Only what the server listed; marked in the order sent.
        acked = [u for u in uuids if u in listed]
        if acked:
            sent += store.mark_sent(acked, clock.now())
            last_seq = max(r.seq for r in rows if r.uuid in listed)
        batches += 1
        if len(acked) < len(uuids):
            raise ServerUnavailable(
                f"POST /transactions: {len(uuids) - len(acked)} of {len(uuids)} rows "
                "not acknowledged"
            )
    if sent:
        log.info("relayed %d journal row(s) in %d batch(es)", sent, batches)
    return RelayResult(sent, batches, last_seq)
