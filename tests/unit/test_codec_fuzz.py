"""Fuzz both codecs: bytes off a wire may be anything, the codecs must stay well-behaved.

- ``split_frame`` never raises, consumes 0..len(buf), and every frame it returns is a
  checksum-valid frame that decodes as a reply or as a request.
- ``decode_reply`` / ``decode_request`` raise nothing but ``ProtocolError`` (subclasses
  included) on any input.
- A valid status reply embedded between random garbage, fed in random chunks, is found
  at its position by repeated ``split_frame``, unless a checksum-valid frame that starts
  in the garbage before it swallowed its first bytes (no checksum framing can rule that
  out; ``event`` reports how often hypothesis hits it).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from hardware.errors import ProtocolError
from hardware.locker.codecs.base import BoardStatus, Codec
from hardware.locker.codecs.cu import CODEC as CU
from hardware.locker.codecs.xor8a import CODEC as XOR8A

pytestmark = pytest.mark.timeout(60)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CODECS = {"cu": CU, "8a": XOR8A}
H = bytes.fromhex

# Frames from the fact sheet and the codecs, so fuzzing reaches past the first byte check.
SEEDS = [
    H("02 00 30 03 35"),
    H("02 00 31 03 36"),
    H("02 F0 32 03 27"),
    H("02 00 36 00 00 00 00 03 3B"),
    H("02 00 37 00 32 03 6E"),
    H("02 20 38 00 50 03 AD"),
    H("8A 01 01 11 9B"),
    H("8A 01 00 11 9A"),
    H("80 01 01 33 B3"),
    H("80 01 00 33 B2"),
    H("8A 01 01 00 8A"),
    H("80 01 00 00 00 33 B2"),
    H("82 01 00 00 01 33 B1"),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed frame with a few bytes flipped, cut or extended."""
    frame = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 2))):
        index = draw(st.integers(0, len(frame) - 1))
        frame[index] ^= draw(st.integers(1, 255))
    cut = draw(st.integers(1, len(frame)))
    return bytes(frame[:cut]) + draw(st.binary(max_size=2))


wire_bytes = st.one_of(
    st.binary(max_size=80),
    st.lists(st.one_of(st.binary(max_size=6), st.sampled_from(SEEDS), mutated()), max_size=8).map(
        b"".join
    ),
)


def _decodes(codec: Codec, frame: bytes) -> bool:
    """True when ``frame`` decodes as a reply or a request; only ProtocolError may escape."""
    ok = False
    for decode in (codec.decode_reply, codec.decode_request):
        try:
            decode(frame)
            ok = True
        except ProtocolError:
            pass
    return ok


@pytest.mark.parametrize("name", CODECS)
@FUZZ
@given(data=wire_bytes)
def test_split_frame_is_total_and_returns_valid_frames(name: str, data: bytes) -> None:
    codec = CODECS[name]
    buf = data
    for _ in range(len(data) + 1):  # every round consumes at least one byte or stops
        frame, used = codec.split_frame(buf)
        assert 0 <= used <= len(buf)
        if frame is not None:
            assert used >= len(frame) > 0
            assert buf[used - len(frame) : used] == frame
            assert _decodes(codec, frame), frame.hex(" ")
        if used == 0:
            assert frame is None
            break
        buf = buf[used:]
    else:
        pytest.fail("split_frame did not make progress")


@pytest.mark.parametrize("name", CODECS)
@FUZZ
@given(data=wire_bytes)
def test_decoders_raise_only_protocol_errors(name: str, data: bytes) -> None:
    codec = CODECS[name]
    _decodes(codec, data)  # any other exception type fails the test


@st.composite
def status_frames(draw: st.DrawFn, name: str) -> bytes:
    """A status reply as a board of family ``name`` would send it."""
    if name == "cu":
        status = BoardStatus(
            address=draw(st.integers(0, 15)),
            locks=tuple(draw(st.lists(st.booleans(), min_size=16, max_size=16))),
            items=tuple(draw(st.lists(st.booleans(), min_size=16, max_size=16))),
        )
        return CU.status_reply(status, broadcast=draw(st.booleans()))
    status = BoardStatus(
        address=draw(st.integers(1, 31)),
        locks=tuple(draw(st.lists(st.booleans(), min_size=1, max_size=64))),
    )
    return XOR8A.status_reply(status)


def _scan(codec: Codec, stream: bytes, cuts: list[int]) -> list[tuple[int, int, bytes]]:
    """Feed ``stream`` cut at ``cuts`` and return (start, end, frame) of every frame found."""
    found: list[tuple[int, int, bytes]] = []
    base = 0  # stream offset of buf[0]
    buf = b""
    edges = sorted({0, len(stream), *(c for c in cuts if 0 < c < len(stream))})
    for lo, hi in itertools.pairwise(edges):
        buf += stream[lo:hi]
        for _ in range(len(buf) + 1):
            frame, used = codec.split_frame(buf)
            if frame is not None:
                found.append((base + used - len(frame), base + used, frame))
            base += used
            buf = buf[used:]
            if used == 0:
                break
    return found


@pytest.mark.parametrize("name", CODECS)
@FUZZ
@given(data=st.data())
def test_status_reply_between_garbage_is_found(name: str, data: st.DataObject) -> None:
    codec = CODECS[name]
    frame = data.draw(status_frames(name), label="frame")
    # The 8A/80 framing's documented blind spot (a status byte 0x33 followed by the
    # running XOR ends a frame early) is not what this property is about.
    assume(codec.split_frame(frame) == (frame, len(frame)))
    before = data.draw(wire_bytes, label="before")
    after = data.draw(wire_bytes, label="after")
    stream = before + frame + after
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6), label="cuts")
    start, end = len(before), len(before) + len(frame)

    found = _scan(codec, stream, cuts)

    if (start, end, frame) in found:
        return
    swallowed = [f for f in found if f[0] < start < f[1]]
    assert swallowed, f"status reply lost; frames found: {found}"
    event("status reply swallowed by a valid frame starting in the garbage")


@pytest.mark.parametrize("name", CODECS)
@FUZZ
@given(data=st.data())
def test_back_to_back_status_replies_are_all_found(name: str, data: st.DataObject) -> None:
    codec = CODECS[name]
    frames = data.draw(st.lists(status_frames(name), min_size=1, max_size=4), label="frames")
    assume(all(codec.split_frame(f) == (f, len(f)) for f in frames))
    stream = b"".join(frames)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6), label="cuts")
    assert [f[2] for f in _scan(codec, stream, cuts)] == frames
