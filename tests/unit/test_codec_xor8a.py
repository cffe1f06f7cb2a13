"""The 8A/80 (XOR) codec against the fact sheet's frames, byte for byte."""

from __future__ import annotations

import pytest

from hardware.errors import ChecksumError, ConfigurationError, ProtocolError
from hardware.locker.codecs import get_codec, split_frames
from hardware.locker.codecs.base import BoardStatus, StatusRequest, UnlockAck, UnlockRequest
from hardware.locker.codecs.xor8a import CODEC

pytestmark = pytest.mark.timeout(10)

H = bytes.fromhex


def split_all(chunks: list[bytes]) -> list[bytes]:
    """Feed ``chunks`` one by one as a reader would and collect every frame found."""
    buf = b""
    frames: list[bytes] = []
    for chunk in chunks:
        found, buf = split_frames(CODEC, buf + chunk)
        frames += found
    return frames


def bits(n: int, *on: int) -> tuple[bool, ...]:
    return tuple(i + 1 in on for i in range(n))


# --- the sheet's examples --------------------------------------------------------------


def test_registry_returns_this_codec() -> None:
    assert get_codec("8a") is CODEC
    assert get_codec("8A") is CODEC
    assert (CODEC.name, CODEC.default_baud, CODEC.max_channels) == ("8a", 9600, 24)
    assert CODEC.addresses == range(1, 32)


def test_unlock_board_1_lock_1_is_the_sheet_frame() -> None:
    assert CODEC.unlock_request(1, 1) == H("8A 01 01 11 9B")


def test_unlock_all_of_board_1_is_the_sheet_frame() -> None:
    assert CODEC.unlock_request(1, 0) == H("8A 01 00 11 9A")


def test_query_all_is_the_sheet_frame() -> None:
    assert CODEC.status_request(1) == H("80 01 00 33 B2")


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("8A 01 01 11 9B", UnlockRequest(1, 1)),
        ("8A 01 00 11 9A", UnlockRequest(1, 0)),
        ("80 01 01 33 B3", StatusRequest(1)),  # query lock 1: answered with the full status
        ("80 01 00 33 B2", StatusRequest(1)),
    ],
)
def test_sheet_requests_decode_on_the_board_side(frame: str, expected: object) -> None:
    assert CODEC.split_frame(H(frame)) == (H(frame), 5)
    assert CODEC.decode_request(H(frame)) == expected


@pytest.mark.parametrize("frame", ["8A 01 01 00 8A", "8A 01 01 11 9B"])
def test_both_sheet_unlock_replies_decode_as_acks(frame: str) -> None:
    assert CODEC.split_frame(H(frame)) == (H(frame), 5)
    assert CODEC.decode_reply(H(frame)) == UnlockAck(1, 1)


def test_sheet_three_byte_query_all_reply() -> None:
    frame = H("80 01 00 00 00 33 B2")
    assert CODEC.split_frame(frame) == (frame, 7)
    assert CODEC.decode_reply(frame) == BoardStatus(address=1, locks=(False,) * 24, items=None)


def test_one_status_byte_reply_is_byte_identical_to_the_query() -> None:
    frame = H("80 01 00 33 B2")
    assert CODEC.split_frame(frame) == (frame, 5)
    assert CODEC.decode_reply(frame) == BoardStatus(address=1, locks=(False,) * 8, items=None)
    assert CODEC.decode_request(frame) == StatusRequest(1)


# --- bit layout and round trips -------------------------------------------------------


def test_last_status_byte_holds_channels_1_to_8() -> None:
    # Channels 1, 10 and 24 set: bytes (highest group first) 80 02 01.
    status = BoardStatus(address=5, locks=bits(24, 1, 10, 24), items=None)
    frame = CODEC.status_reply(status)
    assert frame == H("80 05 80 02 01 33 35")
    assert CODEC.decode_reply(frame) == status


def test_two_status_bytes_decode_to_16_channels() -> None:
    frame = H("80 02 01 80 33 30")  # ch 16 (last byte bit 7) and ch 9 (first byte bit 0)
    decoded = CODEC.decode_reply(frame)
    assert decoded == BoardStatus(address=2, locks=bits(16, 8, 9), items=None)


def test_status_reply_always_sends_three_bytes_up_to_24_channels() -> None:
    assert CODEC.status_reply(BoardStatus(address=1, locks=(False,) * 8)) == H(
        "80 01 00 00 00 33 B2"
    )


def test_status_reply_ignores_items_and_broadcast() -> None:
    status = BoardStatus(address=1, locks=bits(16, 2), items=bits(16, 1))
    assert CODEC.status_reply(status, broadcast=True) == CODEC.status_reply(
        BoardStatus(address=1, locks=bits(16, 2))
    )


@pytest.mark.parametrize("address", [1, 2, 17, 31])
def test_status_round_trip(address: int) -> None:
    status = BoardStatus(address=address, locks=tuple(bool((address + i) % 3) for i in range(24)))
    frame = CODEC.status_reply(status)
    assert CODEC.split_frame(frame) == (frame, len(frame))
    assert CODEC.decode_reply(frame) == status


