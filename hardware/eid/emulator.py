"""A BELPIC card in the virtual reader of Debian's ``vsmartcard-vpcd``, for tests and demos.

vpcd is a pcscd reader driver that listens on TCP (127.0.0.1:35963 for its first reader
by default). The *card* side connects to it: while the connection stands, the reader has
a card. Every message either way is a 2-byte big-endian length and a payload; a 1-byte
payload from vpcd is a control code (0 power off, 1 power on, 2 reset, 4 "send your
ATR"), anything longer is an APDU that the card answers with data + SW1 SW2.

``CardEmulator.insert(card)`` connects (a card goes in), ``remove()`` closes the
connection (the card comes out), ``stop()`` ends it all. A ``BelpicCard`` fault decides
the rest: ``remove_after_apdus`` closes the connection at that APDU (pulled mid-read),
``mute`` never answers anything (vpcd has no timeout, so pcscd shows the reader empty
until the card is removed). Logs say what happens, never what the card holds.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

from hardware.eid.belpic import BelpicCard, CardGone, CardMute
from hardware.errors import DeviceUnavailable

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963  # vpcd's first reader ("Virtual PCD 00 00"); the second is +1

_POLL_S = 0.05  # the serving thread notices remove()/stop() this often
_JOIN_S = 2.0
_SEND_TIMEOUT_S = 2.0
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 0.5
# pcscd polls vpcd's slot every 0.4 s. A card out and back in between two polls looks to
# pcscd as if it never left, and a card that left during a failed transmit then stays
# "empty" for good: keep a card out for longer than one poll before the next goes in.
MIN_OUT_S = 0.5

CONTROL_OFF, CONTROL_ON, CONTROL_RESET, CONTROL_ATR = 0, 1, 2, 4


class _Pulled(Exception):
    """The card is pulled (a fault): the connection ends."""


class _VpcdGone(_Pulled):
    """vpcd closed the connection or it failed (pcscd stopped, for instance)."""


Reconnect = Callable[[threading.Event], "socket.socket | None"]


class _Connection:
    """One inserted card: its socket and the thread answering vpcd over it.

    With ``reconnect`` set, a connection that vpcd drops is made again (the card stays
    in across a pcscd restart) until ``close()``; a fault pull still ends it.
    """

    def __init__(
        self, sock: socket.socket, card: BelpicCard, name: str, reconnect: Reconnect | None
    ) -> None:
        self.sock = sock
        self.card = card
        self.reconnect = reconnect
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.buffer = b""
        self.closed_at: float | None = None  # monotonic time the card came out

    def _serve(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    self._serve_socket()
                except _VpcdGone as exc:
                    if self.reconnect is None or self.stop.is_set():
                        raise
                    logger.info("virtual card out: %s; waiting for vpcd to come back", exc)
                    self.sock.close()
                    sock = self.reconnect(self.stop)
                    if sock is None:
                        return
                    self.sock, self.buffer = sock, b""
                    self.card.reset()
                    logger.info("virtual card back in")
        except _Pulled as exc:
            logger.info("virtual card out: %s", exc)
        except Exception:  # a bug here must not pass silently, nor kill the test process
            logger.exception("card emulator failed; the card is out")
        finally:
            self.sock.close()
            self.closed_at = time.monotonic()

    def _serve_socket(self) -> None:
        while not self.stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], _POLL_S)
            if not ready:
                continue
            try:
                chunk = self.sock.recv(4096)
            except OSError as exc:
                raise _VpcdGone(f"vpcd connection failed: {exc}") from exc
            if not chunk:
                raise _VpcdGone("vpcd closed the connection")
            self._quick_ack()
            self.buffer += chunk
            while len(self.buffer) >= 2:
                size = int.from_bytes(self.buffer[:2], "big")
                if len(self.buffer) < 2 + size:
                    break
                payload, self.buffer = self.buffer[2 : 2 + size], self.buffer[2 + size :]
                self._handle(payload)

    def _quick_ack(self) -> None:
        # Measured with vpcd 3.3: without a quick ACK every APDU round trip through vpcd
        # waits out the ~40 ms delayed-ACK timer (a 14-APDU read took 1.1 s, now 0.1 s).
        # Linux clears TCP_QUICKACK after use, so it is set again after every read
        # (where the option does not exist, this does nothing).
        quickack = getattr(socket, "TCP_QUICKACK", None)
        if quickack is not None:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)

    def _handle(self, payload: bytes) -> None:
        card = self.card
        if len(payload) == 1:
            code = payload[0]
            if code == CONTROL_ATR:
                if card.faults.mute:
                    return  # a dead chip gives no ATR either
                self._send(card.atr)
            elif code in (CONTROL_OFF, CONTROL_ON, CONTROL_RESET):
                card.reset()
            else:
                logger.debug("unknown vpcd control code %d ignored", code)
            return
        try:
            answer = card.transmit_raw(payload)
        except CardGone as exc:
            raise _Pulled(f"card pulled after {card.apdu_count} APDUs") from exc
        except CardMute:
            return  # no answer at all; vpcd waits (it has no timeout) until the card is out
        self._send(answer)

    def _send(self, payload: bytes) -> None:
        try:
            self.sock.sendall(len(payload).to_bytes(2, "big") + payload)
        except OSError as exc:
            raise _VpcdGone(f"vpcd connection failed: {exc}") from exc

    def close(self) -> float:
        """End the connection; returns the monotonic time the card came out."""
        self.stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(_JOIN_S)
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.closed_at is None:
            self.closed_at = time.monotonic()
        return self.closed_at


class CardEmulator:
    """Puts ``BelpicCard``s into vpcd's virtual reader at ``host:port``; thread-safe.

    ``keep_inserted=True`` (the standalone ``eid emulate``): when vpcd drops the card
    because pcscd stopped, connect again as soon as it is back; ``inserted`` stays True
    meanwhile. A fault pull (``remove_after_apdus``) still takes the card out for good.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        connect_timeout_s: float = 5.0,
        min_out_s: float = MIN_OUT_S,
        keep_inserted: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.min_out_s = min_out_s
        self.keep_inserted = keep_inserted
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._out_since: float | None = None  # when the last card came out

    def __repr__(self) -> str:
        return f"CardEmulator({self.host}:{self.port}, inserted={self.inserted})"

    @property
    def inserted(self) -> bool:
        """True while a card is connected to vpcd (and not pulled by a fault)."""
        conn = self._conn
        return conn is not None and conn.thread.is_alive()

    @property
    def card(self) -> BelpicCard | None:
        """The card in the reader, if any."""
        conn = self._conn
        return conn.card if conn is not None and conn.thread.is_alive() else None

    def start(self) -> None:
        """Nothing to open before ``insert()`` (vpcd listens, the card connects): a no-op
        kept so callers can treat it like the lock-board emulator."""

    def insert(self, card: BelpicCard) -> None:
        """Connect ``card`` to vpcd (the card goes in); a card already in comes out first.

        Waits until the last card has been out for ``min_out_s`` (so pcscd sees it go),
        retries with a short back-off while vpcd does not listen yet (pcscd starting);
        raises ``DeviceUnavailable`` after ``connect_timeout_s``.
        """
        self.remove()
        if self._out_since is not None:
            wait = self._out_since + self.min_out_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        sock = self._connect()
        reconnect = self._reconnect if self.keep_inserted else None
        conn = _Connection(sock, card, f"eid-emulator-{self.port}", reconnect)
        with self._lock:
            self._conn = conn
        card.reset()
        conn.thread.start()
        logger.info("virtual card in (vpcd %s:%d)", self.host, self.port)

    def _connect(
        self, timeout_s: float | None = None, stop: threading.Event | None = None
    ) -> socket.socket:
        deadline = time.monotonic() + (self.connect_timeout_s if timeout_s is None else timeout_s)
        backoff = _BACKOFF_FIRST_S
        while True:
            left = deadline - time.monotonic()
            try:
                sock = socket.create_connection(
                    (self.host, self.port), timeout=max(0.05, min(left, 1.0))
                )
            except OSError as exc:
                if time.monotonic() + backoff > deadline:
                    raise DeviceUnavailable(
                        f"no vpcd virtual reader listening on {self.host}:{self.port} "
                        f"({exc.strerror or exc}); is pcscd with vsmartcard-vpcd running?"
                    ) from None
                if stop is not None:
                    if stop.wait(backoff):
                        raise DeviceUnavailable("emulator stopped") from None
                else:
                    time.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            sock.settimeout(_SEND_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # answers go out whole
            return sock

    def _reconnect(self, stop: threading.Event) -> socket.socket | None:
        """Connect again after vpcd dropped us, until it listens or ``stop`` is set."""
        stop.wait(self.min_out_s)  # let pcscd see the card go
        while not stop.is_set():
            try:
                return self._connect(timeout_s=1.0, stop=stop)
            except DeviceUnavailable:
                continue  # vpcd still down (pcscd restarting): keep trying until stop()
        return None

    def remove(self) -> None:
        """Close the connection: vpcd reports the card as removed. Safe when no card is in."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            self._out_since = conn.close()
            logger.info("virtual card removed (vpcd %s:%d)", self.host, self.port)

    def stop(self) -> None:
        """Remove the card and stop; safe to call twice."""
        self.remove()

    def __enter__(self) -> CardEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
