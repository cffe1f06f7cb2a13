"""The sync link's state in store meta, written by the service and read by ``sync status``.

Kept in the database (not in memory) so the CLI sees it while the kiosk runs, from
another process. Only times, counts and one-line reasons: never a body or a token.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from kiosk.core.clock import Clock
from kiosk.core.model import JournalEntry
from kiosk.core.ports import Store

LAST_SUCCESS = "sync.last_success"
LAST_ERROR = "sync.last_error"
LAST_ERROR_AT = "sync.last_error_at"
BACKLOG = "sync.backlog"
REFUSED = "sync.refused"  # JSON list of rows the server refused for good (set aside)
REFUSED_KEPT = 100  # the newest ones; every refused row also raised an alarm


@dataclass(frozen=True)
class SyncStatus:
    """What ``sync status`` shows."""

    backlog: int
    oldest_unsent: dt.datetime | None
    last_success: dt.datetime | None
    last_error: str
    last_error_at: dt.datetime | None
    refused: list[dict[str, object]] = field(default_factory=list)  # rows set aside

    @property
    def failing(self) -> bool:
        """True when the last attempt failed (the error is newer than the last success)."""
        if self.last_error_at is None:
            return False
        return self.last_success is None or self.last_error_at >= self.last_success


def record(store: Store, clock: Clock, error: str) -> None:
    """Note the outcome of a cycle that asked the server something (``error`` "" = fine)."""
    unsent = len(store.journal_entries(unsent_only=True))
    now = clock.now().isoformat()
    with store.transaction() as tx:
        if error:
            tx.set_meta(LAST_ERROR, error[:300])
            tx.set_meta(LAST_ERROR_AT, now)
        else:
            tx.set_meta(LAST_SUCCESS, now)
        tx.set_meta(BACKLOG, str(unsent))


def note_refused(store: Store, row: JournalEntry, reason: str) -> None:
    """Remember a row the server refused for good (seq, uuid, kind, one-line reason)."""
    with store.transaction() as tx:
        kept = _refused(tx.meta(REFUSED))
        if not any(item.get("uuid") == row.uuid for item in kept):
            item = {"seq": row.seq, "uuid": row.uuid, "kind": row.kind, "reason": reason[:200]}
            kept.append(item)
        tx.set_meta(REFUSED, json.dumps(kept[-REFUSED_KEPT:]))


def _refused(text: str | None) -> list[dict[str, object]]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def seconds_since_success(store: Store, clock: Clock) -> float:
    """Wall-clock seconds since the last recorded success; 0 when none or in the future."""
    with store.reading() as tx:
        last = _time(tx.meta(LAST_SUCCESS))
    if last is None or last.tzinfo is None:
        return 0.0
    return max(0.0, (clock.now() - last).total_seconds())


def read(store: Store) -> SyncStatus:
    """The state now: the backlog counted from the journal, the rest from meta."""
    unsent = store.journal_entries(unsent_only=True)
    with store.reading() as tx:
        success, error, error_at = (tx.meta(k) for k in (LAST_SUCCESS, LAST_ERROR, LAST_ERROR_AT))
        refused = _refused(tx.meta(REFUSED))
    return SyncStatus(
        backlog=len(unsent),
        oldest_unsent=unsent[0].wall_time if unsent else None,
        last_success=_time(success),
        last_error=error or "",
        last_error_at=_time(error_at),
        refused=refused,
    )


def _time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None
