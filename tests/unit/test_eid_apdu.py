"""CardSession against the in-memory BELPIC card: chunked reads, T=0 chains, retries, errors."""

from __future__ import annotations

import pytest

from hardware.eid import apdu
from hardware.eid.apdu import (
    CardNotActivated,
    CardSession,
    CardStatusError,
    FileNotFound,
    NoFileSelected,
    SecurityNotSatisfied,
    UnknownStatus,
)
from hardware.eid.belpic import BelpicCard, CardFaults, CardGone, CardMute
from hardware.eid.cardfiles import ATR_17, ATR_18, CardFiles, load_specimen
from hardware.errors import DeviceTimeout, DeviceUnavailable, HardwareError, ProtocolError
from tests.eid_support import SPECIMEN_DIR

CHIP = bytes(range(0x10, 0x20))
NATIONAL_NUMBER = b"71010100070"


def identity_file() -> bytes:
    """A small identity TLV with a chip number (tag 02) and a national number (tag 06)."""
    return b"\x01\x0c592123456789\x02\x10" + CHIP + b"\x06\x0b" + NATIONAL_NUMBER


def make_files(**overrides: object) -> CardFiles:
    values: dict[str, object] = {
        "identity": identity_file(),
        "identity_signature": bytes(range(128)),
        "address": b"\x01\x0cRue Haute 12\x02\x041000" + bytes(30),
        "address_signature": bytes(range(128, 256)),
        "rrn_certificate": bytes((i * 7) % 256 for i in range(840)),
        "photo": bytes((i * 13) % 256 for i in range(2629)),
    }
    values.update(overrides)
    return CardFiles(**values)  # type: ignore[arg-type]


class Recorder:
    """A transmit that records every APDU and forwards it to a BelpicCard."""

    def __init__(self, card: BelpicCard) -> None:
        self.card = card
        self.sent: list[bytes] = []

    def __call__(self, command: bytes) -> tuple[bytes, int]:
        self.sent.append(command)
        return self.card.transmit(command)

    def reads(self) -> list[bytes]:
        return [c for c in self.sent if c[1] == 0xB0]


def session(files: CardFiles | None = None, **faults: object) -> tuple[CardSession, Recorder]:
    card = BelpicCard(files or make_files(), faults=CardFaults(**faults))  # type: ignore[arg-type]
    rec = Recorder(card)
    return CardSession(rec), rec


# --- whole-file reads ----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 179, 247, 248, 249, 495, 496, 744, 2629])
def test_read_file_returns_exact_content(size: int) -> None:
    photo = bytes((i * 31 + 5) % 256 for i in range(size))
    s, rec = session(make_files(photo=photo))
    assert s.read_file(apdu.PHOTO) == photo
    # Every READ BINARY asks for at most 248 bytes, at the offset already read.
    offsets = [(c[2] << 8) | c[3] for c in rec.reads()]
    assert all(c[4] <= 0xF8 for c in rec.reads())
    assert offsets == sorted(offsets) and offsets[0] == 0


def test_select_by_path_with_3f00_and_no_le() -> None:
    s, rec = session()
    s.read_file(apdu.IDENTITY)
    assert rec.sent[0] == bytes.fromhex("00A4080C063F00DF014031")


def test_short_file_costs_select_plus_two_reads() -> None:
    """45 bytes: ask 248 -> 6C2D -> re-ask with Le=2D -> data. No extra APDU after that."""
    s, rec = session()
    assert s.read_file(apdu.IDENTITY) == identity_file()
    assert rec.sent[1:] == [bytes.fromhex("00B00000F8"), bytes.fromhex("00B000002D")]
    assert s.apdus == 3
    assert s.bytes_read == len(identity_file())


def test_exact_multiple_ends_on_6b00() -> None:
    photo = bytes(range(248)) * 2
    s, rec = session(make_files(photo=photo))
    assert s.read_file(apdu.PHOTO) == photo
    last = rec.reads()[-1]
    assert last[2:4] == (496).to_bytes(2, "big")  # the read past the end answered 6B00
    assert rec.card.transmit(last) == (b"", 0x6B00)


