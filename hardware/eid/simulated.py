"""A scripted eID reader for the demo and fast tests: real card protocol, no PC/SC.

``SimulatedReader.insert(files)`` puts an in-memory BELPIC card (``belpic.BelpicCard``)
in a pretend reader and reads it with the real ``CardSession`` and ``read_card``, so the
APDU layer, parsing, verification and the certificate cache all run exactly as with a
real reader. Events are delivered on the simulator's own thread, like ``PcscReader``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

from cryptography import x509

from hardware.eid import belpic
from hardware.eid.apdu import CardSession, Transmit
from hardware.eid.base import CardRemoved, EidEvent, ReaderError, ReaderErrorKind, Subscriber
from hardware.eid.cardfiles import CardFiles
from hardware.eid.cardread import CardReadError, CertificateCache, read_card
from hardware.errors import HardwareError
from hardware.events import Subscribers

log = logging.getLogger(__name__)

DEFAULT_NAME = "Simulated eID reader 00 00"


def card_transmit(card: belpic.BelpicCard) -> Transmit:
    """A ``Transmit`` over ``card`` that reports a pulled or mute card as a reader would."""

    def transmit(command: bytes) -> tuple[bytes, int]:
        try:
            return card.transmit(command)
        except belpic.CardGone:
            raise CardReadError(
                ReaderErrorKind.CARD_REMOVED, "card removed during the read"
            ) from None
        except belpic.CardMute:
            raise CardReadError(
                ReaderErrorKind.MUTE_CARD, "the card does not answer (mute)"
            ) from None

    return transmit


class SimulatedReader:
    """A ``CardReader`` with one pretend reader; ``insert``/``remove``/``fail`` script it."""

    def __init__(
        self,
        *,
        name: str = DEFAULT_NAME,
        trusted_roots: Sequence[x509.Certificate] = (),
        read_photo: bool = False,
        cert_cache: CertificateCache | None = None,
    ) -> None:
        self.name = name
        self._trusted_roots = tuple(trusted_roots)
        self._read_photo = read_photo
        self._cache = cert_cache if cert_cache is not None else CertificateCache()
        self._lock = threading.Lock()
        self._subscribers: Subscribers[EidEvent] = Subscribers("simulated eID reader")
        self._commands: queue.Queue[Callable[[], None]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._card_in = False  # only the worker thread touches this

    # -- the CardReader protocol -----------------------------------------------------------

    def start(self) -> None:
        """Start delivering events (scripted actions before this wait for it)."""
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="eid-sim", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread; pending actions are dropped; safe to call twice."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def readers(self) -> list[str]:
        """The one simulated reader."""
        return [self.name]

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` on the simulator thread for every event; returns unsubscribe."""
        return self._subscribers.subscribe(callback)

    # -- scripting (any thread) ------------------------------------------------------------

    def insert(self, files: CardFiles, *, faults: belpic.CardFaults | None = None) -> None:
        """Insert a card with ``files`` (and ``faults``): it is read and reported."""
        self._commands.put(lambda: self._insert(files, faults))

    def remove(self) -> None:
        """Pull the card out: ``CardRemoved`` (nothing when no card is in)."""
        self._commands.put(self._remove)

    def fail(self, kind: ReaderErrorKind, message: str) -> None:
        """Report a reader problem as the real reader would."""
        self._commands.put(lambda: self._fail(kind, message))

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every scripted action so far was delivered; False on timeout."""
        done = threading.Event()
        self._commands.put(done.set)
        return done.wait(timeout)

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                command = self._commands.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                command()
            except Exception:  # a scripting mistake must not kill the reader thread
                log.exception("simulated eID reader action failed")

    def _emit(self, event: EidEvent) -> None:
        self._subscribers.publish(event)

    def _fail(self, kind: ReaderErrorKind, message: str) -> None:
        log.warning("eID reader %s: %s (%s)", self.name, message, kind.value)
        self._emit(ReaderError(reader=self.name, kind=kind, message=message))

    def _insert(self, files: CardFiles, faults: belpic.CardFaults | None) -> None:
        if self._card_in:
            self._remove()  # a new card implies the old one left
        self._card_in = True
        card = belpic.BelpicCard(files, faults=faults)
        try:
            event = read_card(
                CardSession(card_transmit(card)),
                card.atr,
                trusted_roots=self._trusted_roots,
                read_photo=self._read_photo,
                cert_cache=self._cache,
                reader=self.name,
            )
        except CardReadError as exc:
            if exc.kind is ReaderErrorKind.CARD_REMOVED:
                self._card_in = False  # it is out: no CardRemoved follows
            self._fail(exc.kind, str(exc))
            return
        except HardwareError as exc:
            self._fail(ReaderErrorKind.READ_FAILED, f"card read failed: {exc}")
            return
        log.info(
            "eID card read in %s: card %s, %s, %d APDUs",
            self.name,
            event.identity.card_number,
            event.verification.status.value,
            event.timing.apdus,
        )
        self._emit(event)

    def _remove(self) -> None:
        if not self._card_in:
            return
        self._card_in = False
        log.info("eID card removed from %s", self.name)
        self._emit(CardRemoved(reader=self.name))
