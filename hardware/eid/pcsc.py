"""The PC/SC eID reader: one worker thread over pyscard's ``scard`` layer.

``PcscReader`` watches the PC/SC service, its readers and their cards with
``SCardGetStatusChange`` (short timeouts, so ``close()`` is honoured within about half a
second), reads each inserted card inside a PC/SC transaction with ``read_card`` and
reports ``CardInserted`` / ``CardRemoved`` / ``ReaderError`` to its subscribers on that
thread. It survives pcscd restarts and readers that come and go. Every pyscard error
is translated into a ``ReaderErrorKind`` (or ``hardware.errors``) here, at the boundary.
Log lines name the reader and at most the card number: never the national number.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from hardware.eid.apdu import CardSession
from hardware.eid.base import (
    CardInserted,
    CardRemoved,
    EidEvent,
    ReaderError,
    ReaderErrorKind,
    Subscriber,
)
from hardware.eid.cardread import CardReadError, CertificateCache, read_card
from hardware.errors import DeviceUnavailable
from hardware.events import Subscribers

log = logging.getLogger(__name__)

PNP_READER = "\\\\?PnP?\\Notification"  # pcsc-lite's pseudo-reader: readers come and go

# PC/SC result codes (unsigned); pyscard hands them out signed or unsigned.
SCARD_S_SUCCESS = 0
SCARD_F_INTERNAL_ERROR = 0x80100001
SCARD_E_CANCELLED = 0x80100002
SCARD_E_INVALID_HANDLE = 0x80100003
SCARD_E_UNKNOWN_READER = 0x80100009
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_SHARING_VIOLATION = 0x8010000B
SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_E_PROTO_MISMATCH = 0x8010000F
SCARD_F_COMM_ERROR = 0x80100013  # "RPC transport error": the socket to pcscd broke
SCARD_E_READER_UNAVAILABLE = 0x80100017
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_SERVICE_STOPPED = 0x8010001E
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_W_UNRESPONSIVE_CARD = 0x80100066
SCARD_W_UNPOWERED_CARD = 0x80100067
SCARD_W_RESET_CARD = 0x80100068
SCARD_W_REMOVED_CARD = 0x80100069

# pcscd went away (or restarted): the context is dead, a new one is needed.
_SERVICE_GONE = {SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED, SCARD_E_INVALID_HANDLE}
_SERVICE_GONE.add(SCARD_F_COMM_ERROR)
_KIND_OF_CODE = {
    SCARD_E_NO_SERVICE: ReaderErrorKind.PCSCD_UNAVAILABLE,
    SCARD_E_SERVICE_STOPPED: ReaderErrorKind.PCSCD_UNAVAILABLE,
    SCARD_E_NO_READERS_AVAILABLE: ReaderErrorKind.NO_READER,
    SCARD_E_UNKNOWN_READER: ReaderErrorKind.READER_REMOVED,
    SCARD_E_READER_UNAVAILABLE: ReaderErrorKind.READER_REMOVED,
    SCARD_W_REMOVED_CARD: ReaderErrorKind.CARD_REMOVED,
    SCARD_E_NO_SMARTCARD: ReaderErrorKind.CARD_REMOVED,
    SCARD_W_UNRESPONSIVE_CARD: ReaderErrorKind.MUTE_CARD,
    SCARD_W_UNPOWERED_CARD: ReaderErrorKind.MUTE_CARD,
    SCARD_E_PROTO_MISMATCH: ReaderErrorKind.NOT_AN_EID,  # a T=1-only card is no eID
}


def _scard() -> Any:
    """pyscard's low-level module, imported on first use (nothing happens at import)."""
    try:
        import smartcard.scard as scard
    except ImportError as exc:  # pyscard or libpcsclite missing
        raise DeviceUnavailable(f"pyscard is not usable: {exc}") from None
    return scard


def _code(hresult: int) -> int:
    return int(hresult) & 0xFFFFFFFF


def _describe(hresult: int) -> str:
    """``"Service not available (0x8010001D)"``: pyscard's text plus the code."""
    code = _code(hresult)
    try:
        text = str(_scard().SCardGetErrorMessage(code)).strip().rstrip(".")
    except Exception:  # an unknown code must not break error reporting
        text = "PC/SC error"
    return f"{text} (0x{code:08X})"