def test_data_with_6282_is_the_last_chunk() -> None:
    """Cards that answer a too-long Le with what is left and 6282 (ISO) instead of 6Cxx."""
    content = bytes(range(200)) * 2  # 400 bytes: 248 + 152

    def transmit(command: bytes) -> tuple[bytes, int]:
        if command[1] == 0xA4:
            return b"", 0x9000
        offset, le = (command[2] << 8) | command[3], command[4]
        chunk = content[offset : offset + le]
        return chunk, 0x9000 if len(chunk) == le else 0x6282

    s = CardSession(transmit)
    assert s.read_file(apdu.PHOTO) == content
    assert s.apdus == 3


def test_counters_add_up_over_reads() -> None:
    files = make_files()
    s, _ = session(files)
    s.read_file(apdu.IDENTITY)
    s.read_file(apdu.RRN_CERTIFICATE)
    assert s.bytes_read == len(files.identity) + len(files.rrn_certificate)
    # select + (248 -> 6C2D, 45); select + 3 x 248 + (248 -> 6C60, 96)
    assert s.apdus == 3 + 6


def test_read_prefix_reads_only_what_is_asked() -> None:
    files = make_files()
    s, rec = session(files)
    assert s.read_prefix(apdu.RRN_CERTIFICATE, 60) == files.rrn_certificate[:60]
    assert rec.reads() == [bytes.fromhex("00B000003C")]
    assert s.bytes_read == 60
    assert s.read_prefix(apdu.RRN_CERTIFICATE, 300) == files.rrn_certificate[:300]
    assert s.read_prefix(apdu.IDENTITY, 5000) == files.identity  # shorter than asked


def test_missing_photo_is_file_not_found() -> None:
    s, _ = session(make_files(photo=None))
    with pytest.raises(FileNotFound) as info:
        s.read_file(apdu.PHOTO)
    assert info.value.sw == 0x6A82
    assert "6A82" in str(info.value)


# --- T=0 chains --------------------------------------------------------------------------------
def test_card_data_via_61xx_and_get_response() -> None:
    s, rec = session(make_files(applet_version=0x18))
    data = s.card_data()
    assert rec.sent == [bytes.fromhex("80E400001C"), bytes.fromhex("00C000001C")]
    assert data.chip_serial == CHIP
    assert data.applet_version == "1.8"
    assert data.life_cycle == 0x0F


def test_card_data_applet_17() -> None:
    s, _ = session()
    assert s.card_data().applet_version == "1.7"


def test_repeated_61xx_is_followed() -> None:
    """A card handing out its answer 10 bytes at a time: every GET RESPONSE is sent."""
    answer = bytes(range(28))
    chunks = [answer[i : i + 10] for i in range(0, 28, 10)]
    sent: list[bytes] = []

    def transmit(command: bytes) -> tuple[bytes, int]:
        sent.append(command)
        if command[1] == 0xE4:
            return b"", 0x610A
        chunk = chunks.pop(0)
        return chunk, (0x610A if chunks else 0x9000)

    assert CardSession(transmit).card_data().chip_serial == answer[:16]
    assert sent[1:] == [bytes.fromhex("00C000000A")] * 3


def test_get_response_with_wrong_le_is_resent() -> None:
    """61 20, then GET RESPONSE Le=20 -> 6C1C: GET RESPONSE again with Le=1C (not E4)."""
    answer = bytes(range(28))
    sent: list[bytes] = []

    def transmit(command: bytes) -> tuple[bytes, int]:
        sent.append(command)
        if command[1] == 0xE4:
            return b"", 0x6120
        if command[4] != 0x1C:
            return b"", 0x6C1C
        return answer, 0x9000

    assert CardSession(transmit).card_data().chip_serial == answer[:16]
    assert sent == [
        bytes.fromhex("80E400001C"),
        bytes.fromhex("00C0000020"),
        bytes.fromhex("00C000001C"),
    ]


