"""SerialBus against a raw pty pair: the test plays the board from the master side.

A small 8A/80-style codec lives here so that these tests depend on nothing but the
Codec contract; its one-byte status reply is byte-identical to the status request,
exactly like the real family 8a.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from hardware.errors import (
    ChecksumError,
    DeviceBusy,
    DeviceTimeout,
    DeviceUnavailable,
    ProtocolError,
)
from hardware.locker.bus import SerialBus
from hardware.locker.codecs.base import BoardStatus, UnlockAck
from hardware.locker.layout import BusSpec

pytestmark = pytest.mark.timeout(30)


def _bcc(data: bytes) -> int:
    return functools.reduce(lambda a, b: a ^ b, data, 0)


def _x(body: bytes) -> bytes:
    return body + bytes([_bcc(body)])


class FakeCodec:
    """8A/80-like: ``80 AA <status ..., ch1-8 last> 33 BCC``, unlock ``8A AA CH 11 BCC``."""

    name = "fake"
    default_baud = 9600
    addresses = range(1, 32)
    max_channels = 16

    def status_request(self, address: int) -> bytes:
        return _x(bytes([0x80, address, 0x00, 0x33]))

    def unlock_request(self, address: int, channel: int) -> bytes:
        return _x(bytes([0x8A, address, channel, 0x11]))

    def pulse_time_request(self, address: int, pulse_ms: int) -> bytes | None:
        return None

    def split_frame(self, buf: bytes) -> tuple[bytes | None, int]:
        skip = 0
        while skip < len(buf) and buf[skip] not in (0x80, 0x8A):
            skip += 1
        if skip:
            return None, skip
        if buf[:1] == b"\x8a":
            if len(buf) < 5:
                return None, 0
            return (bytes(buf[:5]), 5) if _bcc(buf[:4]) == buf[4] else (None, 1)
        for n in range(5, min(len(buf), 7) + 1):
            if buf[n - 2] == 0x33 and _bcc(buf[: n - 1]) == buf[n - 1]:
                return bytes(buf[:n]), n
        return (None, 1) if len(buf) >= 7 else (None, 0)

    def decode_reply(self, frame: bytes) -> BoardStatus | UnlockAck:
        if len(frame) < 5 or frame[0] not in (0x80, 0x8A):
            raise ProtocolError(f"not a reply: {frame.hex(' ')}")
        if _bcc(frame[:-1]) != frame[-1]:
            raise ChecksumError("bad BCC")
        if frame[0] == 0x8A:
            return UnlockAck(frame[1], frame[2])
        if frame[-2] != 0x33:
            raise ProtocolError("no 33 before BCC")
        groups = frame[2:-2]
        locks = tuple(bool(b >> i & 1) for b in reversed(groups) for i in range(8))
        return BoardStatus(frame[1], locks)


class SilenceCodec(FakeCodec):
    """Never recognises a status frame by itself: only line silence can end one."""

    def split_frame(self, buf: bytes) -> tuple[bytes | None, int]:
        if buf[:1] == b"\x80":
            return None, 0
        return super().split_frame(buf)


CODEC = FakeCodec()


def status(address: int, *groups: int) -> bytes:
    """A status reply; ``groups`` highest first, the last one is channels 1-8."""
    return _x(bytes([0x80, address, *groups, 0x33]))


Script = Callable[[bytes], list[tuple[float, bytes]]]


class PtyBoard:
    """Plays one or more boards on the master side of a pty; records what it saw."""

    def __init__(self, script: Script, codec: FakeCodec = CODEC) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        os.close(slave)
        self.script = script
        self.codec = codec
        self.requests: list[tuple[float, bytes]] = []
        self.replied_at: list[float] = []
        self.overlaps = 0  # requests that arrived while a reply was still going out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.01)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 256)
            except OSError:  # no slave side open at the moment
                time.sleep(0.005)
                continue
            while buf:
                frame, used = self.codec.split_frame(buf)
                if frame is None and used == 0:
                    break
                buf = buf[used:]
                if frame is not None:
                    self._answer(frame)

    def _answer(self, frame: bytes) -> None:
        self.requests.append((time.monotonic(), frame))
        steps = self.script(frame)
        for delay, out in steps:
            time.sleep(delay)
            # Before the answer is out, a driver keeping one request in flight sends nothing.
            if select.select([self.master], [], [], 0)[0]:
                self.overlaps += 1
            os.write(self.master, out)
        if steps:
            self.replied_at.append(time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        with contextlib.suppress(OSError):
            os.close(self.master)


def answer_status(latency: float = 0.005) -> Script:
    """Every board answers a status request with its own address as channels 1-8."""

    def script(frame: bytes) -> list[tuple[float, bytes]]:
        if frame[0] == 0x80:
            return [(latency, status(frame[1], frame[1]))]
        return []

    return script


def make_spec(port: str, **kw: object) -> BusSpec:
    values: dict[str, object] = {
        "name": "bus1",
        "port": port,
        "family": "fake",
        "boards": (1, 2),
        "baud": 9600,
        "reply_timeout_s": 0.2,
    }
    values.update(kw)
    return BusSpec(**values)  # type: ignore[arg-type]


@contextlib.contextmanager
def rig(
    script: Script, codec: FakeCodec = CODEC, **kw: object
) -> Iterator[tuple[PtyBoard, SerialBus]]:
    board = PtyBoard(script)  # the board side splits requests with the plain codec
    bus = SerialBus(make_spec(board.path, **kw), codec)
    bus.open()
    try:
        yield board, bus
    finally:
        bus.close()
        board.stop()


def read_status(bus: SerialBus, address: int = 1, **kw: object) -> BoardStatus:
    reply = bus.request(CODEC.status_request(address), address=address, **kw)  # type: ignore[arg-type]
    assert isinstance(reply, BoardStatus)
    return reply


def bits(value: int, n: int = 8) -> tuple[bool, ...]:
    return tuple(bool(value >> i & 1) for i in range(n))


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# --- the exchange --------------------------------------------------------------------------


def test_status_round_trip() -> None:
    with rig(answer_status()) as (_, bus):
        reply = read_status(bus, 5)
    assert reply == BoardStatus(5, bits(5))


def test_one_request_in_flight_under_concurrent_callers() -> None:
    got: dict[int, list[BoardStatus]] = {}
    errors: list[Exception] = []
    # A generous reply timeout: a stalled board thread must not look like a second request.
    with rig(answer_status(latency=0.01), reply_timeout_s=1.0) as (board, bus):

        def caller(address: int) -> None:
            try:
                got[address] = [read_status(bus, address) for _ in range(5)]
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=caller, args=(a,)) for a in (1, 2, 3, 4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert errors == []
    assert board.overlaps == 0
    assert len(board.requests) == 20
    for address, replies in got.items():  # every caller got its own board's answer
        assert all(reply.address == address and reply.locks == bits(address) for reply in replies)


def test_gap_since_the_previous_exchange_is_respected() -> None:
    with rig(answer_status(latency=0.0), gap_s=0.05) as (board, bus):
        for address in (1, 2, 1, 2):
            read_status(bus, address)
    gaps = [board.requests[i + 1][0] - board.replied_at[i] for i in range(len(board.requests) - 1)]
    assert min(gaps) >= 0.045, gaps


def test_default_gap_is_three_and_a_half_characters_plus_a_millisecond() -> None:
    assert make_spec("x", baud=9600).frame_gap_s == pytest.approx(0.004646, abs=1e-5)


def test_stale_input_is_flushed_before_a_request() -> None:
    with rig(answer_status(latency=0.01)) as (board, bus):
        read_status(bus, 1)  # port open and settled
        board.write(status(1, 0xFF))  # a stale reply from an earlier, timed-out request
        time.sleep(0.05)  # let it reach the port's input buffer
        reply = read_status(bus, 1)
    assert reply.locks == bits(1)  # the fresh answer, not the stale 0xFF


def test_own_echo_is_dropped() -> None:
    def echo_then_reply(frame: bytes) -> list[tuple[float, bytes]]:
        return [(0.0, frame), (0.008, status(frame[1], 0x0F))]

    with rig(echo_then_reply) as (_, bus):
        first = read_status(bus, 1)
        second = read_status(bus, 2)
    # The echo "80 01 00 33 B2" decodes as an all-clear status: it must not be taken.
    assert first.locks == bits(0x0F)
    assert second == BoardStatus(2, bits(0x0F))


def test_after_an_echo_was_seen_the_echo_alone_is_a_timeout() -> None:
    replying = threading.Event()
    replying.set()

    def echo_maybe_reply(frame: bytes) -> list[tuple[float, bytes]]:
        steps = [(0.0, frame)]
        if replying.is_set():
            steps.append((0.005, status(frame[1], 0x0F)))
        return steps

    with rig(echo_maybe_reply) as (_, bus):
        assert read_status(bus, 1).locks == bits(0x0F)
        replying.clear()  # the board is gone; the adapter still echoes
        with pytest.raises(DeviceTimeout):
            read_status(bus, 1)


def test_echo_identical_reply_is_the_answer() -> None:
    def identical(frame: bytes) -> list[tuple[float, bytes]]:
        return [(0.005, frame)]  # 8a: all-clear one-byte status == the request bytes

    with rig(identical) as (_, bus):
        start = time.monotonic()
        reply = read_status(bus, 1)
        took = time.monotonic() - start
        ack = bus.request(CODEC.unlock_request(1, 3), address=1, want_reply=False)
    assert reply == BoardStatus(1, bits(0))
    assert took < 0.15  # ended by line silence, not by the reply timeout
    assert ack == UnlockAck(1, 3)


def test_frame_of_unknown_length_ends_on_line_silence() -> None:
    reply = status(1, 0x01, 0x80)

    def in_two_pieces(frame: bytes) -> list[tuple[float, bytes]]:
        return [(0.005, reply[:3]), (0.012, reply[3:])]  # pause shorter than the silence

    with rig(in_two_pieces, codec=SilenceCodec()) as (_, bus):
        start = time.monotonic()
        got = read_status(bus, 1)
        took = time.monotonic() - start
    assert got.locks == bits(0x80) + bits(0x01)
    assert took >= 0.025  # the frame was ended by silence


def test_reply_from_another_board_is_discarded() -> None:
    wrong = rig(lambda f: [(0.005, status(2, 0xFF))])
    with wrong as (_, bus), pytest.raises(ProtocolError, match="reply from board 2, expected 1"):
        read_status(bus, 1)

    def wrong_then_right(frame: bytes) -> list[tuple[float, bytes]]:
        return [(0.005, status(2, 0xFF)), (0.01, status(1, 0x03))]

    with rig(wrong_then_right) as (_, bus):
        assert read_status(bus, 1) == BoardStatus(1, bits(0x03))


def test_garbled_reply_is_an_error_only_when_nothing_valid_came() -> None:
    bad = bytearray(status(1, 0x05))
    bad[-1] ^= 0x40
    with rig(lambda f: [(0.005, bytes(bad))]) as (_, bus), pytest.raises(ProtocolError):
        read_status(bus, 1)
    with rig(lambda f: [(0.005, b"\x13\x37" + bytes(bad)), (0.03, status(1, 0x06))]) as (_, bus):
        assert read_status(bus, 1).locks == bits(0x06)


def test_silent_board_times_out() -> None:
    with rig(lambda f: []) as (_, bus):
        start = time.monotonic()
        with pytest.raises(DeviceTimeout, match="board 1 did not answer"):
            read_status(bus, 1)
        took = time.monotonic() - start
        start = time.monotonic()
        assert bus.request(CODEC.unlock_request(1, 1), address=1, want_reply=False) is None
        unlock_took = time.monotonic() - start
    assert 0.19 <= took < 0.6
    assert unlock_took < 0.15  # an unlock does not wait for an ack that never comes


def test_late_unlock_ack_is_not_taken_for_a_status() -> None:
    def ack_then_status(frame: bytes) -> list[tuple[float, bytes]]:
        return [(0.002, _x(bytes([0x8A, 1, 1, 0x11]))), (0.01, status(1, 0x02))]

    with rig(ack_then_status) as (_, bus):
        reply = bus.request(CODEC.status_request(1), address=1, expect=BoardStatus)
    assert reply == BoardStatus(1, bits(0x02))


def test_closed_bus_refuses_requests() -> None:
    with rig(answer_status()) as (_, bus):
        bus.close()
        bus.close()  # idempotent
        with pytest.raises(DeviceUnavailable, match="not open"):
            read_status(bus, 1)


# --- the port ------------------------------------------------------------------------------


def test_adapter_vanishes_then_comes_back(tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB-lock"  # like /dev/serial/by-id/...: survives a replug
    board = PtyBoard(answer_status())
    link.symlink_to(board.path)
    bus = SerialBus(make_spec(str(link)), CODEC)
    bus.open()
    new_board: PtyBoard | None = None
    try:
        assert read_status(bus, 1).locks == bits(1)
        board.stop()  # unplugged
        link.unlink()
        with pytest.raises(DeviceUnavailable, match=str(link)):
            read_status(bus, 1)
        assert not bus.is_open
        start = time.monotonic()
        with pytest.raises(DeviceUnavailable, match="next attempt"):
            read_status(bus, 1)
        assert time.monotonic() - start < 0.05  # backing off: fail fast, never block
        new_board = PtyBoard(answer_status())  # plugged in again, maybe another pts number
        link.symlink_to(new_board.path)

        def answers() -> bool:
            try:
                return read_status(bus, 1).locks == bits(1)
            except DeviceUnavailable:
                return False

        assert wait_for(answers, timeout=3.0)
        assert bus.is_open
    finally:
        bus.close()
        board.stop()
        if new_board is not None:
            new_board.stop()


def test_reopens_after_repeated_timeouts() -> None:
    opened: list[str] = []

    def counting_open(url: str, **kw: object) -> serial.SerialBase:
        opened.append(url)
        return serial.serial_for_url(url, **kw)

    board = PtyBoard(lambda f: [])
    bus = SerialBus(make_spec(board.path, reply_timeout_s=0.03), CODEC, open_port=counting_open)
    try:
        bus.open()
        for _ in range(5):
            with pytest.raises(DeviceTimeout):
                read_status(bus, 1)
        with pytest.raises(DeviceTimeout):
            read_status(bus, 1)
    finally:
        bus.close()
        board.stop()
    assert len(opened) == 2  # the stale connection was re-opened once


def test_second_bus_on_the_same_port_is_busy() -> None:
    with rig(answer_status()) as (board, bus):
        other = SerialBus(make_spec(board.path), CODEC)
        with pytest.raises(DeviceBusy, match=board.path):
            other.open()
        assert read_status(bus, 1).locks == bits(1)  # the first one is unharmed


def test_bad_port_path_names_the_path() -> None:
    bus = SerialBus(make_spec("/dev/ttyNOSUCHLOCKER9"), CODEC)
    with pytest.raises(DeviceUnavailable, match="/dev/ttyNOSUCHLOCKER9") as info:
        bus.open()
    assert not isinstance(info.value, DeviceBusy)
    start = time.monotonic()
    with pytest.raises(DeviceUnavailable, match="/dev/ttyNOSUCHLOCKER9"):
        read_status(bus, 1)
    assert time.monotonic() - start < 0.05
    bus.close()


def test_socket_url_works_without_exclusive() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(3)
        conn, _ = server.accept()
        conn.settimeout(0.05)
        with conn:
            while not stop.is_set():
                try:
                    data = conn.recv(64)
                except TimeoutError:
                    continue
                if not data:
                    return
                conn.sendall(status(data[1], 0x21))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    bus = SerialBus(make_spec(f"socket://127.0.0.1:{port}", exclusive=True), CODEC)
    try:
        bus.open()
        assert read_status(bus, 3) == BoardStatus(3, bits(0x21))
    finally:
        bus.close()
        stop.set()
        thread.join(2)
        server.close()
