"""The board emulator over a real pty (pyserial ``Serial``) and over TCP (``socket://``).

Each test speaks the family's wire protocol through the codec, as a driver would, and
checks the exact frames and the emulated world.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterator

import pytest
import serial

from hardware.errors import ChecksumError, ConfigurationError, ProtocolError
from hardware.locker.codecs import get_codec
from hardware.locker.codecs.base import BoardStatus, Codec, PulseTimeReply, UnlockAck
from hardware.locker.emulator import BoardEmulator, describe
from hardware.locker.layout import Feedback

pytestmark = pytest.mark.timeout(20)

H = bytes.fromhex
BOARDS = {"cu": (0, 1), "8a": (1, 2)}
FAMILIES = sorted(BOARDS)


class Wire:
    """A driver's end of the bus: write a frame, read frames split by the codec."""

    def __init__(self, port: serial.SerialBase, codec: Codec) -> None:
        self.port = port
        self.codec = codec
        self.buf = b""

    def send(self, frame: bytes) -> None:
        self.port.reset_input_buffer()
        self.buf = b""
        self.port.write(frame)

    def frame(self, timeout: float = 0.5) -> bytes | None:
        """The next frame, or None when none arrives within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            found, used = self.codec.split_frame(self.buf)
            self.buf = self.buf[used:]
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.port.timeout = min(left, 0.05)
            self.buf += self.port.read(1)  # returns as soon as a byte is there
            self.buf += self.port.read(self.port.in_waiting)

    def raw(self, timeout: float = 0.2) -> bytes:
        """Every byte that arrives until ``timeout`` seconds of nothing."""
        self.port.timeout = timeout
        data = self.buf
        self.buf = b""
        while chunk := self.port.read(64):
            data += chunk
        return data

    def read(self, count: int, timeout: float = 0.5) -> bytes:
        """Exactly ``count`` bytes (fewer only on timeout)."""
        self.port.timeout = timeout
        return self.port.read(count)

    def status(self, address: int) -> BoardStatus:
        self.send(self.codec.status_request(address))
        frame = self.frame()
        assert frame is not None, f"board {address} did not answer"
        reply = self.codec.decode_reply(frame)
        assert isinstance(reply, BoardStatus)
        return reply

    def unlock(self, address: int, channel: int) -> bytes | None:
        self.send(self.codec.unlock_request(address, channel))
        return self.frame(0.3)


@pytest.fixture
def make() -> Iterator:
    """``make(family, **kw) -> (emulator, wire)`` on a pty; everything stopped afterwards."""
    started: list[tuple[BoardEmulator, serial.Serial]] = []

    def factory(family: str, boards: tuple[int, ...] | None = None, **kw: object):
        emulator = BoardEmulator(family, boards or BOARDS[family], **kw)  # type: ignore[arg-type]
        path = emulator.start_pty()
        port = serial.Serial(path, emulator.baud, timeout=0.05)
        started.append((emulator, port))
        return emulator, Wire(port, emulator.codec)

    yield factory
    for emulator, port in started:
        port.close()
        emulator.stop()


def closed_bits(emulator: BoardEmulator, status: BoardStatus) -> list[bool]:
    """Door closed per channel, as the polarity of ``emulator`` says."""
    return [emulator.feedback.is_closed(b) for b in status.locks[: emulator.channels]]


# --- status and unlock -------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_status_of_each_board(make, family: str) -> None:
    emulator, wire = make(family)
    for address in BOARDS[family]:
        status = wire.status(address)
        assert status.address == address
        assert closed_bits(emulator, status) == [True] * 16


def test_cu_status_bytes_exact(make) -> None:
    emulator, wire = make("cu", channels=12)
    emulator.open_door(1, 2)
    emulator.set_item(1, 12, True)
    wire.send(H("02 10 30 03 45"))
    # hooks: all 12 closed but channel 2; channels 13-16 do not exist (clear); IR: ch 12.
    assert wire.frame() == H("02 10 35 FD 0F 00 08 03 5E")


def test_8a_status_bytes_exact(make) -> None:
    emulator, wire = make("8a", channels=8, feedback=Feedback.OPEN_WHEN_SET)
    emulator.open_door(1, 1)
    wire.send(H("80 01 00 33 B2"))
    assert wire.frame() == H("80 01 00 00 01 33 B3")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("feedback", list(Feedback))
def test_unlock_opens_the_door_and_the_next_status_shows_it(
    make, family: str, feedback: Feedback
) -> None:
    emulator, wire = make(family, feedback=feedback, open_delay_s=0.02)
    board = BOARDS[family][1]
    before = closed_bits(emulator, wire.status(board))
    assert before == [True] * 16
    ack = wire.unlock(board, 16)
    assert ack is not None
    assert wire.codec.decode_reply(ack) == UnlockAck(board, 16)
    assert emulator.pulses(board, 16) == 1
    time.sleep(0.05)  # the spring needs open_delay_s
    assert emulator.door_open(board, 16)
    after = closed_bits(emulator, wire.status(board))
    assert after == [True] * 15 + [False]
    emulator.close_door(board, 16)
    assert closed_bits(emulator, wire.status(board)) == [True] * 16
    assert closed_bits(emulator, wire.status(BOARDS[family][0])) == [True] * 16


def test_sheet_unlock_frames_pulse_the_right_lock(make) -> None:
    emulator, wire = make("cu")
    wire.send(H("02 00 31 03 36"))
    assert wire.frame() == H("02 00 31 03 36")  # the echo-style ack
    assert [emulator.pulses(0, ch) for ch in (1, 2)] == [1, 0]
    assert emulator.pulses(1, 1) == 0


def test_8a_unlock_reply_is_the_00_variant(make) -> None:
    emulator, wire = make("8a")
    wire.send(H("8A 01 01 11 9B"))
    assert wire.frame() == H("8A 01 01 00 8A")
    assert emulator.pulses(1, 1) == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_unlock_all_pulses_every_lock(make, family: str) -> None:
    emulator, wire = make(family, channels=8)
    board = BOARDS[family][0]
    wire.unlock(board, 0)
    assert [emulator.pulses(board, ch) for ch in range(1, 9)] == [1] * 8
    assert emulator.pulses(BOARDS[family][1], 1) == 0
    time.sleep(0.05)
    assert all(emulator.door_open(board, ch) for ch in range(1, 9))


def test_pulse_times_are_monotonic_stamps(make) -> None:
    emulator, wire = make("cu")
    before = time.monotonic()
    wire.unlock(0, 3)
    wire.unlock(0, 3)
    times = emulator.pulse_times(0, 3)
    assert len(times) == 2
    assert before <= times[0] <= times[1] <= time.monotonic()


def test_without_auto_open_the_released_door_stays_until_pulled(make) -> None:
    emulator, wire = make("cu", auto_open=False)
    wire.unlock(0, 1)
    time.sleep(0.05)
    assert emulator.pulses(0, 1) == 1
    assert not emulator.door_open(0, 1)
    emulator.open_door(0, 1)
    assert not wire.status(0).locks[0]


def test_cu_pulse_time_is_set_and_read_back(make) -> None:
    emulator, wire = make("cu")
    assert emulator.pulse_ms(1) is None
    request = wire.codec.pulse_time_request(1, 700)
    assert request is not None
    wire.send(request)
    reply = wire.frame()
    assert reply == H("02 10 38 00 46 03 93")
    assert wire.codec.decode_reply(reply) == PulseTimeReply(1, 700)
    assert emulator.pulse_ms(1) == 700


# --- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_jammed_lock_takes_pulses_but_stays_shut(make, family: str) -> None:
    emulator, wire = make(family)
    board = BOARDS[family][0]
    emulator.jam(board, 5)
    wire.unlock(board, 5)
    wire.unlock(board, 5)
    time.sleep(0.05)
    assert emulator.pulses(board, 5) == 2
    assert not emulator.door_open(board, 5)
    assert closed_bits(emulator, wire.status(board))[4] is True
    emulator.jam(board, 5, False)
    wire.unlock(board, 5)
    time.sleep(0.05)
    assert emulator.door_open(board, 5)


@pytest.mark.parametrize("family", FAMILIES)
def test_offline_board_sends_nothing_and_does_nothing(make, family: str) -> None:
    emulator, wire = make(family)
    board, other = BOARDS[family]
    emulator.set_offline(board)
    wire.send(wire.codec.status_request(board))
    assert wire.raw(0.15) == b""
    wire.send(wire.codec.unlock_request(board, 1))
    assert wire.raw(0.15) == b""
    assert emulator.pulses(board, 1) == 0
    assert wire.status(other).address == other  # the other board still answers
    emulator.set_offline(board, False)
    assert wire.status(board).address == board


@pytest.mark.parametrize("family", FAMILIES)
def test_garbled_replies_never_decode(make, family: str) -> None:
    emulator, wire = make(family)
    board = BOARDS[family][0]
    emulator.set_garbled(board)
    good = wire.codec.status_reply(
        BoardStatus(board, (True,) * 16, (False,) * 16 if family == "cu" else None)
    )
    for _ in range(10):
        wire.send(wire.codec.status_request(board))
        data = wire.read(len(good))
        assert len(data) == len(good)
        assert data != good
        assert wire.codec.split_frame(data)[0] is None
        with pytest.raises(ProtocolError):
            wire.codec.decode_reply(data)
    emulator.set_garbled(board, False)
    assert wire.status(board).address == board


def test_garbled_checksum_is_a_checksum_error(make) -> None:
    # Flipped bits land anywhere after the header; over a few tries one hits the checksum
    # or a data byte (ChecksumError), never passing as a good frame.
    emulator, wire = make("cu")
    emulator.set_garbled(0)
    kinds = set()
    for _ in range(30):
        wire.send(wire.codec.status_request(0))
        try:
            wire.codec.decode_reply(wire.read(9))
        except ChecksumError:
            kinds.add("checksum")
        except ProtocolError:
            kinds.add("protocol")
    assert "checksum" in kinds


@pytest.mark.parametrize("family", FAMILIES)
def test_wrong_address_replies(make, family: str) -> None:
    emulator, wire = make(family)
    board = BOARDS[family][0]
    emulator.set_wrong_address(board)
    status = wire.status(board)
    assert status.address != board
    assert status.address not in BOARDS[family]  # not even a neighbour's address
    emulator.set_wrong_address(board, False)
    assert wire.status(board).address == board


@pytest.mark.parametrize("family", FAMILIES)
def test_short_reply_is_cut_halfway(make, family: str) -> None:
    emulator, wire = make(family)
    board = BOARDS[family][0]
    full = 9 if family == "cu" else 7
    emulator.set_short_reply(board)
    wire.send(wire.codec.status_request(board))
    data = wire.raw(0.15)
    assert len(data) == full // 2
    with pytest.raises(ProtocolError):
        wire.codec.decode_reply(data)


@pytest.mark.parametrize("family", FAMILIES)
def test_chatter_flips_one_channel_at_random(make, family: str) -> None:
    emulator, wire = make(family, latency_s=0.0)
    board = BOARDS[family][0]
    emulator.set_chatter(board, 3)
    seen = [wire.status(board).locks[:16] for _ in range(40)]
    assert {s[2] for s in seen} == {True, False}
    assert all(s[:2] + s[3:] == (True,) * 15 for s in seen)  # the others hold still
    emulator.set_chatter(board, 3, False)
    assert all(wire.status(board).locks[2] for _ in range(5))


def test_garbage_and_bad_requests_are_ignored(make) -> None:
    emulator, wire = make("cu")
    wire.send(H("FF 00 13 37") + H("02 00 30 03 36"))  # garbage, then a bad checksum
    assert wire.raw(0.15) == b""
    wire.send(H("02 00 36 00 00 00 00 03 3B"))  # a reply is not a request
    assert wire.raw(0.15) == b""
    wire.send(H("55 AA") + H("02 00 30 03 35"))  # garbage before a good request
    assert wire.frame() is not None
    assert emulator.pulses(0, 1) == 0


def test_a_failure_inside_the_model_is_logged_and_the_bus_goes_on(
    make, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    emulator, wire = make("cu")
    real_answer = emulator._boards.answer
    calls = []

    def broken_once(frame: bytes) -> list[bytes]:
        calls.append(frame)
        if len(calls) == 1:
            raise RuntimeError("model bug")
        return real_answer(frame)

    monkeypatch.setattr(emulator._boards, "answer", broken_once)
    with caplog.at_level("ERROR", logger="hardware.locker.emulator"):
        wire.send(H("02 00 30 03 35"))
        assert wire.raw(0.15) == b""
        assert wire.status(0).address == 0
    assert "model bug" in caplog.text


def test_half_a_frame_is_forgotten_after_line_silence(make) -> None:
    _, wire = make("cu")
    wire.send(H("02 00 30"))
    time.sleep(0.15)
    wire.send(H("03 35"))  # the tail alone is garbage to a board that timed out
    assert wire.raw(0.15) == b""
    assert wire.status(0).address == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_echo_sends_the_request_back_first(make, family: str) -> None:
    emulator, wire = make(family, echo=True)
    board = BOARDS[family][0]
    request = wire.codec.status_request(board)
    wire.send(request)
    assert wire.frame() == request
    reply = wire.frame()
    assert reply is not None
    assert wire.codec.decode_reply(reply).address == board
    emulator.echo = False  # switchable at run time
    wire.send(request)
    assert wire.frame() == reply


def test_echo_of_an_offline_board_is_only_the_echo(make) -> None:
    emulator, wire = make("8a", echo=True)
    emulator.set_offline(1)
    request = wire.codec.status_request(1)
    wire.send(request)
    assert wire.raw(0.15) == request


# --- item sensors ------------------------------------------------------------------------


def test_cu_item_sensor_bits(make) -> None:
    emulator, wire = make("cu")
    assert wire.status(0).items == (False,) * 16
    emulator.set_item(0, 1, True)
    emulator.set_item(0, 16, True)
    assert emulator.item(0, 1)
    items = wire.status(0).items
    assert items == (True,) + (False,) * 14 + (True,)
    assert wire.status(1).items == (False,) * 16
    emulator.set_item(0, 1, False)
    assert wire.status(0).items == (False,) * 15 + (True,)


def test_without_item_sensors_the_ir_bits_stay_clear(make) -> None:
    emulator, wire = make("cu", item_sensors=False)
    emulator.set_item(0, 1, True)
    assert emulator.item(0, 1)
    assert wire.status(0).items == (False,) * 16


def test_8a_reports_no_items(make) -> None:
    emulator, wire = make("8a")
    emulator.set_item(1, 1, True)
    assert wire.status(1).items is None


# --- the bus -----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_two_boards_answer_only_their_own_address(make, family: str) -> None:
    emulator, wire = make(family)
    first, second = BOARDS[family]
    emulator.open_door(second, 1)
    assert closed_bits(emulator, wire.status(first))[0] is True
    assert closed_bits(emulator, wire.status(second))[0] is False
    absent = 5
    wire.send(wire.codec.status_request(absent))
    assert wire.raw(0.15) == b""
    assert emulator.requests_seen() == 3


def test_cu_broadcast_status_every_online_board_in_turn(make) -> None:
    emulator, wire = make("cu", boards=(0, 1, 2))
    emulator.open_door(1, 1)
    emulator.set_offline(2)
    wire.send(H("02 F0 32 03 27"))
    first, second = wire.frame(), wire.frame()
    assert first == H("02 00 36 FF FF 00 00 03 39")
    assert second == H("02 10 36 FE FF 00 00 03 48")
    assert wire.raw(0.15) == b""  # board 2 is offline


@pytest.mark.parametrize("baud", [9600, 2400])
def test_wire_time_is_measurable(make, baud: int) -> None:
    _, wire = make("8a", baud=baud, latency_s=0.0)
    request = wire.codec.status_request(1)
    floor = (len(request) + 7) * 10 / baud
    for _ in range(3):
        start = time.monotonic()
        wire.send(request)
        reply = wire.frame()
        elapsed = time.monotonic() - start
        assert reply is not None and len(reply) == 7
        assert elapsed >= floor, f"{elapsed * 1000:.1f} ms < wire floor {floor * 1000:.1f} ms"


def test_without_wire_time_a_pty_is_faster_than_the_wire(make) -> None:
    _, wire = make("8a", baud=1200, latency_s=0.0, wire_time=False)
    floor = (5 + 7) * 10 / 1200  # 100 ms
    best = min(_timed_status(wire) for _ in range(3))
    assert best < floor


def test_latency_is_settable_at_run_time(make) -> None:
    emulator, wire = make("cu", latency_s=0.0)
    emulator.latency_s = 0.15
    assert _timed_status(wire) >= 0.15
    emulator.latency_s = 0.0
    assert _timed_status(wire) < 0.15


def _timed_status(wire: Wire, address: int = 1) -> float:
    start = time.monotonic()
    wire.status(address)
    return time.monotonic() - start


def test_driver_may_close_and_reopen_the_pty(make) -> None:
    emulator, wire = make("cu")
    path = emulator.url
    wire.port.close()
    time.sleep(0.1)  # the emulator keeps serving with no driver attached
    with serial.Serial(path, 19200, timeout=0.5) as again:
        reopened = Wire(again, wire.codec)
        assert reopened.status(1).address == 1


# --- TCP ---------------------------------------------------------------------------------


def test_tcp_status_unlock_and_a_second_client() -> None:
    codec = get_codec("8a")
    with BoardEmulator("8a", [3]) as emulator:
        port = emulator.start_tcp()
        assert emulator.url == f"socket://127.0.0.1:{port}"
        client = serial.serial_for_url(emulator.url, timeout=0.5)
        wire = Wire(client, codec)
        assert wire.status(3).address == 3
        assert wire.unlock(3, 2) == H("8A 03 02 00 8B")
        client.close()
        time.sleep(0.05)
        with serial.serial_for_url(emulator.url, timeout=0.5) as again:
            status = Wire(again, codec).status(3)
        assert status.locks[1] is False  # the door opened by the first client's pulse
        assert emulator.pulses(3, 2) == 1


def test_tcp_paced_reply_has_no_mid_frame_silence() -> None:
    # Nagle + delayed ACK would hold paced bytes back ~40 ms: a driver ending frames on
    # 25 ms of silence would cut the reply in two.
    codec = get_codec("cu")
    with BoardEmulator("cu", [0], latency_s=0.0) as emulator:
        emulator.start_tcp()
        with serial.serial_for_url(emulator.url, timeout=0.5) as client:
            gaps: list[float] = []
            for _ in range(20):
                client.write(codec.status_request(0))
                stamps = []
                for _ in range(9):
                    assert client.read(1)
                    stamps.append(time.monotonic())
                gaps.append(max(b - a for a, b in itertools.pairwise(stamps)))
    assert sum(gap > 0.025 for gap in gaps) <= 1, [f"{g * 1000:.1f} ms" for g in gaps]


def test_tcp_echo_and_broadcast() -> None:
    codec = get_codec("cu")
    with BoardEmulator("cu", [0, 4], echo=True) as emulator:
        emulator.start_tcp()
        with serial.serial_for_url(emulator.url, timeout=0.5) as client:
            wire = Wire(client, codec)
            wire.send(H("02 F0 32 03 27"))
            assert wire.frame() == H("02 F0 32 03 27")
            assert [codec.decode_reply(wire.frame() or b"").address for _ in range(2)] == [0, 4]


# --- life cycle and configuration ----------------------------------------------------------


def test_stop_is_prompt_and_idempotent() -> None:
    emulator = BoardEmulator("cu", [0], latency_s=5.0)
    path = emulator.start_pty()
    with serial.Serial(path, 19200, timeout=0.05) as port:
        port.write(H("02 00 30 03 35"))  # the board is now waiting out a 5 s latency
        time.sleep(0.05)
        start = time.monotonic()
        emulator.stop()
        assert time.monotonic() - start < 1.0
        emulator.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("emulator-cu")]
    with pytest.raises(RuntimeError):
        emulator.start_pty()


def test_tcp_stop_with_a_client_attached_is_prompt() -> None:
    emulator = BoardEmulator("8a", [1])
    emulator.start_tcp()
    client = serial.serial_for_url(emulator.url, timeout=0.1)
    try:
        start = time.monotonic()
        with emulator:
            pass  # the context manager stops it
        assert time.monotonic() - start < 1.0
    finally:
        client.close()
    emulator.stop()


def test_describe() -> None:
    with BoardEmulator("cu", [0, 1]) as emulator:
        assert describe(emulator) == (
            "emulating cu boards 0,1 (16 channels, closed_when_set, 19200 baud) "
            "on (not serving yet)"
        )
        path = emulator.start_pty()
        assert re.fullmatch(r"/dev/pts/\d+", path)
        assert describe(emulator).endswith(f"19200 baud) on {path}")
    with BoardEmulator("8a", [7], channels=8, feedback=Feedback.OPEN_WHEN_SET) as emulator:
        assert describe(emulator).startswith(
            "emulating 8a boards 7 (8 channels, open_when_set, 9600 baud)"
        )


@pytest.mark.parametrize(
    ("family", "boards", "kw"),
    [
        ("xx", [0], {}),
        ("cu", [16], {}),
        ("8a", [0], {}),
        ("cu", [0, 0], {}),
        ("cu", [], {}),
        ("cu", [0], {"channels": 17}),
        ("8a", [1], {"channels": 25}),
        ("cu", [0], {"baud": 0}),
    ],
)
def test_bad_configuration_is_refused(family: str, boards: list[int], kw: dict) -> None:
    with pytest.raises(ConfigurationError):
        BoardEmulator(family, boards, **kw)


def test_world_calls_check_board_and_channel() -> None:
    emulator = BoardEmulator("cu", [0], channels=8)
    with pytest.raises(ConfigurationError):
        emulator.open_door(1, 1)
    with pytest.raises(ConfigurationError):
        emulator.set_item(0, 9, True)
    with pytest.raises(ConfigurationError):
        emulator.set_offline(3)