# --- SELECT fallback ---------------------------------------------------------------------------
def test_fallback_select_one_file_id_at_a_time() -> None:
    files = make_files()
    s, rec = session(files, no_path_select=True)
    assert s.read_file(apdu.ADDRESS) == files.address
    assert rec.sent[:4] == [
        bytes.fromhex("00A4080C063F00DF014033"),
        bytes.fromhex("00A4020C023F00"),
        bytes.fromhex("00A4020C02DF01"),
        bytes.fromhex("00A4020C024033"),
    ]


def test_fallback_missing_file_raises_file_not_found() -> None:
    s, _ = session(make_files(photo=None), no_path_select=True)
    with pytest.raises(FileNotFound, match="4035"):
        s.read_file(apdu.PHOTO)


# --- spurious mid-file errors ------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["spurious_6b00_at", "spurious_6986_at"])
def test_one_spurious_error_mid_file_is_retried(fault: str) -> None:
    files = make_files()
    # APDU 1 = SELECT, 2 = READ @0, 3 = READ @248 (mid-file).
    s, rec = session(files, **{fault: {3}})
    assert s.read_file(apdu.PHOTO) == files.photo
    # The failed offset was read again after a fresh SELECT.
    assert rec.sent[3] == bytes.fromhex("00A4080C063F00DF014035")
    assert rec.sent[4] == rec.sent[2]


def test_empty_9000_mid_file_is_retried() -> None:
    files = make_files()
    card = BelpicCard(files)
    calls = 0

    def transmit(command: bytes) -> tuple[bytes, int]:
        nonlocal calls
        calls += 1
        if calls == 3:
            return b"", 0x9000
        return card.transmit(command)

    assert CardSession(transmit).read_file(apdu.PHOTO) == files.photo


def test_second_6986_at_the_same_offset_raises() -> None:
    s, _ = session(spurious_6986_at={3, 5})
    with pytest.raises(NoFileSelected, match="6986"):
        s.read_file(apdu.PHOTO)


def test_second_empty_answer_raises() -> None:
    card = BelpicCard(make_files())

    def transmit(command: bytes) -> tuple[bytes, int]:
        if command[1] == 0xB0 and command[2:4] != b"\x00\x00":
            return b"", 0x9000
        return card.transmit(command)

    with pytest.raises(ProtocolError, match="no data"):
        CardSession(transmit).read_file(apdu.PHOTO)


def test_spurious_6b00_twice_at_same_offset_is_taken_as_the_end() -> None:
    """6B00 again after a fresh select is what an exact-multiple file answers: stop."""
    files = make_files()
    s, _ = session(files, spurious_6b00_at={3, 5})
    assert s.read_file(apdu.PHOTO) == files.photo[:248]


# --- status words as errors --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sw", "cls"),
    [
        (0x6982, SecurityNotSatisfied),
        (0x6986, NoFileSelected),
        (0x6A82, FileNotFound),
        (0x6D00, CardNotActivated),
        (0x6F00, UnknownStatus),
        (0x6B00, UnknownStatus),  # at offset 0: not an end of file
    ],
)
def test_status_errors_on_first_read(sw: int, cls: type[CardStatusError]) -> None:
    def transmit(command: bytes) -> tuple[bytes, int]:
        if command[1] == 0xA4:
            return b"", 0x9000
        return b"", sw

    with pytest.raises(cls) as info:
        CardSession(transmit).read_file(apdu.IDENTITY)
    assert isinstance(info.value, ProtocolError)
    assert info.value.sw == sw
    assert f"{sw:04X}" in str(info.value)


def test_error_messages_hold_no_file_contents() -> None:
    s, _ = session(not_activated=True)
    with pytest.raises(CardNotActivated) as info:
        s.read_file(apdu.IDENTITY)
    assert "not activated" in str(info.value)
    assert NATIONAL_NUMBER.decode() not in str(info.value)


def test_not_activated_card_data() -> None:
    s, _ = session(not_activated=True)
    with pytest.raises(CardNotActivated):
        s.card_data()


