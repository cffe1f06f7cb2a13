"""A board emulator: lock boards of one family on a pty or a TCP port, speaking the wire
protocol as real boards do, for integration tests, the demo and installers.

Several boards share one bus and each answers only its own address (a CU "all boards"
status is answered by every online board in turn). A pty carries bytes instantly and
never drops them, unlike RS485; with ``wire_time`` on, the emulator spends 10 bits per
byte at the baud rate on every request before acting on it, waits ``latency_s`` before
each reply and paces the reply bytes the same way, so driver timings mean something.

The cabinet itself (doors, items, faults) lives in ``hardware.locker.emulator_board``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable, Sequence
from types import TracebackType

from hardware.errors import ConfigurationError
from hardware.locker.codecs import get_codec, split_frames
from hardware.locker.emulator_board import Boards
from hardware.locker.layout import Feedback

logger = logging.getLogger(__name__)

_POLL_S = 0.05  # every wait of the serving threads ends this often to notice stop()
_RX_RESET_S = 0.05  # line silence after which a board forgets a half-received frame
_WRITE_TIMEOUT_S = 0.5  # a reader that takes nothing for this long loses the bytes
_JOIN_S = 1.0


class _Gone(Exception):
    """The peer left (TCP client disconnected)."""


class _PtyPort:
    """The master side of a pty pair; the emulator keeps the slave open too, so the master
    never sees EIO while no driver has the slave open (or between a close and a reopen)."""

    def __init__(self, master: int) -> None:
        self.master = master

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            # EIO would mean no slave fd is open (we hold one, so it should not happen):
            # log it and back off instead of spinning on a readable-but-dead master.
            logger.warning("pty master read failed: %s", exc)
            time.sleep(_POLL_S)
            return b""

    def write(self, data: bytes) -> None:
        deadline = time.monotonic() + _WRITE_TIMEOUT_S
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [self.master], [], left)[1]:
                    logger.debug("pty reader stalled: dropped %d bytes", len(view))
                    return


class _SocketPort:
    """One TCP client connection."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        conn.settimeout(_WRITE_TIMEOUT_S)
        # Paced replies go out a byte or two at a time: without TCP_NODELAY, Nagle holds
        # each small segment back until the client's delayed ACK (~40 ms), which a driver
        # reads as line silence in the middle of a frame.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.conn], [], [], timeout)
        if not ready:
            return b""
        try:
            data = self.conn.recv(4096)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise _Gone(str(exc)) from exc
        if not data:
            raise _Gone("client closed the connection")
        return data

    def write(self, data: bytes) -> None:
        try:
            self.conn.sendall(data)
        except OSError as exc:
            raise _Gone(str(exc)) from exc


_Port = _PtyPort | _SocketPort


