"""Which cards this kiosk accepts: validity dates and document types (pure).

Reasons are short English sentences without personal data; the UI translates them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from hardware.eid.identity import Identity, document_type_name
from hardware.errors import ConfigurationError


@dataclass(frozen=True)
class CardDecision:
    """Whether the card may be used here, and why (shown to the person, after translation)."""

    accepted: bool
    reason: str


def _type_key(code: str) -> str:
    # The card writes "1" or "01" for the same type: compare numbers, not text.
    text = str(code).strip()
    return str(int(text)) if text.isascii() and text.isdigit() else text.upper()


def check_card(
    identity: Identity,
    today: dt.date,
    *,
    grace_days: int = 0,
    accepted_document_types: Collection[str] | None = None,
) -> CardDecision:
    """Accept or refuse a card by its document type and validity dates.

    A card is refused when its type is not in ``accepted_document_types`` (None: any type),
    when it has no validity dates, before its first day of validity, and when
    ``validity_end + grace_days`` lies before ``today`` (the last day itself is valid).
    """
    if grace_days < 0:
        raise ConfigurationError(f"grace_days must be 0 or more, not {grace_days}")
    if accepted_document_types is not None:
        accepted = {_type_key(code) for code in accepted_document_types}
        if _type_key(identity.document_type) not in accepted:
            return CardDecision(
                False, f"{document_type_name(identity.document_type)} not accepted here"
            )
    begin, end = identity.validity_begin, identity.validity_end
    if begin is None or end is None:
        return CardDecision(False, "card has no validity dates")
    if today < begin:
        return CardDecision(False, f"card not valid before {begin.isoformat()}")
    if end + dt.timedelta(days=grace_days) < today:
        return CardDecision(False, f"card expired on {end.isoformat()}")
    if end < today:
        return CardDecision(
            True, f"card expired on {end.isoformat()}, accepted during the grace period"
        )
    return CardDecision(True, f"card valid until {end.isoformat()}")
