"""The CU (Kerong KR-CU16 style) codec against the fact sheet's frames, byte for byte."""

from __future__ import annotations

import pytest

from hardware.errors import ChecksumError, ConfigurationError, ProtocolError
from hardware.locker.codecs import get_codec, split_frames
from hardware.locker.codecs.base import (
    BoardStatus,
    PulseTimeReply,
    PulseTimeRequest,
    StatusRequest,
    UnlockAck,
    UnlockRequest,
)
from hardware.locker.codecs.cu import CODEC

pytestmark = pytest.mark.timeout(10)

H = bytes.fromhex
CLEAR16 = (False,) * 16


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
    assert get_codec("cu") is CODEC
    assert get_codec("CU") is CODEC
    assert (CODEC.name, CODEC.default_baud, CODEC.max_channels) == ("cu", 19200, 16)
    assert CODEC.addresses == range(0, 16)


def test_status_request_board_0_is_the_sheet_frame() -> None:
    assert CODEC.status_request(0) == H("02 00 30 03 35")


def test_unlock_board_0_lock_1_is_the_sheet_frame() -> None:
    assert CODEC.unlock_request(0, 1) == H("02 00 31 03 36")


def test_status_all_is_the_sheet_frame() -> None:
    assert CODEC.status_all_request() == H("02 F0 32 03 27")


def test_sheet_bus_capture_decodes_as_board_0_all_clear() -> None:
    assert CODEC.decode_reply(H("02 00 36 00 00 00 00 03 3B")) == BoardStatus(
        address=0, locks=CLEAR16, items=CLEAR16
    )


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("02 00 30 03 35", StatusRequest(0)),
        ("02 00 31 03 36", UnlockRequest(0, 1)),
        ("02 F0 32 03 27", StatusRequest(None)),
    ],
)
def test_sheet_requests_decode_on_the_board_side(frame: str, expected: object) -> None:
    assert CODEC.decode_request(H(frame)) == expected


# --- addressing and bit layout --------------------------------------------------------


def test_board_number_is_the_high_nibble_lock_index_the_low() -> None:
    assert CODEC.status_request(1) == H("02 10 30 03 45")
    assert CODEC.unlock_request(2, 16) == H("02 2F 31 03 65")
    assert CODEC.unlock_request(15, 1) == H("02 F0 31 03 26")
    assert CODEC.decode_request(H("02 2F 31 03 65")) == UnlockRequest(2, 16)


def test_status_request_ignores_the_low_nibble() -> None:
    assert CODEC.decode_request(H("02 13 30 03 48")) == StatusRequest(1)


def test_unlock_all_is_command_33() -> None:
    assert CODEC.unlock_request(0, 0) == H("02 00 33 03 38")
    assert CODEC.decode_request(H("02 00 33 03 38")) == UnlockRequest(0, 0)
    assert CODEC.decode_request(H("02 30 33 03 68")) == UnlockRequest(3, 0)


def test_status_reply_bit_layout() -> None:
    status = BoardStatus(address=3, locks=bits(16, 1, 9, 16), items=bits(16, 2, 8, 16))
    frame = CODEC.status_reply(status)
    assert frame == H("02 30 35 01 81 82 80 03 EE")
    assert CODEC.decode_reply(frame) == status


def test_broadcast_status_reply_uses_command_36() -> None:
    status = BoardStatus(address=0, locks=CLEAR16, items=CLEAR16)
    assert CODEC.status_reply(status, broadcast=True) == H("02 00 36 00 00 00 00 03 3B")
    assert CODEC.status_reply(status) == H("02 00 35 00 00 00 00 03 3A")


def test_status_reply_pads_a_cu12_and_no_items_as_clear() -> None:
    status = BoardStatus(address=1, locks=(True,) * 12, items=None)
    frame = CODEC.status_reply(status)
    assert frame == H("02 10 35 FF 0F 00 00 03 58")
    decoded = CODEC.decode_reply(frame)
    assert isinstance(decoded, BoardStatus)
    assert decoded.locks == (True,) * 12 + (False,) * 4
    assert decoded.items == CLEAR16


