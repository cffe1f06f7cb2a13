"""Family "8A/80": common generic lock boards with an XOR checksum (BCC).

Frames: ``HDR BOARD CH FUNC BCC``, BCC = XOR of all preceding bytes. Boards 1-31.

- ``8A BB CH 11 BCC``: unlock lock CH of board BB (CH 0 = all locks).
- ``80 BB 00 33 BCC``: query all locks (``80 BB CH 33 BCC`` queries one lock; a board
  modelled here answers it with its full status too).
- Unlock reply ``8A BB CH 00|11 BCC`` (firmware dependent) -> ``UnlockAck``.
- Status reply ``80 BB <n status bytes> 33 BCC``, highest channel group first, the last
  status byte = channels 1-8, bit 0 = the lowest channel. Boards differ in n (even an
  8-channel board may send three), so the length is never predicted: a status frame ends
  at the first byte that follows a ``33`` and equals the XOR of everything before it.
  That shortest-match rule is what keeps two frames sent back to back apart (a frame's
  bytes XOR to zero, so two valid frames in a row also end "validly"). Its known blind
  spot: a status byte 0x33 followed by a byte equal to the running XOR ends the frame
  early (about 1 in 256 for those states); the rest then reads as garbage.
- The one-status-byte reply ``80 01 00 33 B2`` is byte-identical to the query: it is a
  frame either way, ``decode_reply`` reads it as a status of 8 channels and
  ``decode_request`` as a query.
- Unsolicited ``82 ...`` push frames are not modelled (their layout varies): the
  splitter treats them as garbage and resyncs on the next 8A/80 header.
- No pulse-length command: ``pulse_time_request`` returns None.
"""

from __future__ import annotations

from functools import reduce
from operator import xor

from hardware.errors import ChecksumError, ConfigurationError, ProtocolError
from hardware.locker.codecs.base import (
    BoardStatus,
    Reply,
    Request,
    StatusRequest,
    UnlockAck,
    UnlockRequest,
)

HDR_UNLOCK = 0x8A
HDR_STATUS = 0x80
HDR_PUSH = 0x82  # unsolicited status push (not decoded)
FUNC_UNLOCK = 0x11
FUNC_ACK = 0x00
FUNC_STATUS = 0x33

STATUS_BYTES = 3  # what status_reply sends for up to 24 channels, as common boards do
# The longest status reply searched for (64 channels): past this a candidate is garbage.
MAX_STATUS_BYTES = 8
_MIN_LEN = 5
_MAX_LEN = 4 + MAX_STATUS_BYTES


def bcc(data: bytes) -> int:
    """The 8A/80 checksum: XOR of all bytes of ``data``."""
    return reduce(xor, data, 0)


def _frame(*body: int) -> bytes:
    return bytes(body) + bytes((bcc(bytes(body)),))


def _match(buf: bytes, start: int) -> int:
    """Length of the valid frame at ``start``; 0 when more bytes may make one; -1 when none."""
    head = buf[start]
    end = len(buf)
    if head == HDR_UNLOCK:
        if start + 3 < end and buf[start + 3] not in (FUNC_UNLOCK, FUNC_ACK):
            return -1
        if start + _MIN_LEN > end:
            return 0
        return _MIN_LEN if buf[start + 4] == bcc(buf[start : start + 4]) else -1
    if head == HDR_STATUS:
        running = bcc(buf[start : start + _MIN_LEN - 1])
        for length in range(_MIN_LEN, _MAX_LEN + 1):
            last = start + length - 1
            if last >= end:
                return 0
            if buf[last - 1] == FUNC_STATUS and buf[last] == running:
                return length
            running ^= buf[last]
        return -1
    return -1


