"""Storing a batch of kiosk transactions exactly once, and applying the new ones.

The transaction UUID is unique in the database. A batch is stored and applied in ONE
database transaction: rows already stored are answered as duplicates and not applied
again; the others are inserted and applied. When two copies of a batch arrive at once,
the second one's insert hits the unique index (PostgreSQL waits for the first to commit,
SQLite serialises writers); that race is retried once, and the retry sees every row as a
duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loanserver import apply
from loanserver.models import Transaction

ATTEMPTS = 2  # the first try, and one retry after a concurrent duplicate won the race


class IncomingRow(Protocol):
    """One journal row as the kiosk sent it (validated by the API layer)."""

    uuid: str
    seq: int
    kind: str
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class Stored:
    """The answer: every uuid of the batch in exactly one list (as the kiosk spelled it)."""

    accepted: list[str]
    duplicates: list[str]


def store_batch(session: Session, kiosk_id: int, rows: Sequence[IncomingRow]) -> Stored:
    """Store and apply ``rows`` of kiosk ``kiosk_id``; commits, or raises and keeps nothing."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _store_once(session, kiosk_id, rows)
        except IntegrityError:
            session.rollback()
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _store_once(session: Session, kiosk_id: int, rows: Sequence[IncomingRow]) -> Stored:
    wanted = {row.uuid.lower() for row in rows}
    known = set(session.scalars(select(Transaction.uuid).where(Transaction.uuid.in_(wanted))))
    accepted: list[str] = []
    duplicates: list[str] = []
    seen: set[str] = set()
    new: list[Transaction] = []
    for row in rows:
        key = row.uuid.lower()
        if key in seen:  # the same uuid twice in one batch: stored once, listed once
            continue
        seen.add(key)
        if key in known:
            duplicates.append(row.uuid)
            continue
        stored = Transaction(
            uuid=key,
            kiosk_id=kiosk_id,
            seq=row.seq,
            kind=row.kind,
            occurred_at=row.occurred_at,
            payload=row.payload,
        )
        session.add(stored)
        new.append(stored)
        accepted.append(row.uuid)
    session.flush()  # a concurrent copy of the batch fails here, on the unique uuid
    for stored in new:
        apply.apply(session, kiosk_id, stored)
    session.commit()
    return Stored(accepted=accepted, duplicates=duplicates)
