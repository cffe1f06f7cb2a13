"""From an eID read to what the core keeps: a borrower key and, for the screen, a first name.

The national number is turned into ``HMAC-SHA256(pepper, number)`` here, on the reader's
thread, before anything reaches the core's queue; the rest of the identity is dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from hardware.eid.base import (
    CardInserted,
    CardRemoved,
    EidEvent,
    ReaderError,
    VerificationStatus,
)
from hardware.eid.policy import check_card
from hardware.eid.privacy import borrower_key
from kiosk.core.events import CardGone, IdentityPresented, ReaderTrouble


@dataclass(frozen=True)
class CardRules:
    """Which cards this kiosk accepts (from ``[eid]`` in the configuration)."""

    accept_unverified: bool = False
    grace_days: int = 0
    accepted_document_types: Collection[str] | None = None


def translate(
    event: EidEvent, pepper: bytes, rules: CardRules, today: dt.date
) -> IdentityPresented | CardGone | ReaderTrouble | None:
    """The core's event for a reader event (None: nothing the core needs)."""
    if isinstance(event, CardRemoved):
        return CardGone()
    if isinstance(event, ReaderError):
        return ReaderTrouble(kind=event.kind.value, message=event.message)
    if not isinstance(event, CardInserted):
        return None
    identity = event.identity
    try:
        key = borrower_key(pepper, identity.national_number)
    except ValueError:
        return ReaderTrouble(kind="read_failed", message="the card has no usable national number")
    first_name = (identity.given_names or "").split(" ")[0].split(",")[0]
    status = event.verification.status
    if status is VerificationStatus.BAD_SIGNATURE:
        return IdentityPresented(key, first_name, False, "card.not_authentic")
    if status is not VerificationStatus.VERIFIED and not rules.accept_unverified:
        return IdentityPresented(key, first_name, False, "card.not_verified")
    decision = check_card(
        identity,
        today,
        grace_days=rules.grace_days,
        accepted_document_types=rules.accepted_document_types,
    )
    if not decision.accepted:
        return IdentityPresented(key, first_name, False, decision.reason)
    return IdentityPresented(key, first_name)