def test_request_round_trip_for_every_lock() -> None:
    for address in CODEC.addresses:
        assert CODEC.decode_request(CODEC.status_request(address)) == StatusRequest(address)
        for channel in range(0, 25):
            frame = CODEC.unlock_request(address, channel)
            assert CODEC.split_frame(frame) == (frame, 5)
            assert CODEC.decode_request(frame) == UnlockRequest(address, channel)


def test_unlock_reply_is_the_00_variant() -> None:
    assert CODEC.unlock_reply(1, 1) == H("8A 01 01 00 8A")
    assert CODEC.decode_reply(CODEC.unlock_reply(3, 0) or b"") == UnlockAck(3, 0)


def test_no_pulse_time_command() -> None:
    assert CODEC.pulse_time_request(1, 500) is None


def test_builders_reject_what_the_wire_cannot_express() -> None:
    for bad in (0, 32, -1):
        with pytest.raises(ConfigurationError):
            CODEC.status_request(bad)
    with pytest.raises(ConfigurationError):
        CODEC.unlock_request(1, 25)
    with pytest.raises(ConfigurationError):
        CODEC.status_reply(BoardStatus(address=1, locks=(False,) * 65))


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("frame", ["8A 01 01 11 9C", "80 01 00 00 00 33 B3", "80 01 00 33 B0"])
def test_bad_checksum_raises_checksum_error(frame: str) -> None:
    with pytest.raises(ChecksumError):
        CODEC.decode_reply(H(frame))


@pytest.mark.parametrize("frame", ["", "8A", "8A 01 01 11", "80 01 33 B2"])
def test_short_frames_raise_protocol_error(frame: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        CODEC.decode_reply(H(frame))
    assert not isinstance(caught.value, ChecksumError)


@pytest.mark.parametrize(
    "frame",
    [
        "80 01 00 00 00 34 B5",  # no 33 before the BCC (BCC fixed up)
        "8A 01 01 22 A8",  # unknown function
        "8A 01 01 11 9B 00",  # an 8A frame is always 5 bytes
        "81 01 00 33 B3",  # unknown header
        "82 01 00 00 00 33 B0",  # unsolicited push: not decoded
    ],
)
def test_malformed_frames_raise_protocol_error(frame: str) -> None:
    with pytest.raises(ProtocolError):
        CODEC.decode_reply(H(frame))
    with pytest.raises(ProtocolError):
        CODEC.decode_request(H(frame))


def test_a_reply_is_not_a_request() -> None:
    with pytest.raises(ProtocolError, match="reply"):
        CODEC.decode_request(H("80 01 00 00 00 33 B2"))
    with pytest.raises(ProtocolError, match="not an unlock"):
        CODEC.decode_request(H("8A 01 01 00 8A"))


# --- split_frame ----------------------------------------------------------------------

REPLY = H("80 01 00 00 00 33 B2")


def test_split_empty_and_every_prefix_waits() -> None:
    assert CODEC.split_frame(b"") == (None, 0)
    for cut in range(1, len(REPLY)):
        frame, used = CODEC.split_frame(REPLY[:cut])
        assert (frame, used) == (None, 0), cut
    assert CODEC.split_frame(REPLY) == (REPLY, 7)


def test_split_skips_garbage_before_a_frame() -> None:
    assert CODEC.split_frame(H("FF 33 01") + REPLY) == (REPLY, 10)


def test_split_drops_a_buffer_without_a_header() -> None:
    assert CODEC.split_frame(H("FF 33 01 00 B2")) == (None, 5)


def test_split_skips_an_unsolicited_82_frame() -> None:
    push = H("82 01 00 00 01 33 B1")
    assert split_all([push + REPLY]) == [REPLY]


def test_split_never_returns_a_frame_with_a_bad_checksum() -> None:
    bad = H("8A 01 01 11 9C")
    assert CODEC.split_frame(bad) == (None, 5)
    assert split_all([bad + REPLY]) == [REPLY]


def test_split_gives_up_on_a_status_candidate_longer_than_any_board() -> None:
    junk = H("80 01") + b"\x00" * 12
    frame, used = CODEC.split_frame(junk)
    assert frame is None
    assert used == len(junk)


def test_split_reply_cut_in_the_middle() -> None:
    assert split_all([REPLY[:3], REPLY[3:]]) == [REPLY]
    assert split_all([bytes([b]) for b in REPLY]) == [REPLY]


def test_split_two_frames_back_to_back() -> None:
    ack = H("8A 01 01 00 8A")
    assert split_all([REPLY + REPLY + ack]) == [REPLY, REPLY, ack]


def test_split_echo_then_reply() -> None:
    request = CODEC.status_request(1)
    assert split_all([request + REPLY[:2], REPLY[2:]]) == [request, REPLY]


def test_split_status_byte_0x33_does_not_end_the_frame() -> None:
    # Channels 1, 2, 5, 6 set (0x33) in the last status byte.
    status = BoardStatus(address=1, locks=bits(24, 1, 2, 5, 6))
    frame = CODEC.status_reply(status)
    assert frame == H("80 01 00 00 33 33 81")
    assert split_all([frame]) == [frame]
    assert CODEC.decode_reply(frame) == status
