"""The raw files of one Belgian eID card, as bytes, and how they are kept in a directory.

A ``CardFiles`` is what a card reader reads (before parsing) and what the card emulator
and the simulated reader serve. Its ``repr`` shows sizes only: the identity file holds
the national register number and the photo is personal data.

A card directory holds one file per card file (missing optional files are simply absent):
``identity.tlv``, ``identity_signature.der``, ``address.tlv``, ``address_signature.der``,
``rrn_certificate.der``, ``photo.jpg``, ``root_certificate.der``, ``atr.bin``.
The applet version is not stored separately: it follows from the ATR (1.8 cards have
their own ATR), so a directory round-trips whatever ``cardmaker`` produced.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from hardware.errors import ConfigurationError

ATR_17 = bytes.fromhex("3B9813400AA503010101AD1311")
ATR_17_OLD = bytes.fromhex("3B9894400AA503010101AD1310")
ATR_18 = bytes.fromhex("3B7F96000080318065B085040120120FFF829000")

# CardFiles field -> file name in a card directory.
FILE_NAMES: dict[str, str] = {
    "identity": "identity.tlv",
    "identity_signature": "identity_signature.der",
    "address": "address.tlv",
    "address_signature": "address_signature.der",
    "rrn_certificate": "rrn_certificate.der",
    "photo": "photo.jpg",
    "root_certificate": "root_certificate.der",
    "atr": "atr.bin",
}
_REQUIRED = ("identity", "identity_signature")

# Specimen files in ../shared/testdata/eid (see its NOTICE.md): field -> file name.
_SPECIMENS: dict[str, dict[str, str]] = {
    "rsa": {
        "identity": "Alice_Identity.tlv",
        "identity_signature": "Alice_IdentitySignature.tlv",
        "address": "Alice_Address.tlv",
        "address_signature": "Alice_AddressSignature.tlv",
        "rrn_certificate": "Alice_RRNCertificate.tlv",
        "photo": "Alice_Photo.tlv",
        "root_certificate": "Alice_RootCertificate.tlv",
        "atr": "Alice_ATR.bin",
    },
    "ec": {
        "identity": "test-eid-v17-ec__identity.tlv",
        "identity_signature": "test-eid-v17-ec__identity-signature.der",
        "address": "test-eid-v17-ec__address.tlv",
        "address_signature": "test-eid-v17-ec__address-signature.der",
        "rrn_certificate": "test-eid-v17-ec__rrn-cert.der",
        "photo": "test-eid-v17-ec__photo.jpg",
    },
}


@dataclass(frozen=True, repr=False)
class CardFiles:
    """The files of one card exactly as read (padding included); absent files are None."""

    identity: bytes
    identity_signature: bytes
    address: bytes | None
    address_signature: bytes | None
    rrn_certificate: bytes | None
    photo: bytes | None = None
    root_certificate: bytes | None = None
    atr: bytes = ATR_17
    applet_version: int = 0x17

    def __repr__(self) -> str:
        # Sizes only: the identity file holds the national number, the photo a face.
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "applet_version":
                parts.append(f"applet_version=0x{value:02X}")
            elif value is None:
                parts.append(f"{f.name}=None")
            else:
                parts.append(f"{f.name}=<{len(value)} bytes>")
        return f"CardFiles({', '.join(parts)})"

    __str__ = __repr__


def applet_version_for_atr(atr: bytes) -> int:
    """The applet version an ATR suggests (0x18 for the 1.8 ATR, else 0x17): a hint only."""
    return 0x18 if atr == ATR_18 else 0x17


def _read(path: Path, *, required: bool) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigurationError(f"card file missing: {path}") from None
        return None
    except OSError as exc:
        raise ConfigurationError(f"cannot read card file {path}: {exc.strerror}") from None


def _card_files(found: dict[str, bytes | None], applet_version: int | None) -> CardFiles:
    identity, identity_signature = found["identity"], found["identity_signature"]
    assert identity is not None and identity_signature is not None  # read as required
    atr = found.get("atr") or ATR_17
    return CardFiles(
        identity=identity,
        identity_signature=identity_signature,
        address=found.get("address"),
        address_signature=found.get("address_signature"),
        rrn_certificate=found.get("rrn_certificate"),
        photo=found.get("photo"),
        root_certificate=found.get("root_certificate"),
        atr=atr,
        applet_version=applet_version or applet_version_for_atr(atr),
    )


def load_card_dir(path: str | Path) -> CardFiles:
    """Load a card directory (see the module docstring); a missing identity is an error.

    Raises ``ConfigurationError`` naming the directory or file when it cannot be used.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise ConfigurationError(f"card directory not found: {directory}")
    found = {
        name: _read(directory / file_name, required=name in _REQUIRED)
        for name, file_name in FILE_NAMES.items()
    }
    return _card_files(found, applet_version=None)


def save_card_dir(files: CardFiles, path: str | Path) -> None:
    """Write ``files`` into directory ``path`` (created if needed); absent files are removed.

    The files hold personal data of the card: only use this for generated test cards.
    """
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, file_name in FILE_NAMES.items():
            value = getattr(files, name)
            target = directory / file_name
            if value is None:
                # A stale file from an earlier card would otherwise be loaded back.
                target.unlink(missing_ok=True)
            else:
                target.write_bytes(value)
    except OSError as exc:
        raise ConfigurationError(f"cannot write card directory {directory}: {exc}") from None


def load_specimen(prefix_dir: str | Path, kind: Literal["rsa", "ec"] = "rsa") -> CardFiles:
    """Map the shared specimen files (``Alice_*`` for rsa, ``test-eid-v17-ec__*`` for ec).

    ``prefix_dir`` is the specimen folder (``../shared/testdata/eid`` from the repo root).
    The EC specimen comes without its root certificate or ATR: those stay None / default.
    """
    try:
        names = _SPECIMENS[kind]
    except KeyError:
        raise ConfigurationError(f"unknown specimen kind {kind!r} (rsa or ec)") from None
    directory = Path(prefix_dir)
    found = {name: _read(directory / file_name, required=True) for name, file_name in names.items()}
    return _card_files(found, applet_version=0x17)
