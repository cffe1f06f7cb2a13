"""The BELPIC APDU layer: SELECT, chunked READ BINARY and GET CARD DATA over ``transmit``.

Pure: the caller gives a ``transmit(apdu) -> (data, sw)`` callable (pyscard in ``pcsc.py``,
a ``BelpicCard`` in tests) and exceptions it raises pass through untouched. Status words
become ``CardStatusError`` subclasses whose message names the status word in hex, never
file contents. The card speaks T=0, so ``61xx`` (more data: GET RESPONSE) and ``6Cxx``
(wrong Le: re-send with Le=xx) are handled for every command.

Every loop is bounded: a card (or a cheap reader) that keeps answering nonsense ends in a
``ProtocolError`` after a fixed number of APDUs, never in an endless read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hardware.errors import ConfigurationError, ProtocolError

Transmit = Callable[[bytes], tuple[bytes, int]]

# File paths from the MF (3F00): production readers send the path with 3F00 included.
IDENTITY = bytes.fromhex("3F00DF014031")
IDENTITY_SIGNATURE = bytes.fromhex("3F00DF014032")
ADDRESS = bytes.fromhex("3F00DF014033")
ADDRESS_SIGNATURE = bytes.fromhex("3F00DF014034")
PHOTO = bytes.fromhex("3F00DF014035")
BASIC_KEY = bytes.fromhex("3F00DF014040")  # applet 1.8 only
ROOT_CERTIFICATE = bytes.fromhex("3F00DF00503B")
RRN_CERTIFICATE = bytes.fromhex("3F00DF00503C")

BELPIC_AID = bytes.fromhex("A0 00 00 00 30 29 05 70 00 AD 13 10 01 01 FF")

CHUNK = 0xF8  # some readers fail on READ BINARY above 248 bytes (the middleware uses 252)
MAX_OFFSET = 0x7FFF  # READ BINARY P1 bit 8 selects SFI mode: offsets are 15 bits
MAX_APDUS_PER_READ = 400  # a 32 KB file in 248-byte chunks with GET RESPONSE to spare
_MAX_CHAIN = 16  # 61xx / 6Cxx follow-ups for one command
_MAX_RESELECTS = 4  # re-select-and-retry per file read (one per offset)

SW_OK = 0x9000
_FALLBACK_SWS = (0x6A82, 0x6A86)  # path select refused: try one file id at a time


class CardStatusError(ProtocolError):
    """The card answered a status word other than success; ``sw`` holds it (e.g. 0x6A82)."""

    meaning = "unexpected status"

    def __init__(self, sw: int, command: str = "command") -> None:
        self.sw = sw
        self.command = command
        super().__init__(f"{command}: card answered {sw:04X} ({self.meaning})")


class SecurityNotSatisfied(CardStatusError):
    """6982: the file needs a PIN or secure channel (none of the identity files do)."""

    meaning = "security status not satisfied"


class NoFileSelected(CardStatusError):
    """6986: command not allowed, no current EF (lost selection, cheap reader)."""

    meaning = "no file selected"


class FileNotFound(CardStatusError):
    """6A82: the card has no such file (not a BELPIC card, or no photo on this card)."""

    meaning = "file not found"


class CardNotActivated(CardStatusError):
    """6D00: the card refuses the command; consulate cards answer this before activation."""

    meaning = "card not activated"


class UnknownStatus(CardStatusError):
    """Any status word the reader does not expect."""

    meaning = "unknown status"


_STATUS_CLASSES: dict[int, type[CardStatusError]] = {
    0x6982: SecurityNotSatisfied,
    0x6986: NoFileSelected,
    0x6A82: FileNotFound,
    0x6D00: CardNotActivated,
}


def status_error(sw: int, command: str = "command") -> CardStatusError:
    """The exception for status word ``sw`` (a subclass of ``CardStatusError``)."""
    return _STATUS_CLASSES.get(sw, UnknownStatus)(sw, command)


@dataclass(frozen=True)
class CardData:
    """What GET CARD DATA says: chip serial, applet version ("1.7", "1.8"), life cycle."""

    chip_serial: bytes = field(repr=False)
    applet_version: str
    life_cycle: int

    @property
    def chip_serial_hex(self) -> str:
        """The chip serial as upper-case hex (equals the identity file's chip number)."""
        return self.chip_serial.hex().upper()


def applet_version_text(byte: int) -> str:
    """0x17 -> "1.7", 0x18 -> "1.8" (the version byte is two BCD-like nibbles)."""
    return f"{byte >> 4:X}.{byte & 0x0F:X}"


def der_total_length(head: bytes) -> int | None:
    """The whole length of the DER SEQUENCE that ``head`` starts, or None when ``head``
    is too short to tell or does not start with a definite-length SEQUENCE."""
    if len(head) < 2 or head[0] != 0x30:
        return None
    first = head[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 3 or len(head) < 2 + count:
        return None  # indefinite or absurd length: read the whole file instead
    return 2 + count + int.from_bytes(head[2 : 2 + count], "big")


def _path_name(path: bytes) -> str:
    return path.hex().upper()


class CardSession:
    """BELPIC commands over one ``transmit``; ``apdus`` and ``bytes_read`` count the cost.

    Not thread-safe: one session per card connection, used from one thread.
    """

    def __init__(self, transmit: Transmit, *, chunk: int = CHUNK) -> None:
        if not 1 <= chunk <= 0xFF:
            raise ConfigurationError(f"READ BINARY chunk must be 1-255 bytes, not {chunk}")
        self._transmit = transmit
        self.chunk = chunk
        self.apdus = 0  # every command sent, GET RESPONSE and retries included
        self.bytes_read = 0  # response data bytes received (status words not counted)

    # --- low level ---------------------------------------------------------------------------
    def _send(self, apdu: bytes) -> tuple[bytes, int]:
        self.apdus += 1
        data, sw = self._transmit(apdu)
        if not isinstance(sw, int) or not 0 <= sw <= 0xFFFF:
            raise ProtocolError("reader returned an invalid status word")
        data = bytes(data)
        self.bytes_read += len(data)
        return data, sw

    def _exchange(self, apdu: bytes) -> tuple[bytes, int]:
        """Send ``apdu`` and follow T=0 ``6Cxx`` (re-send with Le=xx) and ``61xx`` chains."""
        command = apdu
        collected = b""  # response parts already fetched with GET RESPONSE
        data, sw = self._send(command)
        for _ in range(_MAX_CHAIN):
            if sw >> 8 == 0x6C and len(command) == 5:
                # Wrong Le on a case-2 command (GET RESPONSE included): the same command
                # again with the Le the card asked for.
                command = command[:4] + bytes([sw & 0xFF])
                data, sw = self._send(command)
            elif sw >> 8 == 0x61:
                # More response bytes wait (case-4 command on T=0): collect them.
                collected += data
                command = bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF])
                data, sw = self._send(command)
            else:
                return collected + data, sw
        raise ProtocolError(f"card kept chaining responses (last status {sw:04X})")

    # --- SELECT --------------------------------------------------------------------------------
    def select(self, path: bytes) -> None:
        """Select the file at ``path`` (from the MF, 3F00 included), without FCI.

        Cards that refuse a path select (6A82/6A86) get one file id at a time instead.
        """
        if len(path) < 2 or len(path) % 2 or len(path) > 0xFF:
            raise ConfigurationError(f"a card path is whole 2-byte file ids, not {len(path)} bytes")
        name = f"SELECT {_path_name(path)}"
        _, sw = self._exchange(bytes([0x00, 0xA4, 0x08, 0x0C, len(path)]) + path)
        if sw == SW_OK:
            return
        if sw not in _FALLBACK_SWS:
            raise status_error(sw, name)
        for i in range(0, len(path), 2):
            fid = path[i : i + 2]
            _, sw = self._exchange(bytes([0x00, 0xA4, 0x02, 0x0C, 0x02]) + fid)
            if sw != SW_OK:
                raise status_error(sw, f"{name} (file id {_path_name(fid)})")

    # --- READ BINARY ---------------------------------------------------------------------------
    def read_file(self, path: bytes) -> bytes:
        """Select ``path`` and read the whole file (padding included, as the card has it)."""
        return self._read(path, None)

    def read_der(self, path: bytes) -> bytes:
        """Select ``path`` and read one DER structure: stop at its encoded length.

        Certificate files are zero padded (an applet 1.8 file is 2 KB for a ~550-byte
        certificate); a file that does not start like DER is read whole.
        """
        return self._read(path, None, der=True)

    def read_prefix(self, path: bytes, n: int) -> bytes:
        """Select ``path`` and read only its first ``n`` bytes (fewer if the file is shorter).

        Used to fingerprint a certificate without reading all of it.
        """
        if n < 1:
            raise ConfigurationError(f"read_prefix needs n >= 1, not {n}")
        return self._read(path, n)

    def _read(self, path: bytes, limit: int | None, *, der: bool = False) -> bytes:
        self.select(path)
        name = f"READ BINARY {_path_name(path)}"
        budget_end = self.apdus + MAX_APDUS_PER_READ
        out = bytearray()
        reselects = 0
        retried_at: int | None = None  # offset of the last re-select-and-retry
        while limit is None or len(out) < limit:
            offset = len(out)
            if offset > MAX_OFFSET:
                raise ProtocolError(f"{name}: file longer than {MAX_OFFSET + 1} bytes")
            if self.apdus >= budget_end:
                raise ProtocolError(f"{name}: no end after {MAX_APDUS_PER_READ} APDUs")
            want = self.chunk if limit is None else min(self.chunk, limit - offset)
            apdu = bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, want])
            data, sw = self._exchange(apdu)
            if sw == SW_OK and data:
                out += data
                if der and limit is None:
                    limit = der_total_length(bytes(out))
                    if limit is not None and len(out) >= limit:
                        break
                if len(data) < want:
                    break  # a short chunk: the end of the file
                continue
            if sw == 0x6282 and data:
                out += data  # ISO 7816 "end of file before Le bytes": the last chunk
                break
            spurious = (sw == SW_OK and not data) or sw == 0x6986 or (sw == 0x6B00 and offset > 0)
            if not spurious:
                raise status_error(sw, f"{name} at offset {offset}")
            if retried_at == offset or reselects >= _MAX_RESELECTS:
                # The same answer after a fresh selection is the card's real answer.
                if sw == 0x6B00:
                    break  # offset at the end: the file is an exact multiple of the chunk
                if sw == SW_OK:
                    raise ProtocolError(f"{name}: card returned no data at offset {offset}")
                raise status_error(sw, f"{name} at offset {offset}")
            # A cheap reader's mid-file hiccup (or the exact end: 6B00 cannot tell them
            # apart): select the file again and retry this offset once.
            reselects += 1
            retried_at = offset
            self.select(path)
        return bytes(out if limit is None else out[:limit])

    # --- GET CARD DATA -------------------------------------------------------------------------
    def card_data(self) -> CardData:
        """GET CARD DATA: chip serial (bytes 0-15), applet version (21), life cycle (27)."""
        data, sw = self._exchange(bytes.fromhex("80E400001C"))
        if sw != SW_OK:
            raise status_error(sw, "GET CARD DATA")
        if len(data) < 28:
            raise ProtocolError(f"GET CARD DATA: {len(data)} bytes, expected 28")
        return CardData(
            chip_serial=data[:16],
            applet_version=applet_version_text(data[21]),
            life_cycle=data[27],
        )