class Xor8aCodec:
    """The 8A/80 family's wire protocol (see the module docstring)."""

    name = "8a"
    default_baud = 9600
    addresses = range(1, 32)
    max_channels = STATUS_BYTES * 8

    def _board(self, address: int) -> int:
        if address not in self.addresses:
            raise ConfigurationError(f"8A board address {address} is not in 1..31")
        return address

    # --- driver side -------------------------------------------------------------------
    def status_request(self, address: int) -> bytes:
        """``80 BB 00 33 BCC``: query all locks of board ``address``."""
        return _frame(HDR_STATUS, self._board(address), 0x00, FUNC_STATUS)

    def unlock_request(self, address: int, channel: int) -> bytes:
        """``8A BB CH 11 BCC``; channel 0 unlocks every lock of the board."""
        if not 0 <= channel <= self.max_channels:
            raise ConfigurationError(f"8A channel {channel} is not in 0..{self.max_channels}")
        return _frame(HDR_UNLOCK, self._board(address), channel, FUNC_UNLOCK)

    def pulse_time_request(self, address: int, pulse_ms: int) -> bytes | None:
        """None: these boards have a fixed pulse length."""
        return None

    def pulse_time_reply(self, address: int, pulse_ms: int) -> bytes | None:
        """None: these boards have no pulse-length command."""
        return None

    def split_frame(self, buf: bytes) -> tuple[bytes | None, int]:
        """First complete, checksum-valid frame in ``buf`` (see ``Codec.split_frame``).

        Every 8A/80 byte is a candidate start; a candidate that cannot be a frame is
        garbage. While a candidate still lacks bytes, a complete valid frame behind it
        wins (the candidate was garbage); otherwise the bytes before it are dropped and
        the caller waits for more.
        """
        buf = bytes(buf)
        waiting_at = -1
        for start, byte in enumerate(buf):
            if byte not in (HDR_UNLOCK, HDR_STATUS):
                continue
            length = _match(buf, start)
            if length > 0:
                return buf[start : start + length], start + length
            if length == 0 and waiting_at < 0:
                waiting_at = start
        if waiting_at >= 0:
            return None, waiting_at
        return None, len(buf)

    def _check(self, frame: bytes) -> None:
        if len(frame) < _MIN_LEN:
            raise ProtocolError(f"short 8A/80 frame ({len(frame)} bytes): {frame.hex(' ')}")
        head = frame[0]
        if head == HDR_PUSH:
            raise ProtocolError(f"unsolicited 82 push frame, not decoded: {frame.hex(' ')}")
        if head not in (HDR_UNLOCK, HDR_STATUS):
            raise ProtocolError(f"8A/80 frame with header {head:02X}: {frame.hex(' ')}")
        if head == HDR_UNLOCK and len(frame) != _MIN_LEN:
            raise ProtocolError(f"8A frame of {len(frame)} bytes, expected 5: {frame.hex(' ')}")
        if head == HDR_STATUS:
            if len(frame) > _MAX_LEN:
                raise ProtocolError(
                    f"80 frame of {len(frame)} bytes, longer than {_MAX_LEN}: {frame.hex(' ')}"
                )
            if frame[-2] != FUNC_STATUS:
                raise ProtocolError(f"80 frame without 33 before its BCC: {frame.hex(' ')}")
        expected = bcc(frame[:-1])
        if frame[-1] != expected:
            raise ChecksumError(
                f"8A/80 BCC {frame[-1]:02X}, expected {expected:02X}: {frame.hex(' ')}"
            )

    def decode_reply(self, frame: bytes) -> Reply:
        """``8A BB CH 00|11`` -> ``UnlockAck``; ``80 BB <status...> 33`` -> ``BoardStatus``."""
        frame = bytes(frame)
        self._check(frame)
        if frame[0] == HDR_UNLOCK:
            if frame[3] not in (FUNC_ACK, FUNC_UNLOCK):
                raise ProtocolError(f"8A reply with function {frame[3]:02X}: {frame.hex(' ')}")
            return UnlockAck(address=frame[1], channel=frame[2])
        groups = frame[2:-2][::-1]  # the last status byte holds channels 1-8
        locks = tuple(bool(byte >> bit & 1) for byte in groups for bit in range(8))
        return BoardStatus(address=frame[1], locks=locks, items=None)

    # --- board side --------------------------------------------------------------------
    def decode_request(self, frame: bytes) -> Request:
        """``8A BB CH 11`` -> ``UnlockRequest``; ``80 BB CH 33`` -> ``StatusRequest``."""
        frame = bytes(frame)
        self._check(frame)
        if frame[0] == HDR_UNLOCK:
            if frame[3] != FUNC_UNLOCK:
                raise ProtocolError(f"8A frame with function {frame[3]:02X} is not an unlock")
            return UnlockRequest(address=frame[1], channel=frame[2])
        if len(frame) != _MIN_LEN:
            raise ProtocolError(f"80 frame of {len(frame)} bytes is a status reply, not a query")
        return StatusRequest(address=frame[1])

    def status_reply(self, status: BoardStatus, *, broadcast: bool = False) -> bytes:
        """``80 BB <3 status bytes> 33 BCC`` (more bytes only past 24 channels).

        ``broadcast`` is ignored: the family has no "all boards" query.
        """
        locks = status.locks
        count = max(STATUS_BYTES, (len(locks) + 7) // 8)
        if count > MAX_STATUS_BYTES:
            raise ConfigurationError(f"an 8A board reports at most {MAX_STATUS_BYTES * 8} locks")
        value = sum(1 << i for i, bit in enumerate(locks) if bit)
        data = value.to_bytes(count, "big")  # highest group first
        return _frame(HDR_STATUS, self._board(status.address), *data, FUNC_STATUS)

    def unlock_reply(self, address: int, channel: int) -> bytes | None:
        """``8A BB CH 00 BCC``: the variant that cannot be mistaken for the request's echo."""
        return _frame(HDR_UNLOCK, self._board(address), channel & 0xFF, FUNC_ACK)


CODEC = Xor8aCodec()