def test_status_reply_rejects_more_than_16_channels() -> None:
    with pytest.raises(ConfigurationError):
        CODEC.status_reply(BoardStatus(address=0, locks=(False,) * 17))


@pytest.mark.parametrize("address", [0, 1, 7, 15])
@pytest.mark.parametrize("broadcast", [False, True])
def test_status_round_trip(address: int, broadcast: bool) -> None:
    status = BoardStatus(
        address=address,
        locks=tuple(bool((address + i) % 3) for i in range(16)),
        items=tuple(bool((address * i) % 2) for i in range(16)),
    )
    frame = CODEC.status_reply(status, broadcast=broadcast)
    assert CODEC.split_frame(frame) == (frame, 9)
    assert CODEC.decode_reply(frame) == status


def test_request_round_trip_for_every_lock() -> None:
    for address in CODEC.addresses:
        assert CODEC.decode_request(CODEC.status_request(address)) == StatusRequest(address)
        for channel in range(0, 17):
            frame = CODEC.unlock_request(address, channel)
            assert CODEC.split_frame(frame) == (frame, 5)
            assert CODEC.decode_request(frame) == UnlockRequest(address, channel)


def test_builders_reject_what_the_wire_cannot_express() -> None:
    for bad in (-1, 16, 0xF0):
        with pytest.raises(ConfigurationError):
            CODEC.status_request(bad)
    for channel in (-1, 17):
        with pytest.raises(ConfigurationError):
            CODEC.unlock_request(0, channel)


# --- unlock acks (never required, accepted when a firmware sends one) -------------------


def test_unlock_reply_is_an_echo_style_ack_that_decodes() -> None:
    assert CODEC.unlock_reply(0, 1) == H("02 00 31 03 36")
    assert CODEC.decode_reply(H("02 00 31 03 36")) == UnlockAck(0, 1)
    assert CODEC.unlock_reply(1, 0) == H("02 10 33 03 48")
    assert CODEC.decode_reply(H("02 10 33 03 48")) == UnlockAck(1, 0)


# --- pulse time (37 / 38) -------------------------------------------------------------


def test_pulse_time_request_is_big_endian_tens_of_ms() -> None:
    assert CODEC.pulse_time_request(0, 500) == H("02 00 37 00 32 03 6E")
    assert CODEC.pulse_time_request(1, 5000) == H("02 10 37 01 F4 03 41")
    assert CODEC.pulse_time_request(0, 504) == CODEC.pulse_time_request(0, 500)
    assert CODEC.decode_request(H("02 10 37 01 F4 03 41")) == PulseTimeRequest(1, 5000)


def test_pulse_time_query_is_five_bytes() -> None:
    assert CODEC.split_frame(H("02 00 37 03 3C")) == (H("02 00 37 03 3C"), 5)
    assert CODEC.decode_request(H("02 00 37 03 3C")) == PulseTimeRequest(0, None)


@pytest.mark.parametrize("pulse_ms", [0, -10, 7680, 60000])
def test_pulse_time_out_of_range_is_refused(pulse_ms: int) -> None:
    with pytest.raises(ConfigurationError):
        CODEC.pulse_time_request(0, pulse_ms)


def test_pulse_time_reply_decodes() -> None:
    frame = CODEC.pulse_time_reply(2, 800)
    assert frame == H("02 20 38 00 50 03 AD")
    assert CODEC.split_frame(frame) == (frame, 7)
    assert CODEC.decode_reply(frame) == PulseTimeReply(2, 800)
    assert CODEC.decode_reply(H("02 20 38 03 5D")) == PulseTimeReply(2, None)


def test_pulse_time_set_split_in_the_middle_waits_for_all_seven_bytes() -> None:
    frame = CODEC.pulse_time_request(0, 500)
    assert frame is not None
    for cut in range(1, 7):
        assert CODEC.split_frame(frame[:cut]) == (None, 0)
    assert split_all([frame[:4], frame[4:]]) == [frame]


# --- errors ---------------------------------------------------------------------------


