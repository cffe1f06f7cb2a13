"""An in-memory BELPIC card: the eID applet's file system and APDU answers, with faults.

``BelpicCard`` answers APDUs as the real T=0 card does (see the fact sheet): SELECT by
path, by file id and by AID without FCI; READ BINARY that answers ``6Cxx`` when Le asks
for more than remains and ``6B00`` at or past the end; GET CARD DATA that answers
``61xx`` and hands its bytes out through GET RESPONSE. The card emulator (vpcd) and the
tests drive it; it does no I/O and logs nothing (its files are personal data).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from hardware.eid.apdu import (
    ADDRESS,
    ADDRESS_SIGNATURE,
    BELPIC_AID,
    IDENTITY,
    IDENTITY_SIGNATURE,
    PHOTO,
    ROOT_CERTIFICATE,
    RRN_CERTIFICATE,
)
from hardware.eid.cardfiles import ATR_17, ATR_17_OLD, ATR_18, CardFiles
from hardware.errors import DeviceTimeout, DeviceUnavailable

MF = b"\x3f\x00"
_DFS = (MF, bytes.fromhex("3F00DF00"), bytes.fromhex("3F00DF01"))

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_NO_EF = b"\x69\x86"
SW_CONDITIONS = b"\x69\x85"
SW_NOT_FOUND = b"\x6a\x82"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_WRONG_OFFSET = b"\x6b\x00"
SW_WRONG_INS = b"\x6d\x00"
SW_WRONG_CLA = b"\x6e\x00"


class CardGone(DeviceUnavailable):
    """The (emulated) card was pulled out: no more answers from it."""


class CardMute(DeviceTimeout):
    """The (emulated) card does not answer at all (dead chip, card the wrong way round)."""


@dataclass
class CardFaults:
    """Faults to inject; APDU numbers count from 1 (the first APDU after power-on).

    ``no_path_select`` makes SELECT by path answer 6A86, as some cards do, so a reader
    must fall back to one file id at a time.
    """

    remove_after_apdus: int | None = None
    mute: bool = False
    spurious_6b00_at: set[int] = field(default_factory=set)
    spurious_6986_at: set[int] = field(default_factory=set)
    not_activated: bool = False
    no_path_select: bool = False


def _chip_number(identity: bytes) -> bytes:
    """Tag 02 of the identity file (the chip serial GET CARD DATA reports), if it parses."""
    i = 0
    while i + 1 < len(identity):
        tag = identity[i]
        length, i = 0, i + 1
        while i < len(identity) and identity[i] == 0xFF:
            length, i = length + 255, i + 1
        if i >= len(identity):
            break
        length, i = length + identity[i], i + 1
        if tag == 0x02 and length == 16 and i + 16 <= len(identity):
            return identity[i : i + 16]
        i += length
    # No usable tag 02: a stable stand-in derived from the file (not reversible).
    return hashlib.sha256(identity).digest()[:16]


class BelpicCard:
    """A BELPIC eID card over ``files``; ``transmit_raw`` is the card side of T=0.

    Thread-safe (one lock): an emulator thread answers while a test changes ``faults``.
    """

    def __init__(self, files: CardFiles, *, faults: CardFaults | None = None) -> None:
        self.files = files
        self.faults = faults if faults is not None else CardFaults()
        self.applet_version = files.applet_version
        if files.applet_version == 0x18 and files.atr in (ATR_17, ATR_17_OLD):
            self.atr = ATR_18  # a 1.8 applet with the default 1.7 ATR: use the 1.8 one
        else:
            self.atr = files.atr
        self._efs: dict[bytes, bytes] = {}
        for path, value in (
            (IDENTITY, files.identity),
            (IDENTITY_SIGNATURE, files.identity_signature),
            (ADDRESS, files.address),
            (ADDRESS_SIGNATURE, files.address_signature),
            (PHOTO, files.photo),
            (RRN_CERTIFICATE, files.rrn_certificate),
            (ROOT_CERTIFICATE, files.root_certificate),
        ):
            if value is not None:
                self._efs[path] = value
        self._lock = threading.Lock()
        self.apdu_count = 0
        self._gone = False
        self.reset()

    def __repr__(self) -> str:
        return f"BelpicCard(applet=0x{self.applet_version:02X}, apdus={self.apdu_count})"

    # --- power ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on / reset state: MF selected, no EF, nothing pending."""
        self._df = MF
        self._ef: bytes | None = None
        self._pending = b""

    @property
    def gone(self) -> bool:
        """True once the card was pulled (``remove_after_apdus`` reached)."""
        return self._gone

    # --- APDUs ---------------------------------------------------------------------------------
    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Answer ``apdu`` as ``(data, sw)``: the ``Transmit`` shape ``CardSession`` uses."""
        raw = self.transmit_raw(apdu)
        return raw[:-2], int.from_bytes(raw[-2:], "big")

    def transmit_raw(self, apdu: bytes) -> bytes:
        """Answer ``apdu`` with response data + SW1 SW2, or raise ``CardGone``/``CardMute``."""
        with self._lock:
            faults = self.faults
            if self._gone:
                raise CardGone("card removed")
            if faults.mute:
                raise CardMute("card does not answer")
            if (
                faults.remove_after_apdus is not None
                and self.apdu_count >= faults.remove_after_apdus
            ):
                self._gone = True
                raise CardGone("card removed")
            self.apdu_count += 1
            n = self.apdu_count
            if n in faults.spurious_6b00_at:
                return SW_WRONG_OFFSET
            if n in faults.spurious_6986_at:
                return SW_NO_EF
            return self._answer(bytes(apdu))

    def _answer(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[:4]
        pending, self._pending = self._pending, b""  # only GET RESPONSE may follow 61xx
        if ins == 0xA4 and cla == 0x00:
            return self._select(p1, p2, apdu[4:])
        if (ins in (0xB0, 0xC0) and cla == 0x00) or (ins == 0xE4 and cla == 0x80):
            if self.faults.not_activated:
                return SW_WRONG_INS
            if ins == 0xB0:
                return self._read_binary(p1, p2, apdu[4:])
            if ins == 0xC0:
                return self._get_response(pending, apdu[4:])
            return self._get_card_data(p1, p2)
        if cla not in (0x00, 0x80) or ins in (0xA4, 0xB0, 0xC0, 0xE4):
            return SW_WRONG_CLA
        return SW_WRONG_INS

    def _select(self, p1: int, p2: int, body: bytes) -> bytes:
        if p2 != 0x0C or not body or len(body) < 1 + body[0]:
            return SW_WRONG_P1P2 if p2 != 0x0C else SW_WRONG_LENGTH
        data = body[1 : 1 + body[0]]
        if p1 == 0x04:  # by AID: the applet; selection goes back to the MF
            if data != BELPIC_AID:
                return SW_NOT_FOUND
            self._df, self._ef = MF, None
            return SW_OK
        if p1 == 0x08:  # by path from the MF; BELPIC also accepts the path with 3F00
            if self.faults.no_path_select:
                return SW_WRONG_P1P2
            if len(data) % 2 or not data:
                return SW_WRONG_LENGTH
            path = data if data[:2] == MF else MF + data
            return self._select_full(path)
        if p1 == 0x02 or p1 == 0x00:  # one file id: the MF, a DF under the MF, an EF here
            if len(data) != 2:
                return SW_WRONG_LENGTH
            if data == MF:
                return self._select_full(MF)
            for base in (self._df, MF):
                if base + data in _DFS or base + data in self._efs:
                    return self._select_full(base + data)
            return SW_NOT_FOUND
        return SW_WRONG_P1P2

    def _select_full(self, path: bytes) -> bytes:
        if path in _DFS:
            self._df, self._ef = path, None
            return SW_OK
        if path in self._efs:
            self._df, self._ef = path[:-2], path
            return SW_OK
        return SW_NOT_FOUND

    def _read_binary(self, p1: int, p2: int, body: bytes) -> bytes:
        if self._ef is None:
            return SW_NO_EF
        if p1 & 0x80:
            return SW_WRONG_P1P2  # short-file-id mode: BELPIC has no SFIs
        if len(body) != 1:
            return SW_WRONG_LENGTH
        le = body[0] or 256
        content = self._efs[self._ef]
        offset = (p1 << 8) | p2
        if offset >= len(content):
            return SW_WRONG_OFFSET
        remaining = len(content) - offset
        if le > remaining:
            return bytes([0x6C, remaining])  # remaining < le <= 256
        return content[offset : offset + le] + SW_OK

    def _card_data(self, p2: int) -> bytes:
        serial = _chip_number(self.files.identity)
        # serial, component code, OS number, OS version, softmask number, softmask version,
        # applet version, global OS version (2), applet interface version, PKCS#1 support,
        # key exchange version, applet life cycle (0x0F: personalised)
        data = serial + bytes(
            [0xD0, 0x03, 0x01, 0x1D, 0x02, self.applet_version, 0x00, 0x11, 0x01, 0x01, 0x00, 0x0F]
        )
        if p2 == 0x01:
            data += bytes([0x01, 0x00, 0x00])  # 1.8: key-exchange and PKCS#1 extras
        return data

    def _get_card_data(self, p1: int, p2: int) -> bytes:
        if p1 != 0x00 or p2 not in (0x00, 0x01) or (p2 == 0x01 and self.applet_version < 0x18):
            return SW_WRONG_P1P2
        self._pending = self._card_data(p2)
        return bytes([0x61, len(self._pending)])  # T=0 case 4: fetch with GET RESPONSE

    def _get_response(self, pending: bytes, body: bytes) -> bytes:
        if not pending:
            return SW_CONDITIONS
        if len(body) != 1:
            return SW_WRONG_LENGTH
        le = body[0] or 256
        if le > len(pending):
            self._pending = pending
            return bytes([0x6C, len(pending)])
        head, self._pending = pending[:le], pending[le:]
        if self._pending:
            return head + bytes([0x61, len(self._pending)])
        return head + SW_OK
