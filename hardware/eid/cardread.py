"""One eID read over a ``CardSession``: the files the kiosk needs, parsed and verified.

``read_card`` is transport-neutral: the PC/SC reader (``pcsc.py``) and the simulated
reader (``simulated.py``) both hand it a ``CardSession`` and get a ``CardInserted`` back,
or a ``CardReadError`` whose ``kind`` says what an installer can do about it.

It reads only what identification needs: GET CARD DATA, identity, address, both
signatures and the RRN certificate (the photo only when asked). The RRN certificate is
the National Register's, the same on every card of a family, so a ``CertificateCache`` of
certificates that verified earlier cards is tried first: when one verifies this card's
signatures, the card's certificate file (~1-2 KB) is not read at all.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

from cryptography import x509

from hardware.eid import apdu
from hardware.eid.base import (
    CardInfo,
    CardInserted,
    ReaderErrorKind,
    ReadTiming,
    Verification,
    VerificationStatus,
)
from hardware.eid.cardfiles import CardFiles
from hardware.eid.identity import parse_address, parse_identity
from hardware.eid.verify import verify_files
from hardware.errors import CardDataError, HardwareError, ProtocolError

log = logging.getLogger(__name__)

# The first READ BINARY chunk of the certificate file: enough to tell RRN certificates
# apart (serial number, issuer, validity all sit in the first ~200 bytes of the DER).
CERT_PREFIX_LENGTH = 248

# Historical bytes every applet-1.7 BELPIC ATR carries, and the 1.8 ATR: a hint only,
# used to tell "not activated" (6D00 from a BELPIC card) from a foreign card's 6D00.
_BELPIC_17_MARK = bytes.fromhex("A503010101AD13")
_ATR_18 = bytes.fromhex("3B7F96000080318065B085040120120FFF829000")


class CardReadError(HardwareError):
    """A card could not be read; ``kind`` classifies it, ``str()`` holds no personal data."""

    def __init__(self, kind: ReaderErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class CertificateCache:
    """RRN certificates that verified a card, keyed by the SHA-256 of their first chunk
    (so one certificate is kept once); thread-safe, bounded (LRU).

    Certificates are public data, so holding them in memory is harmless; a wrong entry
    only costs a re-read (``read_card`` re-reads when a cached certificate fails).
    """

    def __init__(self, max_entries: int = 16) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, bytes] = OrderedDict()

    @staticmethod
    def fingerprint(prefix: bytes) -> str:
        """The cache key of a certificate file whose first chunk is ``prefix``."""
        return hashlib.sha256(prefix).hexdigest()

    def get(self, key: str) -> bytes | None:
        """The certificate file cached under ``key``, or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: str, certificate_file: bytes) -> None:
        """Remember ``certificate_file`` under ``key`` (drops the least recently used)."""
        with self._lock:
            self._entries[key] = certificate_file
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def candidates(self) -> list[bytes]:
        """Every cached certificate file, the most recently used first."""
        with self._lock:
            return list(reversed(self._entries.values()))

    def discard(self, key: str) -> None:
        """Forget ``key`` (a cached certificate that did not verify)."""
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def looks_like_belpic(atr: bytes) -> bool:
    """Whether ``atr`` is one of the BELPIC ATRs (1.7 family or 1.8); empty counts as yes."""
    return not atr or _BELPIC_17_MARK in atr or atr == _ATR_18


def read_card(
    session: apdu.CardSession,
    atr: bytes,
    *,
    trusted_roots: Sequence[x509.Certificate],
    read_photo: bool = False,
    cert_cache: CertificateCache | None = None,
    reader: str = "",
) -> CardInserted:
    """Read, parse and verify the card behind ``session``; raise ``CardReadError`` if not.

    Errors raised by the transport (``CardReadError`` with CARD_REMOVED, MUTE_CARD, ...)
    pass through unchanged; status words and malformed files are classified here.
    """
    started = time.perf_counter()
    apdus0, bytes0 = session.apdus, session.bytes_read
    try:
        use_cache = cert_cache is not None and len(cert_cache) > 0
        card_data, files = _read_files(session, atr, read_photo, read_certificate=not use_cache)
        identity = parse_identity(files.identity)
        address = parse_address(files.address) if files.address is not None else None
        found = _from_cache(cert_cache, files, trusted_roots, read_photo) if use_cache else None
        if found is not None:
            files, verification = found
        else:
            if use_cache:  # no cached certificate verifies this card: read its own once
                files = replace(files, rrn_certificate=_read_certificate(session))
            verification = verify_files(files, trusted_roots, check_photo=read_photo)
            _remember(cert_cache, files, verification)
    except CardReadError:
        raise
    except apdu.CardNotActivated:
        if looks_like_belpic(atr):
            raise CardReadError(
                ReaderErrorKind.NOT_ACTIVATED, "the card is not activated (6D00)"
            ) from None
        raise CardReadError(ReaderErrorKind.NOT_AN_EID, "not a Belgian eID card") from None
    except CardDataError as exc:
        # Messages of CardDataError name the field, never its value (identity.py's rule).
        raise CardReadError(ReaderErrorKind.READ_FAILED, f"malformed card file: {exc}") from None
    except apdu.CardStatusError as exc:
        raise CardReadError(ReaderErrorKind.READ_FAILED, f"card refused a read: {exc}") from None
    except ProtocolError as exc:
        raise CardReadError(ReaderErrorKind.READ_FAILED, f"card read failed: {exc}") from None
    timing = ReadTiming(
        apdus=session.apdus - apdus0,
        bytes_read=session.bytes_read - bytes0,
        ms=(time.perf_counter() - started) * 1000.0,
    )
    info = CardInfo(
        atr=bytes(atr),
        applet_version=card_data.applet_version if card_data else None,
        chip_serial=card_data.chip_serial if card_data else None,
        life_cycle=card_data.life_cycle if card_data else None,
    )
    return CardInserted(
        reader=reader,
        identity=identity,
        address=address,
        verification=verification,
        card=info,
        timing=timing,
        photo=files.photo if read_photo else None,
    )