def test_unknown_select_status_is_raised() -> None:
    with pytest.raises(UnknownStatus, match="6E00"):
        CardSession(lambda c: (b"", 0x6E00)).select(apdu.IDENTITY)


def test_short_card_data_is_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="28"):
        CardSession(lambda c: (b"\x00" * 10, 0x9000)).card_data()


def test_endless_card_is_bounded() -> None:
    """A card that always answers a full chunk: the read stops with a clear error."""
    s = CardSession(lambda c: ((b"\x00" * c[4]) if c[1] == 0xB0 else b"", 0x9000))
    with pytest.raises(ProtocolError, match=r"longer than|no end"):
        s.read_file(apdu.PHOTO)
    assert s.apdus < 500


# --- the card itself ---------------------------------------------------------------------------
def test_card_answers_like_the_real_one() -> None:
    card = BelpicCard(make_files())
    assert card.transmit(bytes.fromhex("00B0000010")) == (b"", 0x6986)  # nothing selected
    assert card.transmit(bytes.fromhex("00A4080C063F00DF014031"))[1] == 0x9000
    assert card.transmit(bytes.fromhex("00B0000010")) == (identity_file()[:16], 0x9000)
    end = len(identity_file())
    assert card.transmit(bytes.fromhex("00B00000") + bytes([end]))[1] == 0x9000  # exactly
    assert card.transmit(bytes([0, 0xB0, 0, end, 1])) == (b"", 0x6B00)
    assert card.transmit(bytes.fromhex("00B00010FF"))[1] == 0x6C00 | (end - 16)
    assert card.transmit(bytes.fromhex("00120000"))[1] == 0x6D00
    assert card.transmit(bytes.fromhex("A0B0000010"))[1] == 0x6E00
    assert card.transmit(bytes.fromhex("00A4040C0F") + apdu.BELPIC_AID)[1] == 0x9000
    assert card.transmit(bytes.fromhex("00A4040C03A00000"))[1] == 0x6A82


def test_atr_per_applet_version() -> None:
    assert BelpicCard(make_files()).atr == ATR_17
    assert BelpicCard(make_files(applet_version=0x18)).atr == ATR_18


def test_removed_and_mute_cards_raise_hardware_errors() -> None:
    card = BelpicCard(make_files(), faults=CardFaults(remove_after_apdus=2))
    s = CardSession(card.transmit)
    with pytest.raises(CardGone):
        s.read_file(apdu.PHOTO)
    assert card.gone and card.apdu_count == 2
    with pytest.raises(CardGone):
        card.transmit(bytes.fromhex("00A4080C063F00DF014031"))
    assert issubclass(CardGone, DeviceUnavailable)
    mute = BelpicCard(make_files(), faults=CardFaults(mute=True))
    with pytest.raises(CardMute) as info:
        mute.transmit(bytes.fromhex("80E400001C"))
    assert isinstance(info.value, DeviceTimeout | HardwareError)


def test_repr_shows_no_contents() -> None:
    card = BelpicCard(make_files())
    assert NATIONAL_NUMBER.decode() not in repr(card)
    data = CardSession(card.transmit).card_data()
    assert CHIP.hex() not in repr(data).lower()


def test_specimen_cards_read_back_byte_for_byte() -> None:
    if not SPECIMEN_DIR.is_dir():
        pytest.skip(f"specimen files not present at {SPECIMEN_DIR}")
    for kind in ("rsa", "ec"):
        files = load_specimen(SPECIMEN_DIR, kind)  # type: ignore[arg-type]
        s = CardSession(BelpicCard(files).transmit)
        assert s.read_file(apdu.IDENTITY) == files.identity
        assert s.read_file(apdu.IDENTITY_SIGNATURE) == files.identity_signature
        assert s.read_file(apdu.ADDRESS) == files.address
        assert s.read_file(apdu.RRN_CERTIFICATE) == files.rrn_certificate
        assert s.read_file(apdu.PHOTO) == files.photo