def _error(hresult: int, what: str, reader: str | None = None) -> CardReadError:
    """A ``CardReadError`` for a failed PC/SC call."""
    kind = _KIND_OF_CODE.get(_code(hresult), ReaderErrorKind.READ_FAILED)
    where = f" in {reader}" if reader else ""
    return CardReadError(kind, f"{what}{where} failed: {_describe(hresult)}")


def list_readers() -> list[str]:
    """The PC/SC readers present now; raises ``DeviceUnavailable`` when pcscd is not running."""
    scard = _scard()
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if _code(hresult) != SCARD_S_SUCCESS:
        raise DeviceUnavailable(
            f"PC/SC service not available ({_describe(hresult)}): is pcscd running? "
            "(systemctl start pcscd)"
        )
    try:
        hresult, names = scard.SCardListReaders(context, [])
        if _code(hresult) == SCARD_E_NO_READERS_AVAILABLE:
            return []
        if _code(hresult) != SCARD_S_SUCCESS:
            raise DeviceUnavailable(f"cannot list PC/SC readers: {_describe(hresult)}")
        return list(names)
    finally:
        scard.SCardReleaseContext(context)


@dataclass
class _Slot:
    """What the worker knows of one reader."""

    state: int = 0  # the last event state, fed back as the current state (0 = unaware)
    present: bool = False  # a card is in and has been handled (read, or failed)
    counter: int = -1  # pcsc-lite's card event counter (upper 16 bits of the state)
    announce_removal: bool = True  # False after a CARD_REMOVED error: said once already


class _ServiceGone(Exception):
    """pcscd went away under the worker (internal: the context must be rebuilt)."""