def test_bad_checksum_raises_checksum_error() -> None:
    with pytest.raises(ChecksumError):
        CODEC.decode_reply(H("02 00 36 00 00 00 00 03 3C"))
    with pytest.raises(ChecksumError):
        CODEC.decode_request(H("02 00 30 03 36"))


@pytest.mark.parametrize("frame", ["", "02", "02 00 35", "02 00 35 00 00 00 00 03"])
def test_short_frames_raise_protocol_error(frame: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        CODEC.decode_reply(H(frame))
    assert not isinstance(caught.value, ChecksumError)


@pytest.mark.parametrize(
    "frame",
    [
        "02 00 35 00 00 00 00 04 3B",  # ETX 04 (sum fixed up)
        "03 00 30 03 36",  # no STX
        "02 00 40 03 45",  # unknown command
        "02 00 30 03 35 00",  # a trailing byte
    ],
)
def test_malformed_frames_raise_protocol_error(frame: str) -> None:
    with pytest.raises(ProtocolError):
        CODEC.decode_reply(H(frame))
    with pytest.raises(ProtocolError):
        CODEC.decode_request(H(frame))


def test_a_request_is_not_a_reply_and_vice_versa() -> None:
    with pytest.raises(ProtocolError, match="request"):
        CODEC.decode_reply(H("02 00 30 03 35"))
    with pytest.raises(ProtocolError, match="reply"):
        CODEC.decode_request(H("02 00 36 00 00 00 00 03 3B"))


# --- split_frame ----------------------------------------------------------------------

REPLY = H("02 00 36 00 00 00 00 03 3B")


def test_split_empty_and_every_prefix_waits() -> None:
    assert CODEC.split_frame(b"") == (None, 0)
    for cut in range(1, len(REPLY)):
        assert CODEC.split_frame(REPLY[:cut]) == (None, 0)
    assert CODEC.split_frame(REPLY) == (REPLY, 9)


def test_split_skips_garbage_before_a_frame() -> None:
    assert CODEC.split_frame(H("FF 00 13") + REPLY) == (REPLY, 12)


def test_split_drops_garbage_before_an_incomplete_frame() -> None:
    assert CODEC.split_frame(H("FF 00") + REPLY[:4]) == (None, 2)


def test_split_drops_a_buffer_without_stx() -> None:
    assert CODEC.split_frame(H("FF 00 13 03 35")) == (None, 5)


def test_split_never_returns_a_frame_with_a_bad_checksum() -> None:
    bad = REPLY[:-1] + b"\x3c"
    assert CODEC.split_frame(bad) == (None, 9)
    assert split_all([bad + REPLY]) == [REPLY]


def test_split_rejects_a_wrong_etx_before_the_checksum_arrives() -> None:
    # ETX position already holds 04: the candidate is garbage, no need to wait for SUM.
    assert CODEC.split_frame(H("02 00 35 00 00 00 00 04")) == (None, 8)


def test_split_reply_cut_in_the_middle() -> None:
    assert split_all([REPLY[:4], REPLY[4:]]) == [REPLY]
    assert split_all([bytes([b]) for b in REPLY]) == [REPLY]


def test_split_two_frames_back_to_back() -> None:
    second = CODEC.status_reply(BoardStatus(address=1, locks=bits(16, 3)), broadcast=True)
    assert split_all([REPLY + second]) == [REPLY, second]
    frame, used = CODEC.split_frame(REPLY + second)
    assert (frame, used) == (REPLY, 9)


def test_split_finds_a_frame_behind_a_stalled_garbage_stx() -> None:
    # "02 00 35" looks like the start of a 9-byte reply; the complete frame behind it wins.
    request = H("02 00 30 03 35")
    assert CODEC.split_frame(H("02 00 35") + request) == (request, 8)


def test_split_echo_then_reply() -> None:
    request = CODEC.status_request(0)
    reply = CODEC.status_reply(BoardStatus(address=0, locks=CLEAR16))
    assert split_all([request + reply[:3], reply[3:]]) == [request, reply]
