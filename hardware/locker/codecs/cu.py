"""Family "CU": Kerong KR-CU16 / CU12 style boards with a sum checksum.

Frame: ``STX=02, ADDR, CMD, [data], ETX=03, SUM``; SUM is the low byte of the sum of all
preceding bytes. ADDR carries the board number (0-15) in the high nibble and, for an
unlock, the lock index (channel - 1) in the low nibble; ``F0`` with CMD 32 means "all
boards". Replies put the board number in the high nibble the same way (the sheet's
examples are all board 0, where both readings agree).

Commands and lengths (the splitter must know them to find frame ends):

==== ========================================== ==============
CMD  meaning                                    length (bytes)
==== ========================================== ==============
30   status of one board (driver -> board)      5
31   unlock one lock; also a firmware's ack     5
32   status of all boards (ADDR F0)             5
33   unlock all locks of a board; also an ack   5
35   reply: data of one board                   9
36   reply: data of all boards (one per board)  9
37   unlock pulse time: query / set (2 bytes)   5 / 7
38   reply: unlock pulse time                   5 / 7
==== ========================================== ==============

Pulse time byte order: high byte first (big-endian, 10 ms units), as a public Kerong
CU12/CU16 driver sends it. No manual at hand confirms it, so this codec only encodes
pulses below 7.68 s (high byte 0..2): the 7-byte frame can then never be mistaken for
the 5-byte query form (its fourth byte would have to be ETX=03). A board that read the
bytes the other way round would get a far longer pulse: check ``decode_reply`` of the
38 answer on real hardware before trusting a configured pulse length.

Unlock acknowledgement: whether a CU board answers ``31`` at all varies by firmware.
``decode_reply`` accepts a 31/33 frame coming back as an ``UnlockAck`` (some firmware
echoes the command) and never requires one; the emulator's ``unlock_reply`` sends that
echo-style ack, so drivers are exercised with an answer that looks like their request.
"""

from __future__ import annotations

from hardware.errors import ChecksumError, ConfigurationError, ProtocolError
from hardware.locker.codecs.base import (
    BoardStatus,
    PulseTimeReply,
    PulseTimeRequest,
    Reply,
    Request,
    StatusRequest,
    UnlockAck,
    UnlockRequest,
)

STX = 0x02
ETX = 0x03
ALL_BOARDS = 0xF0  # ADDR of "status of all boards"

CMD_STATUS = 0x30
CMD_UNLOCK = 0x31
CMD_STATUS_ALL = 0x32
CMD_UNLOCK_ALL = 0x33
CMD_STATUS_REPLY = 0x35
CMD_STATUS_ALL_REPLY = 0x36
CMD_PULSE_TIME = 0x37
CMD_PULSE_TIME_REPLY = 0x38

CHANNELS = 16
# Frame lengths per command byte: 37/38 come bare (query) or with two data bytes.
_LENGTHS: dict[int, tuple[int, ...]] = {
    CMD_STATUS: (5,),
    CMD_UNLOCK: (5,),
    CMD_STATUS_ALL: (5,),
    CMD_UNLOCK_ALL: (5,),
    CMD_STATUS_REPLY: (9,),
    CMD_STATUS_ALL_REPLY: (9,),
    CMD_PULSE_TIME: (5, 7),
    CMD_PULSE_TIME_REPLY: (5, 7),
}
# Below 768 units (7.68 s) the high byte is 0..2, never ETX: see the module docstring.
_MAX_PULSE_UNITS = 0x2FF


def checksum(data: bytes) -> int:
    """The CU checksum: low byte of the sum of ``data``."""
    return sum(data) & 0xFF


def _frame(addr: int, cmd: int, data: bytes = b"") -> bytes:
    body = bytes((STX, addr, cmd)) + data + bytes((ETX,))
    return body + bytes((checksum(body),))


def _match(buf: bytes, start: int) -> int:
    """Length of the valid frame at ``start``; 0 when more bytes may make one; -1 when none."""
    have = len(buf) - start
    if have < 3:
        return 0
    lengths = _LENGTHS.get(buf[start + 2])
    if lengths is None:
        return -1
    need_more = False
    for length in lengths:
        etx_at = start + length - 2
        if have < length:
            # Reject early when the ETX position has arrived and holds something else, so
            # a garbage STX does not hold up the frames behind it.
            if etx_at < len(buf) and buf[etx_at] != ETX:
                continue
            need_more = True
        elif buf[etx_at] == ETX and buf[etx_at + 1] == checksum(buf[start : etx_at + 1]):
            return length
    return 0 if need_more else -1