class PcscReader:
    """A ``CardReader`` over pcscd; ``start()`` returns at once, events come on a thread.

    Per card: ``CardInserted`` or one ``ReaderError``, then ``CardRemoved`` when it leaves
    (not after a CARD_REMOVED error: that already said so). PCSCD_UNAVAILABLE and
    NO_READER are reported once per outage; the worker retries with a bounded back-off.
    """

    def __init__(
        self,
        *,
        reader_name: str | None = None,
        trusted_roots: Sequence[x509.Certificate] = (),
        read_photo: bool = False,
        poll_timeout_s: float = 0.5,
        connect_timeout_s: float = 3.0,
        retry_max_s: float = 2.0,
        removal_wait_s: float = 1.5,
        cert_cache: CertificateCache | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader_name = reader_name
        self._trusted_roots = tuple(trusted_roots)
        self._read_photo = read_photo
        self._poll_ms = max(1, int(poll_timeout_s * 1000))
        self._connect_timeout_s = connect_timeout_s
        self._retry_max_s = retry_max_s
        self._removal_wait_s = removal_wait_s
        self._cache = cert_cache if cert_cache is not None else CertificateCache()
        self._clock = clock
        self._lock = threading.Lock()
        self._subscribers: Subscribers[EidEvent] = Subscribers("eID reader")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context: Any = None  # guarded by _lock: close() cancels a wait on it

    # -- the CardReader protocol -----------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread (a second call does nothing)."""
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="eid-pcsc", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the worker: it leaves its wait within ``poll_timeout_s``; safe to call twice."""
        self._stop.set()
        with self._lock:
            thread, context = self._thread, self._context
            self._thread = None
        if context is not None:
            # Wake a pending SCardGetStatusChange now; if pcscd is gone, the timeout ends it.
            with contextlib.suppress(Exception):
                _scard().SCardCancel(context)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._poll_ms / 1000 + 5.0)
            if thread.is_alive():
                log.warning("eID reader thread did not stop in time")

    def readers(self) -> list[str]:
        """The readers present now (all of them, not only the one watched); [] without pcscd."""
        try:
            return list_readers()
        except DeviceUnavailable:
            return []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` on the worker thread for every event; returns unsubscribe."""
        return self._subscribers.subscribe(callback)

    # -- events ----------------------------------------------------------------------------

    def _emit(self, event: EidEvent) -> None:
        self._subscribers.publish(event)

    def _fail(self, reader: str | None, kind: ReaderErrorKind, message: str) -> None:
        log.warning("eID reader %s: %s (%s)", reader or "-", message, kind.value)
        self._emit(ReaderError(reader=reader, kind=kind, message=message))

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            scard = _scard()
        except DeviceUnavailable as exc:  # no pyscard / libpcsclite: nothing to retry
            self._fail(None, ReaderErrorKind.PCSCD_UNAVAILABLE, str(exc))
            return
        backoff = 0.25
        service_down = False
        while not self._stop.is_set():
            try:
                hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            except Exception as exc:  # pyscard raises on some library failures
                hresult, context = getattr(exc, "hresult", SCARD_E_NO_SERVICE), None
            if _code(hresult) != SCARD_S_SUCCESS:
                if not service_down:
                    service_down = True
                    self._fail(
                        None,
                        ReaderErrorKind.PCSCD_UNAVAILABLE,
                        f"PC/SC service not available: {_describe(hresult)}; retrying",
                    )
                backoff = min(backoff * 2, self._retry_max_s)
                self._stop.wait(backoff)
                continue
            if service_down:
                log.info("eID reader: PC/SC service is back")
            service_down, backoff = False, 0.25
            with self._lock:
                self._context = context
            try:
                self._watch(scard, context)
            except _ServiceGone as exc:
                service_down = True
                self._fail(None, ReaderErrorKind.PCSCD_UNAVAILABLE, f"PC/SC service lost: {exc}")
            except Exception:  # a bug must not kill the reader: log, pause, start over
                log.exception("eID reader loop failed; restarting it")
                self._stop.wait(1.0)
            finally:
                with self._lock:
                    self._context = None
                with contextlib.suppress(Exception):  # pcscd may already be gone
                    scard.SCardReleaseContext(context)

    def _watch(self, scard: Any, context: Any) -> None:
        """Follow readers and cards on ``context`` until closed; ``_ServiceGone`` ends it."""
        slots: dict[str, _Slot] = {}
        pnp_state = 0
        pnp = True
        no_reader_said = False
        while not self._stop.is_set():
            names = self._list(scard, context)
            for gone in [name for name in slots if name not in names]:
                del slots[gone]
                self._fail(gone, ReaderErrorKind.READER_REMOVED, "reader unplugged")
            for name in names:
                if name not in slots:
                    log.info("eID reader found: %s", name)
                    slots[name] = _Slot()
            if not names and not no_reader_said:
                no_reader_said = True
                self._fail(None, ReaderErrorKind.NO_READER, "no card reader connected")
            elif names:
                no_reader_said = False
            states: list[tuple[str, int]] = [(n, slots[n].state) for n in names]
            if pnp:
                states.append((PNP_READER, pnp_state))
            if not states:
                self._stop.wait(self._poll_ms / 1000)
                continue
            hresult, changes = scard.SCardGetStatusChange(context, self._poll_ms, states)
            code = _code(hresult)
            if code in (SCARD_E_TIMEOUT, SCARD_E_CANCELLED):
                continue
            if code in _SERVICE_GONE:
                raise _ServiceGone(_describe(hresult))
            if code in (SCARD_E_UNKNOWN_READER, SCARD_E_READER_UNAVAILABLE):
                continue  # the reader list changed under us: list again
            if code != SCARD_S_SUCCESS:
                log.warning("eID reader: waiting for cards failed: %s", _describe(hresult))
                self._stop.wait(self._poll_ms / 1000)
                continue
            for name, event_state, atr in changes:
                if name == PNP_READER:
                    if event_state & scard.SCARD_STATE_UNKNOWN:
                        pnp = False  # no PnP notifications here: the list is polled instead
                    pnp_state = event_state & ~scard.SCARD_STATE_CHANGED
                elif name in slots:
                    self._on_state(scard, context, name, slots[name], event_state, bytes(atr))

    def _list(self, scard: Any, context: Any) -> list[str]:
        hresult, names = scard.SCardListReaders(context, [])
        code = _code(hresult)
        if code == SCARD_E_NO_READERS_AVAILABLE:
            return []
        if code in _SERVICE_GONE:
            raise _ServiceGone(_describe(hresult))
        if code != SCARD_S_SUCCESS:
            log.warning("eID reader: cannot list readers: %s", _describe(hresult))
            return []
        wanted = self._reader_name
        return [n for n in names if not wanted or n == wanted or n.startswith(wanted)]

    def _on_state(
        self, scard: Any, context: Any, name: str, slot: _Slot, event_state: int, atr: bytes
    ) -> None:
        """React to the new state of reader ``name``: read a new card, report a removal."""
        slot.state = event_state & ~scard.SCARD_STATE_CHANGED
        counter = (event_state >> 16) & 0xFFFF
        if event_state & (scard.SCARD_STATE_UNAVAILABLE | scard.SCARD_STATE_IGNORE):
            return  # the reader is going away: the next listing reports it
        present = bool(event_state & scard.SCARD_STATE_PRESENT)
        swapped = present and slot.present and counter != slot.counter
        if slot.present and (not present or swapped):
            slot.present = False
            if slot.announce_removal:
                log.info("eID card removed from %s", name)
                self._emit(CardRemoved(reader=name))
        slot.counter = counter
        if not present or slot.present:
            return
        slot.present, slot.announce_removal = True, True
        if event_state & scard.SCARD_STATE_MUTE:
            self._fail(name, ReaderErrorKind.MUTE_CARD, "the card does not answer (mute)")
            return
        try:
            event = self._read(scard, context, name, atr)
        except CardReadError as exc:
            if exc.kind is ReaderErrorKind.PCSCD_UNAVAILABLE:
                raise _ServiceGone(str(exc)) from None
            if exc.kind is ReaderErrorKind.CARD_REMOVED:
                slot.announce_removal = False  # the error said it already
            self._fail(name, exc.kind, str(exc))
            return
        log.info(
            "eID card read in %s: card %s, %s, %d APDUs, %d bytes, %.0f ms",
            name,
            event.identity.card_number,
            event.verification.status.value,
            event.timing.apdus,
            event.timing.bytes_read,
            event.timing.ms,
        )
        self._emit(event)

    def _read(self, scard: Any, context: Any, name: str, atr: bytes) -> CardInserted:
        """Connect, read inside one transaction, disconnect; PC/SC failures classified."""
        card = self._connect(scard, context, name)
        try:
            hresult = scard.SCardBeginTransaction(card)
            if _code(hresult) != SCARD_S_SUCCESS:
                raise self._classify(scard, context, name, _error(hresult, "transaction", name))

            def transmit(command: bytes) -> tuple[bytes, int]:
                try:
                    hresult, response = scard.SCardTransmit(card, scard.SCARD_PCI_T0, list(command))
                except Exception as exc:  # smartcard.Exceptions.* carry an hresult
                    code = getattr(exc, "hresult", None)
                    code = code if isinstance(code, int) else SCARD_F_INTERNAL_ERROR
                    raise _error(code, "transmit", name) from None
                if _code(hresult) != SCARD_S_SUCCESS:
                    raise _error(hresult, "transmit", name)
                if len(response) < 2:
                    raise CardReadError(ReaderErrorKind.READ_FAILED, "card answer too short")
                return bytes(response[:-2]), (response[-2] << 8) | response[-1]

            try:
                return read_card(
                    CardSession(transmit),
                    atr,
                    trusted_roots=self._trusted_roots,
                    read_photo=self._read_photo,
                    cert_cache=self._cache,
                    reader=name,
                )
            except CardReadError as exc:
                raise self._classify(scard, context, name, exc) from None
            finally:
                scard.SCardEndTransaction(card, scard.SCARD_LEAVE_CARD)
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)

    def _connect(self, scard: Any, context: Any, name: str) -> Any:
        """``SCardConnect`` in T=0, retried while another program holds the card."""
        deadline = self._clock() + self._connect_timeout_s
        while True:
            hresult, card, _protocol = scard.SCardConnect(
                context, name, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0
            )
            code = _code(hresult)
            if code == SCARD_S_SUCCESS:
                return card
            busy = code in (SCARD_E_SHARING_VIOLATION, SCARD_W_RESET_CARD)
            if not busy or self._clock() >= deadline or self._stop.is_set():
                raise self._classify(scard, context, name, _error(hresult, "connect", name))
            self._stop.wait(0.1)

    def _classify(self, scard: Any, context: Any, name: str, exc: CardReadError) -> CardReadError:
        """A vague failure during a read is a removal when the card leaves right after."""
        if exc.kind is not ReaderErrorKind.READ_FAILED:
            return exc
        # pcscd notices a pulled card on its next poll: look (bounded) before deciding, so
        # that a pulled card is reported as such and not as a read failure.
        deadline = self._clock() + self._removal_wait_s
        while True:
            hresult, changes = scard.SCardGetStatusChange(
                context, 0, [(name, scard.SCARD_STATE_UNAWARE)]
            )
            if _code(hresult) != SCARD_S_SUCCESS or not changes:
                return exc
            if not changes[0][1] & scard.SCARD_STATE_PRESENT:
                return CardReadError(ReaderErrorKind.CARD_REMOVED, "card removed during the read")
            if self._clock() >= deadline or self._stop.wait(0.05):
                return exc
