"""One RS485 bus: a serial port shared by one or more lock boards, one request at a time.

The bus knows frames and addresses, not doors. It enforces the rules that keep a
half-duplex multi-drop bus healthy (one request in flight, a quiet gap between
exchanges, stale input flushed, own echo dropped, replies from other boards ignored)
and survives its adapter: an unplugged USB adapter marks the bus closed and it is
re-opened lazily with exponential back-off, failing fast meanwhile so that a poller is
never held up by a dead bus. Every pyserial/OS error leaves this module translated into
``hardware.errors``.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable

import serial

try:
    from termios import error as _TermiosError  # pyserial lets termios errors through
except ImportError:  # not POSIX
    _TermiosError = OSError  # type: ignore[misc,assignment]

from hardware.errors import (
    DeviceBusy,
    DeviceTimeout,
    DeviceUnavailable,
    HardwareError,
    ProtocolError,
)
from hardware.locker.codecs.base import BoardStatus, Codec, PulseTimeReply, Reply, UnlockAck
from hardware.locker.layout import BusSpec

log = logging.getLogger(__name__)

_IO_ERRORS = (serial.SerialException, OSError, _TermiosError)

OpenPort = Callable[..., serial.SerialBase]
ReplyKind = type[BoardStatus] | type[UnlockAck] | type[PulseTimeReply]

_FIRST_BACKOFF_S = 0.5
_STALE_AFTER = 5  # timeouts in a row before the port is re-opened (stale connection)
_STALE_AFTER_MAX = 320  # a board that is simply off must not make us re-open forever
_WRITE_TIMEOUT_S = 1.0
_MISSING_ERRNOS = {errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.EIO}
_NETWORK_SCHEMES = {"socket", "rfc2217"}
_NETWORK_SILENCE_S = 0.1
_ECHO_PENDING, _ECHO_STRIPPED, _ECHO_NONE = 0, 1, 2  # did the reply start with our frame?


def _hex(data: bytes) -> str:
    return data.hex(" ").upper() if data else "nothing"


def default_open_port(url: str, **kwargs: object) -> serial.SerialBase:
    """Open ``url`` with pyserial (device path or ``socket://``/``spy://`` URL)."""
    return serial.serial_for_url(url, **kwargs)


class SerialBus:
    """One RS485 bus with its boards; ``request`` exchanges one frame with one board.

    Thread-safe: callers (the poller, an ``open()`` in progress) queue on a lock, so
    exactly one request is on the wire at a time; the wait for a turn is bounded.
    """

    def __init__(self, spec: BusSpec, codec: Codec, *, open_port: OpenPort | None = None) -> None:
        self.spec = spec
        self.codec = codec
        self._open_port = open_port or default_open_port
        self._lock = threading.Lock()  # one request in flight; guards everything below
        self._port: serial.SerialBase | None = None
        self._wanted = False  # open() called and close() not yet
        self._last_end = 0.0  # monotonic end of the previous exchange (for the gap)
        self._backoff_s = 0.0
        self._retry_at = 0.0  # no re-open attempt before this (monotonic)
        self._down_reason = ""
        self._timeouts = 0  # exchanges in a row that got nothing at all
        self._stale_after = _STALE_AFTER
        self._echo_seen = False  # this adapter echoes what we send (learnt on the wire)
        # Over TCP a pause between packets is not line silence (Nagle, delayed ACKs, a
        # serial server's packing time): frames of unknown length need a longer quiet.
        network = spec.port.split("://", 1)[0].lower() in _NETWORK_SCHEMES
        self._silence_s = max(spec.silence_s, _NETWORK_SILENCE_S) if network else spec.silence_s
        # Read in small slices so that line silence and the deadline are noticed promptly.
        self._slice_s = max(0.002, min(0.01, spec.silence_s / 4))

    # -- life cycle ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The bus name from config."""
        return self.spec.name

    @property
    def is_open(self) -> bool:
        """True while the port is open (False while backing off after a failure)."""
        return self._port is not None

    def open(self) -> None:
        """Open the port now; DeviceBusy when another process holds it, DeviceUnavailable
        when it is not there (the bus then keeps retrying lazily with back-off)."""
        with self._turn(self._lock_bound()):
            self._wanted = True
            if self._port is None:
                self._open_locked(fail_fast=False)

    def close(self) -> None:
        """Close the port; requests fail with DeviceUnavailable until ``open()``. Idempotent."""
        got = self._lock.acquire(timeout=self._lock_bound())
        try:
            self._wanted = False
            self._close_port()
        finally:
            if got:
                self._lock.release()

    # -- the exchange ----------------------------------------------------------------------

    def request(
        self,
        frame: bytes,
        *,
        address: int,
        want_reply: bool = True,
        timeout_s: float | None = None,
        expect: ReplyKind | None = None,
    ) -> Reply | None:
        """Send ``frame`` to board ``address`` and return its reply.

        ``expect`` discards replies of another kind (a late unlock ack is not a status).
        ``want_reply=False`` waits only briefly for an optional ack and returns it or None;
        the frame going out is still an error when it cannot. Raises DeviceUnavailable
        (port gone, backing off), DeviceTimeout (no answer in ``timeout_s``) or
        ProtocolError (garbled, or only other boards answered).
        """
        timeout = self.spec.reply_timeout_s if timeout_s is None else timeout_s
        with self._turn(self._lock_bound(timeout)):
            port = self._ensure_open()
            try:
                return self._exchange(port, frame, address, want_reply, timeout, expect)
            except _IO_ERRORS as exc:
                if isinstance(exc, serial.SerialTimeoutException):
                    raise DeviceTimeout(f"{self.spec.port}: write timed out") from None
                self._lost(exc)
                raise DeviceUnavailable(f"{self.spec.port}: adapter lost ({exc})") from None
            finally:
                self._last_end = time.monotonic()

    def _exchange(
        self,
        port: serial.SerialBase,
        frame: bytes,
        address: int,
        want_reply: bool,
        timeout: float,
        expect: ReplyKind | None,
    ) -> Reply | None:
        gap = self._last_end + self.spec.frame_gap_s - time.monotonic()
        if gap > 0:
            time.sleep(gap)  # boards need bus silence to see a frame start
        port.reset_input_buffer()  # stale or half frames must not pass for the reply
        port.write(frame)
        wire_s = len(frame) * 10 / self.spec.baud
        if not want_reply:
            # Boards may not ack an unlock at all: listen briefly, never fail on silence.
            wait = min(timeout, max(2 * self.spec.silence_s, 0.03)) + wire_s
            try:
                return self._collect(port, frame, address, wait, expect, want_reply)
            except (DeviceTimeout, ProtocolError):
                return None
        try:
            reply = self._collect(port, frame, address, timeout + wire_s, expect, want_reply)
        except DeviceTimeout:
            self._count_timeout()
            raise
        self._timeouts, self._stale_after = 0, _STALE_AFTER
        return reply

    def _collect(
        self,
        port: serial.SerialBase,
        frame: bytes,
        address: int,
        wait_s: float,
        expect: ReplyKind | None,
        want_reply: bool,
    ) -> Reply:
        """Read until a valid reply from ``address`` or the deadline."""
        codec, silence = self.codec, self._silence_s
        deadline = time.monotonic() + wait_s
        buf = bytearray()
        last_rx = 0.0
        echo_state = _ECHO_PENDING
        echo: Reply | None = None  # echo-identical bytes that decode as a reply (8a)
        after_echo = False  # bytes came after the echo-identical ones
        problem: HardwareError | None = None
        while True:
            chunk = port.read(max(1, port.in_waiting))
            now = time.monotonic()
            if chunk:
                buf += chunk
                last_rx = now
                after_echo = after_echo or echo_state == _ECHO_STRIPPED
            quiet = now - last_rx >= silence
            if echo_state == _ECHO_PENDING and buf:
                if buf.startswith(frame):
                    del buf[: len(frame)]
                    echo_state = _ECHO_STRIPPED
                    if not buf:
                        echo = self._judge(frame, address, expect, None)[0]
                elif frame.startswith(buf) and not quiet and now < deadline:
                    continue  # maybe our own echo, still arriving
                else:
                    echo_state = _ECHO_NONE
            while buf:
                found, used = codec.split_frame(bytes(buf))
                if found is None and used == 0:
                    if not quiet:
                        break  # a frame may still be arriving
                    found, used = bytes(buf), len(buf)  # line silence ends an odd frame
                dropped = bytes(buf[:used])
                del buf[:used]
                if found is None:
                    problem = problem or ProtocolError(
                        f"{self.spec.port}: garbled reply from board {address}: {_hex(dropped)}"
                    )
                    continue
                reply, problem = self._judge(found, address, expect, problem)
                if reply is not None:
                    if echo_state == _ECHO_STRIPPED and not self._echo_seen:
                        log.info("%s: the adapter echoes what we send; dropping it", self.spec.port)
                        self._echo_seen = True
                    return reply
            if echo is not None and quiet and not after_echo and not self._echo_seen:
                # Only the echo-identical bytes came and this adapter is not known to echo:
                # with family 8a that is the board's genuine one-byte status (or ack).
                return echo
            if now >= deadline:
                if echo is not None and not want_reply:
                    return echo
                raise problem or DeviceTimeout(
                    f"{self.spec.port}: board {address} did not answer within "
                    f"{wait_s * 1000:.0f} ms"
                )

    def _judge(
        self,
        found: bytes,
        address: int,
        expect: ReplyKind | None,
        problem: HardwareError | None,
    ) -> tuple[Reply | None, HardwareError | None]:
        """Decode one frame: the reply if it is ours, else the most telling problem."""
        try:
            reply = self.codec.decode_reply(found)
        except ProtocolError as exc:  # includes ChecksumError
            return None, problem or type(exc)(f"{self.spec.port}: {exc}: {_hex(found)}")
        if reply.address != address:
            log.debug("%s: dropped a reply from board %s", self.spec.port, reply.address)
            # A wrong address is more telling than a garbled byte: it replaces that.
            if problem is None or not str(problem).startswith(f"{self.spec.port}: reply from"):
                problem = ProtocolError(
                    f"{self.spec.port}: reply from board {reply.address}, expected {address}"
                )
            return None, problem
        if expect is not None and not isinstance(reply, expect):
            return None, problem  # e.g. a late unlock ack while we wait for a status
        return reply, None

    # -- connection management -------------------------------------------------------------

    def _turn(self, bound: float) -> _Turn:
        return _Turn(self._lock, bound, self.spec.port)

    def _lock_bound(self, timeout: float | None = None) -> float:
        """How long to queue for the bus: a few exchanges' worth."""
        per = (timeout or self.spec.reply_timeout_s) + self.spec.frame_gap_s + 0.05
        return max(1.0, 4 * per)

    def _ensure_open(self) -> serial.SerialBase:
        if self._port is not None:
            return self._port
        if not self._wanted:
            raise DeviceUnavailable(f"{self.spec.port}: bus {self.spec.name} is not open")
        return self._open_locked(fail_fast=True)

    def _open_locked(self, *, fail_fast: bool) -> serial.SerialBase:
        now = time.monotonic()
        if fail_fast and now < self._retry_at:
            raise DeviceUnavailable(
                f"{self.spec.port}: unavailable ({self._down_reason}); "
                f"next attempt in {self._retry_at - now:.1f} s"
            )
        try:
            port = self._open_port(self.spec.port, **self._port_kwargs())
            if not port.is_open:
                port.open()
        except (*_IO_ERRORS, ValueError) as exc:
            error = self._open_error(exc)
            self._schedule_retry(str(error).removeprefix(f"{self.spec.port}: "))
            log.debug("%s: open failed: %s", self.spec.port, error)
            raise error from None
        if self._backoff_s:
            log.info("%s: bus %s reconnected", self.spec.port, self.spec.name)
        self._port = port
        self._backoff_s, self._retry_at, self._down_reason = 0.0, 0.0, ""
        self._timeouts = 0
        return port

    def _port_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {
            "baudrate": self.spec.baud,
            "timeout": self._slice_s,
            "write_timeout": _WRITE_TIMEOUT_S,
        }
        if "://" not in self.spec.port:
            kwargs["exclusive"] = self.spec.exclusive  # flock: only real POSIX ports take it
        return kwargs

    def _open_error(self, exc: BaseException) -> DeviceUnavailable:
        port = self.spec.port
        code = getattr(exc, "errno", None)
        if isinstance(exc, _TermiosError) and exc.args and isinstance(exc.args[0], int):
            code = exc.args[0]
        text = str(exc)
        if "exclusively lock" in text or code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
            return DeviceBusy(f"{port}: port busy, another process holds it (exclusive lock)")
        if code == errno.EACCES:
            return DeviceUnavailable(f"{port}: permission denied (is the user in 'dialout'?)")
        if code in _MISSING_ERRNOS:
            return DeviceUnavailable(f"{port}: no such port (adapter unplugged?)")
        if isinstance(exc, ValueError):
            return DeviceUnavailable(f"{port}: invalid port: {text}")
        return DeviceUnavailable(f"{port}: cannot open: {text}")

    def _schedule_retry(self, reason: str) -> None:
        self._backoff_s = min(self.spec.reconnect_max_s, max(_FIRST_BACKOFF_S, self._backoff_s * 2))
        self._retry_at = time.monotonic() + self._backoff_s
        self._down_reason = reason

    def _lost(self, exc: BaseException) -> None:
        """The adapter vanished mid-exchange: close, and re-open later with back-off."""
        log.warning("%s: bus %s lost its port: %s", self.spec.port, self.spec.name, exc)
        self._close_port()
        self._schedule_retry(f"adapter lost: {exc}")

    def _count_timeout(self) -> None:
        self._timeouts += 1
        if self._timeouts >= self._stale_after:
            # A connection can go stale (USB adapters after tens of minutes): re-open it.
            # Doubling the threshold keeps a board that is simply off from re-opening often.
            log.info(
                "%s: %d timeouts in a row, re-opening the port", self.spec.port, self._timeouts
            )
            self._close_port()
            self._timeouts = 0
            self._stale_after = min(_STALE_AFTER_MAX, self._stale_after * 2)

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except _IO_ERRORS as exc:
                log.debug("%s: close failed: %s", self.spec.port, exc)


class _Turn:
    """Context manager: hold the bus lock, waiting at most ``bound`` seconds for it."""

    def __init__(self, lock: threading.Lock, bound: float, port: str) -> None:
        self._lock, self._bound, self._port = lock, bound, port

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self._bound):
            raise DeviceTimeout(f"{self._port}: bus busy, no turn within {self._bound:.1f} s")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