class BoardEmulator:
    """Lock boards of family ``family`` with addresses ``boards`` on one emulated bus.

    Start it with ``start_pty()`` or ``start_tcp()``, give ``url`` to the driver, drive the
    world (doors, items) and faults through the methods below, ``stop()`` at the end (or
    use it as a context manager). Every method is thread-safe.
    """

    def __init__(
        self,
        family: str,
        boards: Sequence[int],
        *,
        channels: int = 16,
        feedback: Feedback = Feedback.CLOSED_WHEN_SET,
        baud: int | None = None,
        wire_time: bool = True,
        latency_s: float = 0.003,
        item_sensors: bool = True,
        auto_open: bool = True,
        open_delay_s: float = 0.02,
        echo: bool = False,
    ) -> None:
        self.codec = get_codec(family)
        self.family = self.codec.name
        self.baud = self.codec.default_baud if baud is None else baud
        if self.baud <= 0:
            raise ConfigurationError(f"baud rate must be positive, not {self.baud}")
        if latency_s < 0:
            raise ConfigurationError(f"latency_s must be >= 0, not {latency_s}")
        self._boards = Boards(
            self.codec,
            tuple(boards),
            channels=channels,
            feedback=Feedback(feedback),
            item_sensors=item_sensors,
            auto_open=auto_open,
            open_delay_s=open_delay_s,
        )
        self.wire_time = wire_time
        self.latency_s = latency_s  # settable at run time
        self.echo = echo  # settable at run time
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fds: list[int] = []
        self._server: socket.socket | None = None
        self._url: str | None = None
        self._stopped = False
        self._stop_lock = threading.Lock()

    # --- configuration seen from outside ----------------------------------------------------
    @property
    def boards(self) -> tuple[int, ...]:
        """The emulated board addresses, in bus order."""
        return self._boards.addresses

    @property
    def channels(self) -> int:
        """Channels per board."""
        return self._boards.channels

    @property
    def feedback(self) -> Feedback:
        """What a set feedback bit means on these boards."""
        return self._boards.feedback

    @property
    def url(self) -> str:
        """What to give ``serial_for_url``: the pty path or ``socket://127.0.0.1:PORT``."""
        if self._url is None:
            raise RuntimeError("the emulator is not serving: call start_pty() or start_tcp()")
        return self._url

    # --- transports ----------------------------------------------------------------------------
    def start_pty(self) -> str:
        """Serve on a new pty pair; returns the slave path (``/dev/pts/N``) a driver opens."""
        self._check_startable()
        master, slave = os.openpty()
        self._fds = [master, slave]
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._url = os.ttyname(slave)
        pty_port = _PtyPort(master)
        self._spawn(lambda: self._session(pty_port), "pty")
        logger.debug("%s emulator serving on %s", self.family, self._url)
        return self._url

    def start_tcp(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Serve on TCP (one client at a time); returns the port. URL: ``socket://host:port``."""
        self._check_startable()
        server = socket.create_server((host, port), backlog=1)
        self._server = server
        bound = server.getsockname()[1]
        self._url = f"socket://{host}:{bound}"
        self._spawn(lambda: self._serve_tcp(server), "tcp")
        logger.debug("%s emulator serving on %s", self.family, self._url)
        return bound

    def stop(self) -> None:
        """Stop serving and release the pty or socket; idempotent, returns within ~1 s."""
        with self._stop_lock:  # two threads stopping at once must not close fds twice
            if self._stopped:
                return
            self._stopped = True
        self._stop.set()
        deadline = time.monotonic() + _JOIN_S
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("emulator thread %s did not stop in time", thread.name)
        if self._server is not None:
            self._server.close()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def __enter__(self) -> BoardEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _check_startable(self) -> None:
        if self._stopped:
            raise RuntimeError("this emulator was stopped; create a new one")
        if self._url is not None:
            raise RuntimeError(f"the emulator already serves on {self._url}")

    def _spawn(self, target: Callable[[], None], kind: str) -> None:
        def run() -> None:
            try:
                target()
            except Exception:
                # A crashed bus thread looks like dead boards: say why, loudly.
                logger.exception("%s emulator %s thread failed", self.family, kind)

        thread = threading.Thread(target=run, name=f"emulator-{self.family}-{kind}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _serve_tcp(self, server: socket.socket) -> None:
        while not self._stop.is_set():
            if not select.select([server], [], [], _POLL_S)[0]:
                continue
            try:
                conn, peer = server.accept()
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EINVAL) or self._stop.is_set():
                    return
                logger.warning("emulator accept failed: %s", exc)
                continue
            logger.debug("emulator client %s connected", peer)
            try:
                self._session(_SocketPort(conn))
            except _Gone as exc:
                logger.debug("emulator client %s left: %s", peer, exc)
            finally:
                conn.close()

    # --- the bus ---------------------------------------------------------------------------------
    def _session(self, port: _Port) -> None:
        """Read requests and answer them until stop() (or until a TCP client leaves)."""
        buf = bytearray()
        last_rx = time.monotonic()
        while not self._stop.is_set():
            data = port.read(_POLL_S)
            now = time.monotonic()
            if not data:
                if buf and now - last_rx >= _RX_RESET_S:
                    logger.debug("dropped half a frame after silence: %s", buf.hex(" "))
                    buf.clear()
                continue
            last_rx = now
            if self.wire_time and self._wait(len(data) * 10 / self.baud):
                return  # the bytes take this long to arrive on a real wire
            if self.echo:
                port.write(data)  # a half-duplex adapter hears itself
            frames, rest = split_frames(self.codec, bytes(buf + data))
            buf[:] = rest
            for frame in frames:
                self._respond(port, frame)
            last_rx = time.monotonic()

    def _respond(self, port: _Port, frame: bytes) -> None:
        try:
            replies = self._boards.answer(frame)
        except Exception:
            # One frame the model cannot handle must not take the whole bus down.
            logger.exception("emulator failed to answer %s", frame.hex(" "))
            return
        logger.debug(
            "rx %s -> %s", frame.hex(" "), " | ".join(r.hex(" ") for r in replies) or "silence"
        )
        for reply in replies:
            if self._wait(self.latency_s):
                return
            self._send_paced(port, reply)

    def _send_paced(self, port: _Port, data: bytes) -> None:
        """Write ``data`` so that it takes 10 bits per byte at the baud rate, like a wire."""
        if not self.wire_time:
            port.write(data)
            return
        byte_s = 10 / self.baud
        start = time.monotonic()
        sent = 0
        while sent < len(data):
            due = min(len(data), int((time.monotonic() - start) / byte_s))
            if due > sent:
                port.write(data[sent:due])
                sent = due
            elif self._wait(start + (sent + 1) * byte_s - time.monotonic()):
                return

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stop() comes first; True when stopping."""
        if seconds > 0:
            return self._stop.wait(seconds)
        return self._stop.is_set()

    # --- the world ---------------------------------------------------------------------------
    def door_open(self, address: int, channel: int) -> bool:
        """True when the door of that lock stands open."""
        return self._boards.door_open(address, channel)

    def open_door(self, address: int, channel: int) -> None:
        """The door is opened by hand (forced, or a released door pulled)."""
        self._boards.set_door(address, channel, True)

    def close_door(self, address: int, channel: int) -> None:
        """The door is pushed shut; the hook catches it."""
        self._boards.set_door(address, channel, False)

    def set_item(self, address: int, channel: int, present: bool) -> None:
        """Put an item into the compartment (True) or take it out (False)."""
        self._boards.set_item(address, channel, present)

    def item(self, address: int, channel: int) -> bool:
        """True when an item lies in the compartment."""
        return self._boards.item(address, channel)

    def pulses(self, address: int, channel: int) -> int:
        """How many unlock pulses this lock got."""
        return len(self._boards.pulse_times(address, channel))

    def pulse_times(self, address: int, channel: int) -> list[float]:
        """``time.monotonic()`` of each pulse this lock got."""
        return self._boards.pulse_times(address, channel)

    def pulse_ms(self, address: int) -> int | None:
        """The pulse length a driver set on this board (CU 37), None when never set."""
        return self._boards.pulse_ms(address)

    def requests_seen(self) -> int:
        """Frames received on the bus (any address), for benchmarks and tests."""
        return self._boards.requests_seen()

    # --- faults ------------------------------------------------------------------------------
    def jam(self, address: int, channel: int, on: bool = True) -> None:
        """Pulses on this lock do not release the door."""
        self._boards.set_lock_fault(address, channel, "jammed", on)

    def set_offline(self, address: int, on: bool = True) -> None:
        """The board does not answer (nor act on) anything."""
        self._boards.set_board_fault(address, "offline", on)

    def set_garbled(self, address: int, on: bool = True) -> None:
        """The board answers with one bit flipped (the checksum cannot match)."""
        self._boards.set_board_fault(address, "garbled", on)

    def set_wrong_address(self, address: int, on: bool = True) -> None:
        """The board answers claiming another address."""
        self._boards.set_board_fault(address, "wrong_address", on)

    def set_chatter(self, address: int, channel: int, on: bool = True) -> None:
        """The feedback bit of that channel reads at random on every status read."""
        self._boards.set_lock_fault(address, channel, "chatter", on)

    def set_short_reply(self, address: int, on: bool = True) -> None:
        """The board's replies are cut off halfway."""
        self._boards.set_board_fault(address, "short_reply", on)


def describe(emulator: BoardEmulator) -> str:
    """One line for the command line: family, boards, wiring and where it serves."""
    try:
        where = emulator.url
    except RuntimeError:
        where = "(not serving yet)"
    boards = ",".join(str(a) for a in emulator.boards)
    return (
        f"emulating {emulator.family} boards {boards} ({emulator.channels} channels, "
        f"{emulator.feedback.value}, {emulator.baud} baud) on {where}"
    )