def _from_cache(
    cache: CertificateCache | None,
    files: CardFiles,
    trusted_roots: Sequence[x509.Certificate],
    check_photo: bool,
) -> tuple[CardFiles, Verification] | None:
    """The card's files with a cached RRN certificate that verifies them, or None.

    The RRN certificate is the National Register's, shared by a whole card family, so a
    certificate whose key verifies this card's signatures is the one its chip holds:
    the signature check is the proof, and the card's certificate file need not be read.
    Only a full success counts (VERIFIED; UNTRUSTED_ROOT only when no roots are set):
    any other outcome is settled with the card's own certificate.
    """
    if cache is None:
        return None
    for certificate in cache.candidates():
        candidate = replace(files, rrn_certificate=certificate)
        verification = verify_files(candidate, trusted_roots, check_photo=check_photo)
        if verification.status is VerificationStatus.VERIFIED or (
            verification.status is VerificationStatus.UNTRUSTED_ROOT and not trusted_roots
        ):
            cache.put(CertificateCache.fingerprint(certificate[:CERT_PREFIX_LENGTH]), certificate)
            return candidate, verification
    return None


def _read_files(
    session: apdu.CardSession,
    atr: bytes,
    read_photo: bool,
    *,
    read_certificate: bool,
) -> tuple[apdu.CardData | None, CardFiles]:
    """The raw files; the RRN certificate only when ``read_certificate``."""
    try:
        card_data: apdu.CardData | None = session.card_data()
    except apdu.CardNotActivated:
        raise
    except apdu.CardStatusError:
        # Not every card answers GET CARD DATA; the identity file decides below.
        card_data = None
    try:
        identity = session.read_file(apdu.IDENTITY)
    except (apdu.FileNotFound, apdu.UnknownStatus) as exc:
        raise CardReadError(
            ReaderErrorKind.NOT_AN_EID, f"not a Belgian eID card (no identity file: {exc})"
        ) from None
    identity_signature = session.read_file(apdu.IDENTITY_SIGNATURE)
    address = _read_optional(session, apdu.ADDRESS)
    address_signature = _read_optional(session, apdu.ADDRESS_SIGNATURE) if address else None
    photo = session.read_file(apdu.PHOTO) if read_photo else None
    certificate = _read_certificate(session) if read_certificate else None
    files = CardFiles(
        identity=identity,
        identity_signature=identity_signature,
        address=address,
        address_signature=address_signature,
        rrn_certificate=certificate,
        photo=photo,
        atr=bytes(atr),
    )
    return card_data, files


def _read_optional(session: apdu.CardSession, path: bytes) -> bytes | None:
    """A file that some cards lack (a missing address is reported by verification)."""
    try:
        return session.read_file(path)
    except apdu.FileNotFound:
        return None


def _read_certificate(session: apdu.CardSession) -> bytes | None:
    """The RRN certificate up to its DER length (the zero padding is not read)."""
    try:
        return session.read_der(apdu.RRN_CERTIFICATE)
    except apdu.FileNotFound:
        return None


def _remember(cache: CertificateCache | None, files: CardFiles, verification: Verification) -> None:
    """Cache a freshly read certificate whose signatures checked out."""
    certificate = files.rrn_certificate
    if cache is None or certificate is None or len(certificate) < CERT_PREFIX_LENGTH:
        return
    # Only a certificate that verified the card's signatures is worth reusing.
    if verification.status in (VerificationStatus.VERIFIED, VerificationStatus.UNTRUSTED_ROOT):
        cache.put(CertificateCache.fingerprint(certificate[:CERT_PREFIX_LENGTH]), certificate)
