"""The pull: reservations, loans and staff from the server into the kiosk's cache.

The cache may hold facts the server has not seen yet (a load or pickup whose journal row
is unsent). A pull answer predating them would undo them, so an answer is applied only
when (inside ONE write transaction, so no flow can write between the check and the
change) no journal row is unsent and no row was written since the fetch began. Otherwise
the pull is skipped and comes again after the relay drained (decision 0012).

Full answers replace the cache (``replace_*``); answers to ``?since=cursor`` are applied
item by item (``put_*``). The cursors live in store meta; every ``FULL_EVERY``-th pull is
a full one anyway, so anything a cursor missed is repaired.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kiosk.core.ports import Store
from kiosk.sync import wire
from kiosk.sync.client import ServerUnavailable, SyncClient
from kiosk.sync.relay import backlog

log = logging.getLogger("kiosk.sync")

FULL_EVERY = 12  # one pull in this many ignores the cursors
CURSOR_KEYS = {"reservations": "sync.cursor.reservations", "loans": "sync.cursor.loans"}
COUNT_KEY = "sync.pulls"
_PAGE = 1000  # journal rows read per step while looking for the newest sequence number


@dataclass(frozen=True)
class PullResult:
    """What one pull did; ``applied`` False: skipped (unsent rows), nothing changed."""

    applied: bool
    full: bool = False
    reservations: int = 0
    loans: int = 0
    staff: int = 0


class Puller:
    """Pulls into one store; remembers the newest journal row it has seen (a cheap fence)."""

    def __init__(self, store: Store, client: SyncClient) -> None:
        self.store = store
        self.client = client
        self._tail = 0  # highest journal seq seen so far (rows are never deleted)

    def seen(self, seq: int) -> None:
        """Rows up to ``seq`` exist (the relay sent them): no need to read them again."""
        self._tail = max(self._tail, seq)

    def newest_seq(self) -> int:
        """The highest journal sequence number now (read forward from the last one seen)."""
        while True:
            rows = self.store.journal_entries(after_seq=self._tail, limit=_PAGE)
            if not rows:
                return self._tail
            self._tail = rows[-1].seq

    def pull(self) -> PullResult:
        """Fetch and apply, or skip while rows are unsent; ``ServerUnavailable`` on failure."""
        if backlog(self.store):
            return PullResult(applied=False)
        fence = self.newest_seq()
        with self.store.reading() as tx:
            cursors = {name: tx.meta(key) for name, key in CURSOR_KEYS.items()}
            count = int(tx.meta(COUNT_KEY) or 0)
        if count % FULL_EVERY == 0:
            cursors = dict.fromkeys(cursors)
        try:
            reservations = wire.reservations(self._get("/reservations", cursors["reservations"]))
            loans = wire.loans(self._get("/loans", cursors["loans"]))
        except ServerUnavailable:
            if any(cursors.values()):
                self._forget_cursors()  # an expired or refused cursor: a full pull next time
            raise
        staff = wire.staff(self.client.get("/staff"))
        with self.store.transaction() as tx:
            # The fence, under the write lock: nothing can be journalled until we commit.
            if self.store.journal_entries(after_seq=fence, limit=1) or backlog(self.store):
                return PullResult(applied=False)
            if reservations.full:
                tx.replace_reservations(reservations.items)
            else:
                for reservation in reservations.items:
                    tx.put_reservation(reservation)
            if loans.full:
                tx.replace_loans(loans.items)
            else:
                for loan in loans.items:
                    tx.put_loan(loan)
            tx.replace_staff(staff)
            tx.set_meta(CURSOR_KEYS["reservations"], reservations.cursor)
            tx.set_meta(CURSOR_KEYS["loans"], loans.cursor)
            tx.set_meta(COUNT_KEY, str(count + 1))
        full = reservations.full and loans.full
        log.info(
            "pulled %d reservation(s), %d loan(s), %d staff (%s)",
            len(reservations.items),
            len(loans.items),
            len(staff),
            "full" if full else "changes",
        )
        return PullResult(True, full, len(reservations.items), len(loans.items), len(staff))

    def _get(self, path: str, cursor: str | None) -> dict[str, object]:
        return self.client.get(path, {"since": cursor} if cursor else None)

    def _forget_cursors(self) -> None:
        with self.store.transaction() as tx:
            for key in CURSOR_KEYS.values():
                tx.set_meta(key, None)