def _bits(*data: int) -> tuple[bool, ...]:
    return tuple(bool(byte >> bit & 1) for byte in data for bit in range(8))


def _pack(bits: tuple[bool, ...] | None, what: str) -> bytes:
    bits = bits or ()
    if len(bits) > CHANNELS:
        raise ConfigurationError(f"a CU board reports at most {CHANNELS} {what}, got {len(bits)}")
    value = sum(1 << i for i, bit in enumerate(bits) if bit)
    return value.to_bytes(2, "little")  # first byte = channels 1-8


class CuCodec:
    """The CU family's wire protocol (see the module docstring)."""

    name = "cu"
    default_baud = 19200
    addresses = range(0, 16)
    max_channels = CHANNELS

    # --- helpers -----------------------------------------------------------------------
    def _board(self, address: int) -> int:
        if address not in self.addresses:
            raise ConfigurationError(f"CU board address {address} is not in 0..15")
        return address

    # --- driver side -------------------------------------------------------------------
    def status_request(self, address: int) -> bytes:
        """``02 B0 30 03 SUM``: the status of board ``address``."""
        return _frame(self._board(address) << 4, CMD_STATUS)

    def status_all_request(self) -> bytes:
        """``02 F0 32 03 27``: every board on the bus answers with a 36 frame, in turn."""
        return _frame(ALL_BOARDS, CMD_STATUS_ALL)

    def unlock_request(self, address: int, channel: int) -> bytes:
        """``02 BL 31 03 SUM`` (L = channel - 1); channel 0 unlocks all (CMD 33)."""
        board = self._board(address)
        if channel == 0:
            return _frame(board << 4, CMD_UNLOCK_ALL)
        if not 1 <= channel <= CHANNELS:
            raise ConfigurationError(f"CU channel {channel} is not in 1..{CHANNELS}")
        return _frame(board << 4 | (channel - 1), CMD_UNLOCK)

    def pulse_time_request(self, address: int, pulse_ms: int) -> bytes | None:
        """``02 B0 37 HI LO 03 SUM``: set the pulse to ``pulse_ms`` (rounded to 10 ms)."""
        units = max(1, round(pulse_ms / 10)) if pulse_ms > 0 else 0
        if not 1 <= units <= _MAX_PULSE_UNITS:
            raise ConfigurationError(
                f"CU pulse length {pulse_ms} ms is not in 10..{_MAX_PULSE_UNITS * 10} ms"
            )
        return _frame(self._board(address) << 4, CMD_PULSE_TIME, units.to_bytes(2, "big"))

    def split_frame(self, buf: bytes) -> tuple[bytes | None, int]:
        """First complete, checksum-valid frame in ``buf`` (see ``Codec.split_frame``).

        Every STX is a candidate start. A candidate that cannot be a frame (unknown CMD,
        wrong ETX, bad SUM) is garbage, so the scan resyncs on the next STX. While a
        candidate still lacks bytes, a complete valid frame behind it is returned (the
        candidate was garbage); otherwise the bytes before the candidate are dropped and
        the caller waits for more.
        """
        buf = bytes(buf)
        waiting_at = -1
        start = buf.find(STX)
        while start >= 0:
            length = _match(buf, start)
            if length > 0:
                return buf[start : start + length], start + length
            if length == 0 and waiting_at < 0:
                waiting_at = start
            start = buf.find(STX, start + 1)
        if waiting_at >= 0:
            return None, waiting_at
        return None, len(buf)

    def _check(self, frame: bytes) -> tuple[int, int]:
        """Validate a whole frame; returns (ADDR, CMD)."""
        if len(frame) < 5:
            raise ProtocolError(f"short CU frame ({len(frame)} bytes): {frame.hex(' ')}")
        if frame[0] != STX:
            raise ProtocolError(f"CU frame does not start with STX 02: {frame.hex(' ')}")
        addr, cmd = frame[1], frame[2]
        lengths = _LENGTHS.get(cmd)
        if lengths is None:
            raise ProtocolError(f"unknown CU command {cmd:02X}: {frame.hex(' ')}")
        if len(frame) not in lengths:
            expected = " or ".join(str(n) for n in lengths)
            raise ProtocolError(
                f"CU command {cmd:02X} frame has {len(frame)} bytes, expected {expected}: "
                f"{frame.hex(' ')}"
            )
        if frame[-2] != ETX:
            raise ProtocolError(f"CU frame has no ETX 03 before its checksum: {frame.hex(' ')}")
        if frame[-1] != checksum(frame[:-1]):
            raise ChecksumError(
                f"CU checksum {frame[-1]:02X}, expected {checksum(frame[:-1]):02X}: "
                f"{frame.hex(' ')}"
            )
        return addr, cmd

    def decode_reply(self, frame: bytes) -> Reply:
        """35/36 -> ``BoardStatus``; 31/33 -> ``UnlockAck``; 38 -> ``PulseTimeReply``."""
        frame = bytes(frame)
        addr, cmd = self._check(frame)
        board = addr >> 4
        if cmd in (CMD_STATUS_REPLY, CMD_STATUS_ALL_REPLY):
            return BoardStatus(
                address=board, locks=_bits(frame[3], frame[4]), items=_bits(frame[5], frame[6])
            )
        if cmd == CMD_UNLOCK:
            return UnlockAck(address=board, channel=(addr & 0x0F) + 1)
        if cmd == CMD_UNLOCK_ALL:
            return UnlockAck(address=board, channel=0)
        if cmd == CMD_PULSE_TIME_REPLY:
            units = int.from_bytes(frame[3:5], "big") if len(frame) == 7 else None
            return PulseTimeReply(address=board, pulse_ms=None if units is None else units * 10)
        raise ProtocolError(f"CU command {cmd:02X} is a request, not a reply: {frame.hex(' ')}")

    # --- board side --------------------------------------------------------------------
    def decode_request(self, frame: bytes) -> Request:
        """30/32 -> ``StatusRequest``; 31/33 -> ``UnlockRequest``; 37 -> ``PulseTimeRequest``.

        CMD 32 asks every board whatever its ADDR byte (``F0`` by convention).
        """
        frame = bytes(frame)
        addr, cmd = self._check(frame)
        board = addr >> 4
        if cmd == CMD_STATUS:
            return StatusRequest(address=board)
        if cmd == CMD_STATUS_ALL:
            return StatusRequest(address=None)
        if cmd == CMD_UNLOCK:
            return UnlockRequest(address=board, channel=(addr & 0x0F) + 1)
        if cmd == CMD_UNLOCK_ALL:
            return UnlockRequest(address=board, channel=0)
        if cmd == CMD_PULSE_TIME:
            units = int.from_bytes(frame[3:5], "big") if len(frame) == 7 else None
            return PulseTimeRequest(address=board, pulse_ms=None if units is None else units * 10)
        raise ProtocolError(f"CU command {cmd:02X} is a reply, not a request: {frame.hex(' ')}")

    def status_reply(self, status: BoardStatus, *, broadcast: bool = False) -> bytes:
        """``02 B0 35|36 <hooks 1-8> <hooks 9-16> <IR 1-8> <IR 9-16> 03 SUM``.

        Fewer than 16 channels (a CU12) are padded with clear bits; no items: all clear.
        """
        data = _pack(status.locks, "locks") + _pack(status.items, "item sensors")
        cmd = CMD_STATUS_ALL_REPLY if broadcast else CMD_STATUS_REPLY
        return _frame(self._board(status.address) << 4, cmd, data)

    def unlock_reply(self, address: int, channel: int) -> bytes | None:
        """An echo-style ack: the 31 (or 33 for channel 0) frame of the same lock."""
        return self.unlock_request(address, channel)

    def pulse_time_reply(self, address: int, pulse_ms: int) -> bytes:
        """``02 B0 38 HI LO 03 SUM``: the board's pulse length (10 ms units, high first)."""
        units = min(max(0, round(pulse_ms / 10)), 0xFFFF)
        return _frame(self._board(address) << 4, CMD_PULSE_TIME_REPLY, units.to_bytes(2, "big"))


CODEC = CuCodec()
