"""The CardReader protocol and the values it delivers: what the kiosk sees of an eID read.

The reader (``pcsc.py``, or ``simulated.py`` in tests and the demo) runs its own thread
and reports to subscribers with ``CardInserted``, ``CardRemoved`` and ``ReaderError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from hardware.eid.identity import Address, Identity


class VerificationStatus(StrEnum):
    """Whether the identity and address files are proven to come from a Belgian card."""

    VERIFIED = "verified"  # signatures good, RRN certificate chains to a trusted root
    UNTRUSTED_ROOT = "untrusted_root"  # signatures good, but not under a trusted root
    BAD_SIGNATURE = "bad_signature"  # a file does not match its signature (tampered)
    NOT_CHECKED = "not_checked"  # verification switched off or impossible (reason says)


@dataclass(frozen=True)
class Verification:
    """The authenticity outcome with a reason a person can read."""

    status: VerificationStatus
    reason: str = ""
    algorithm: str | None = None  # e.g. "RSA PKCS#1 v1.5 SHA-1", "ECDSA P-384 SHA-384"


@dataclass(frozen=True)
class CardInfo:
    """What the chip says about itself (GET CARD DATA) and its ATR."""

    atr: bytes
    applet_version: str | None = None  # "1.7", "1.8"
    chip_serial: bytes | None = None
    life_cycle: int | None = None  # 0x0F: personalised


@dataclass(frozen=True)
class ReadTiming:
    """The cost of one card read."""

    apdus: int
    bytes_read: int
    ms: float


class ReaderErrorKind(StrEnum):
    """What went wrong, in terms an installer can act on."""

    PCSCD_UNAVAILABLE = "pcscd_unavailable"  # the PC/SC service is not running
    NO_READER = "no_reader"
    READER_REMOVED = "reader_removed"
    CARD_REMOVED = "card_removed"  # pulled out in the middle of a read
    NOT_AN_EID = "not_an_eid"  # another kind of card (bank card, ...)
    MUTE_CARD = "mute_card"  # inserted the wrong way round, dirty contacts, dead chip
    NOT_ACTIVATED = "not_activated"  # 6D00: consulate card before activation
    READ_FAILED = "read_failed"  # anything else while reading


@dataclass(frozen=True)
class EidEvent:
    """Base of every reader event; ``at`` is ``time.monotonic()``."""

    at: float = field(default_factory=time.monotonic, kw_only=True)


@dataclass(frozen=True)
class CardInserted(EidEvent):
    """A card was read. ``photo`` is only there when asked for; never logged (repr=False)."""

    reader: str
    identity: Identity
    address: Address | None
    verification: Verification
    card: CardInfo
    timing: ReadTiming
    photo: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CardRemoved(EidEvent):
    """The card left the reader."""

    reader: str


@dataclass(frozen=True)
class ReaderError(EidEvent):
    """The reader could not deliver a card; ``message`` is one line without personal data."""

    reader: str | None
    kind: ReaderErrorKind
    message: str


Subscriber = Callable[[EidEvent], None]


@runtime_checkable
class CardReader(Protocol):
    """What the kiosk core needs of a card reader, whatever drives it."""

    def start(self) -> None:
        """Start watching readers and cards on a background thread; never blocks long."""
        ...

    def close(self) -> None:
        """Stop watching; safe to call twice."""
        ...

    def readers(self) -> list[str]:
        """The names of the readers present now (empty when none or no service)."""
        ...

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` for every event (on the reader thread); returns unsubscribe."""
        ...
