"""The outbox relay: unsent journal rows to ``POST /api/v1/kiosk/transactions``, in order.

Rows go in sequence order, ``batch_size`` at a time. Each batch's attempt is counted
before it leaves (``note_attempt``); only the uuids the server lists as accepted or
duplicates are marked sent, and the first failure stops the round, so a later row never
overtakes an earlier one. The retry timing (backoff) is the caller's (``service``).

A batch the server refuses outright (400/413/422: ``Refused``) is resent one row at a
time to find the row it will never take. That row is set aside: recorded in store meta
(``sync status`` lists it), marked done so it cannot block the outbox (and the pulls that
wait for an empty outbox) for ever, and reported to ``on_refused`` (the core raises a
``sync_refused`` alarm, which reaches the server as an alarm row). It is never deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.core.clock import Clock
from kiosk.core.model import JournalEntry
from kiosk.core.ports import Store
from kiosk.sync import status, wire
from kiosk.sync.client import Refused, ServerUnavailable, SyncClient

log = logging.getLogger("kiosk.sync")

MAX_BATCHES = 10_000  # bound of one round (5 million rows at 500): the loop always ends


@dataclass(frozen=True)
class RelayResult:
    """What one round sent."""

    sent: int  # rows marked sent
    batches: int
    last_seq: int = 0  # the highest sequence number acknowledged (0: none)
    set_aside: int = 0  # rows the server refused for good


OnRefused = Callable[[JournalEntry, str], None]


def backlog(store: Store) -> bool:
    """True when at least one journal row waits for the server."""
    return bool(store.journal_entries(unsent_only=True, limit=1))


def relay(
    store: Store,
    client: SyncClient,
    clock: Clock,
    batch_size: int,
    keep_going: Callable[[], bool] = lambda: True,
    on_refused: OnRefused | None = None,
) -> RelayResult:
    """Send every unsent row, oldest first; raises ``ServerUnavailable`` at the first failure.

    Rows the server acknowledged before the failure stay marked sent. ``keep_going`` is
    asked before each batch (a stopping service ends a long backlog between batches).
    """
    sent = batches = last_seq = aside = 0
    # After a refused batch: how many of its rows to send one at a time (to find the row
    # the server refuses; a batch refused only as a whole goes through row by row).
    single = 0
    for _ in range(MAX_BATCHES):
        if not keep_going():
            break
        rows = store.journal_entries(unsent_only=True, limit=1 if single else batch_size)
        single = max(0, single - 1)
        if not rows:
            break
        uuids = [r.uuid for r in rows]
        store.note_attempt(uuids)
        try:
            answer = client.post("/transactions", {"transactions": [wire.row(r) for r in rows]})
        except Refused as exc:
            batches += 1
            if len(rows) > 1:
                single = len(rows)
                continue
            _set_aside(store, clock, rows[0], exc.reason, on_refused)
            aside += 1
            continue
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
    return RelayResult(sent, batches, last_seq, aside)


def _set_aside(
    store: Store, clock: Clock, row: JournalEntry, reason: str, on_refused: OnRefused | None
) -> None:
    """Record the refusal first (a crash before mark_sent only repeats the refusal)."""
    log.error("journal row %d (%s) refused by the server, set aside: %s", row.seq, row.kind, reason)
    status.note_refused(store, row, reason)
    store.mark_sent([row.uuid], clock.now())
    if on_refused is not None:
        on_refused(row, reason)
