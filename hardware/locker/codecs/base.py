"""The contract of a lock-board codec: pure bytes in, values out, no I/O.

A codec knows one board family's wire protocol from both sides: the driver side
(requests out, replies in) and the board side (requests in, replies out), so the
board emulator and the driver can never drift apart. Channels are 1-based everywhere
in this package; bit 0 of a status byte is channel 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class BoardStatus:
    """Raw feedback of one board, before any polarity is applied.

    ``locks[i]`` is True when the feedback bit of channel i+1 is set. ``items`` holds the
    item (IR) sensor bits in the same way, or None when the family reports none.
    """

    address: int
    locks: tuple[bool, ...]
    items: tuple[bool, ...] | None = None


@dataclass(frozen=True)
class UnlockAck:
    """A board's answer to an unlock command (not every firmware sends one)."""

    address: int
    channel: int  # 0 = "all channels"


@dataclass(frozen=True)
class StatusRequest:
    """Board side: the driver asks for the status of one board (or all: address None)."""

    address: int | None


@dataclass(frozen=True)
class UnlockRequest:
    """Board side: the driver asks to pulse one lock (channel 1..n) or all (channel 0)."""

    address: int
    channel: int


@dataclass(frozen=True)
class PulseTimeRequest:
    """Board side: set the unlock pulse length (``pulse_ms``) or ask for it (None)."""

    address: int
    pulse_ms: int | None


@dataclass(frozen=True)
class PulseTimeReply:
    """Driver side: the board's unlock pulse length (None: a bare answer without it)."""

    address: int
    pulse_ms: int | None


Reply = BoardStatus | UnlockAck | PulseTimeReply
Request = StatusRequest | UnlockRequest | PulseTimeRequest


class Codec(Protocol):
    """One lock-board family's wire protocol."""

    name: str
    default_baud: int
    addresses: range  # board addresses the family can express (DIP switch range)
    max_channels: int  # channels one board can report

    # --- driver side ---------------------------------------------------------------
    def status_request(self, address: int) -> bytes:
        """The frame that asks board ``address`` for the state of all its channels."""
        ...

    def unlock_request(self, address: int, channel: int) -> bytes:
        """The frame that pulses lock ``channel`` (1-based) of board ``address``."""
        ...

    def pulse_time_request(self, address: int, pulse_ms: int) -> bytes | None:
        """The frame that sets a board's unlock pulse length, or None when the family
        has no such command (the board's own fixed pulse is then used)."""
        ...

    def split_frame(self, buf: bytes) -> tuple[bytes | None, int]:
        """Find the first complete frame at the start of ``buf``.

        Returns ``(frame, consumed)``: a whole frame with a valid checksum and the bytes
        it used (including any garbage skipped before it); ``(None, n)`` with n > 0
        when the first n bytes are garbage to drop; ``(None, 0)`` when more bytes are
        needed. Recognises every frame of the family, requests and replies alike, so
        the emulator splits with it too. Never raises on any input.
        """
        ...

    def decode_reply(self, frame: bytes) -> Reply:
        """Decode one reply frame (from ``split_frame`` or cut by line silence).

        Raises ``ChecksumError`` or ``ProtocolError`` with a one-line reason on
        anything that is not a well-formed reply; never another exception type.
        """
        ...

    # --- board side (the emulator) ---------------------------------------------------
    def decode_request(self, frame: bytes) -> Request:
        """Decode a request frame as a board would; raises ``ProtocolError``."""
        ...

    def status_reply(self, status: BoardStatus, *, broadcast: bool = False) -> bytes:
        """The frame a board sends with its status (``broadcast``: answer to "all")."""
        ...

    def unlock_reply(self, address: int, channel: int) -> bytes | None:
        """The frame a board sends after an unlock, or None when the family is silent."""
        ...

    def pulse_time_reply(self, address: int, pulse_ms: int) -> bytes | None:
        """The frame a board sends with its pulse length, or None without that command."""
        ...
