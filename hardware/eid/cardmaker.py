"""A test PKI and generated eID cards: any identity, signed the way a real card is.

Product code: the card emulator, the simulated reader and the demo serve cards made here,
and the tests check the verifier against them. ``TestPki.create("rsa")`` makes an RSA 2048
root CA and RRN certificate (like applet 1.7 cards), ``"ec"`` the P-384 pair (applet 1.8 and
EC-rekeyed 1.7 cards). ``make_card`` encodes the identity and address files as TLV, puts
the photo hash in, and signs both files with the RRN key. The keys live in memory only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from hardware.eid.cardfiles import ATR_17, ATR_18, CardFiles
from hardware.errors import ConfigurationError

PkiKind = Literal["rsa", "ec"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

ADDRESS_FILE_SIZE = 121  # real address files are zero padded to about this size
EC_SIGNATURE_FILE_SIZE = 256  # EC cards pad their DER signatures to 256 bytes
_CERT_PADDING_17 = 50  # zero bytes after the DER certificate in a 1.7 card's file
_CERT_FILE_SIZE_18 = 2048  # 1.8 cards pad certificate files to a fixed size
_VERSION_TAG_VALUE = b"\x00\x01"  # tag 00 at the start of newer files


def encode_tlv(fields: list[tuple[int, bytes]]) -> bytes:
    """Encode ``(tag, value)`` pairs as the card does: 1-byte tag, ``FF``-run length.

    A length of 255 or more is a run of ``FF`` bytes (255 each) ended by a byte < 255
    that is added: 300 -> ``FF 2D``, 255 -> ``FF 00``.
    """
    out = bytearray()
    for tag, value in fields:
        if not 0 <= tag <= 0xFF:
            raise ValueError(f"TLV tag out of range: {tag}")
        out.append(tag)
        full, rest = divmod(len(value), 255)
        out += b"\xff" * full
        out.append(rest)
        out += value
    return bytes(out)


def make_photo(seed: str = "photo", size: int = 3000) -> bytes:
    """Deterministic JPEG-looking bytes (SOI/JFIF header ... EOI) of ``size`` bytes.

    Not a decodable image: the card and the verifier only ever hash the photo.
    """
    header = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    body = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(header) + len(body) + 2 < size:
        block = hashlib.sha256(block).digest()
        body += block
    body = body[: max(0, size - len(header) - 2)]
    return header + bytes(body) + b"\xff\xd9"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "digibank-kiosk test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_key(kind: PkiKind) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP384R1())


def _cert_hash(kind: PkiKind) -> hashes.HashAlgorithm:
    return hashes.SHA256() if kind == "rsa" else hashes.SHA384()


@dataclass(frozen=True, repr=False)
class TestPki:
    """A root CA and an RRN certificate issued by it, with their private keys."""

    __test__ = False  # not a pytest test class, despite the name

    kind: PkiKind
    root_key: PrivateKey
    root_certificate: x509.Certificate
    rrn_key: PrivateKey
    rrn_certificate: x509.Certificate

    def __repr__(self) -> str:
        return (
            f"TestPki(kind={self.kind!r}, root={self.root_certificate.subject.rfc4514_string()!r})"
        )

    @classmethod
    def create(cls, kind: PkiKind, *, name: str = "digibank test") -> TestPki:
        """Make a self-signed root CA (``CN=<name> <KIND> Root CA``) and an RRN cert under it."""
        if kind not in ("rsa", "ec"):
            raise ConfigurationError(f"unknown PKI kind {kind!r} (rsa or ec)")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        begin, end = now - dt.timedelta(days=1), now + dt.timedelta(days=365 * 30)
        root_key, rrn_key = _new_key(kind), _new_key(kind)
        root_name = _name(f"{name} {kind.upper()} Root CA")
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(begin)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(root_ski, critical=False)
            .sign(root_key, _cert_hash(kind))
        )
        rrn = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name} {kind.upper()} RRN"))
            .issuer_name(root_name)
            .public_key(rrn_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(begin)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                critical=False,
            )
            .sign(root_key, _cert_hash(kind))
        )
        return cls(kind, root_key, root, rrn_key, rrn)

    @property
    def root_certificate_der(self) -> bytes:
        """The root CA certificate, DER."""
        return self.root_certificate.public_bytes(serialization.Encoding.DER)

    @property
    def rrn_certificate_der(self) -> bytes:
        """The RRN certificate, DER."""
        return self.rrn_certificate.public_bytes(serialization.Encoding.DER)

    def write_trust_dir(self, path: str | Path) -> Path:
        """Put the root certificate (PEM) into trust directory ``path``; returns the file."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{self.kind}-test-root.pem"
        target.write_bytes(self.root_certificate.public_bytes(serialization.Encoding.PEM))
        return target

    def sign(self, data: bytes, *, rsa_hash: Literal["sha1", "sha256"] = "sha1") -> bytes:
        """Sign ``data`` with the RRN key as the card does (the signature *file* content).

        RSA: PKCS#1 v1.5 with ``rsa_hash``. EC: ECDSA P-384 SHA-384, DER zero-padded to
        256 bytes.
        """
        if isinstance(self.rrn_key, rsa.RSAPrivateKey):
            hash_alg = hashes.SHA1() if rsa_hash == "sha1" else hashes.SHA256()
            return self.rrn_key.sign(data, padding.PKCS1v15(), hash_alg)
        der = self.rrn_key.sign(data, ec.ECDSA(hashes.SHA384()))
        return der.ljust(EC_SIGNATURE_FILE_SIZE, b"\x00")


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pad_certificate(der: bytes, applet_version: int) -> bytes:
    # Readers must cut certificate files to the DER length: make them need to.
    if applet_version >= 0x18:
        return der.ljust(_CERT_FILE_SIZE_18, b"\x00")
    return der + b"\x00" * _CERT_PADDING_17


def _text(value: str) -> bytes:
    return value.encode("utf-8")


def make_card(
    pki: TestPki,
    *,
    national_number: str,
    given_names: str,
    surname: str,
    birth_date_text: str = "01 JAN 1971",
    validity_begin: dt.date | None = None,
    validity_end: dt.date | None = None,
    document_type: str = "1",
    sex: str = "F",
    nationality: str = "Belg",
    card_number: str = "592000123456",
    photo: bytes | None = None,
    with_address: bool = True,
    applet_version: int = 0x17,
    issuing_municipality: str = "Brussel",
    birth_place: str = "Gent",
    third_initial: str = "",
    special_status: str = "0",
    street_and_number: str = "Kerkstraat 1",
    postal_code: str = "1000",
    municipality: str = "Brussel",
    with_version: bool | None = None,
    rsa_hash: Literal["sha1", "sha256"] = "sha1",
    extra_fields: list[tuple[int, bytes]] | None = None,
) -> CardFiles:
    """Make the files of a card for this identity, signed by ``pki``'s RRN key.

    Defaults: valid from a year ago for ten years; a generated photo; the version tag
    (00) on 1.8 cards only (``with_version`` forces it). The photo hash is SHA-1 on RSA
    1.7 cards (SHA-256 with ``rsa_hash="sha256"``, like re-signed cards), SHA-256 on EC
    1.7 cards, SHA-384 on 1.8 cards. ``extra_fields`` are appended to the identity file
    (e.g. tags a newer card adds).
    """
    if applet_version not in (0x17, 0x18):
        raise ConfigurationError(f"unknown applet version 0x{applet_version:02X}")
    if applet_version == 0x18 and pki.kind != "ec":
        raise ConfigurationError("applet 1.8 cards are EC cards: use TestPki.create('ec')")
    today = dt.date.today()
    begin = validity_begin or today - dt.timedelta(days=365)
    if validity_end is None:
        # Ten years, like an adult eID; 29 February has no anniversary in most years.
        day = min(begin.day, 28) if begin.month == 2 else begin.day
        validity_end = begin.replace(year=begin.year + 10, day=day)
    end = validity_end
    photo = make_photo(f"{card_number}") if photo is None else photo
    if applet_version == 0x18:
        photo_hash = hashlib.sha384(photo).digest()
    elif pki.kind == "ec" or rsa_hash == "sha256":
        photo_hash = hashlib.sha256(photo).digest()
    else:
        photo_hash = hashlib.sha1(photo).digest()
    versioned = applet_version == 0x18 if with_version is None else with_version
    head = [(0x00, _VERSION_TAG_VALUE)] if versioned else []

    chip_number = hashlib.sha256(b"chip" + card_number.encode()).digest()[:16]
    identity_fields = [
        *head,
        (0x01, _text(card_number)),
        (0x02, chip_number),
        (0x03, _text(begin.strftime("%d.%m.%Y"))),
        (0x04, _text(end.strftime("%d.%m.%Y"))),
        (0x05, _text(issuing_municipality)),
        (0x06, _text(national_number)),
        (0x07, _text(surname)),
        (0x08, _text(given_names)),
        (0x09, _text(third_initial)),
        (0x0A, _text(nationality)),
        (0x0B, _text(birth_place)),
        (0x0C, _text(birth_date_text)),
        (0x0D, _text(sex)),
        (0x0F, _text(document_type)),
        (0x10, _text(special_status)),
        (0x11, photo_hash),
        *(extra_fields or []),
    ]
    identity = encode_tlv(identity_fields)
    identity_signature = pki.sign(identity, rsa_hash=rsa_hash)

    address = address_signature = None
    if with_address:
        address_fields = [
            *head,
            (0x01, _text(street_and_number)),
            (0x02, _text(postal_code)),
            (0x03, _text(municipality)),
        ]
        address = encode_tlv(address_fields).ljust(ADDRESS_FILE_SIZE, b"\x00")
        # The card signs the address without its padding, followed by the identity
        # signature file exactly as stored (EC padding included).
        address_signature = pki.sign(
            address.rstrip(b"\x00") + identity_signature, rsa_hash=rsa_hash
        )

    return CardFiles(
        identity=identity,
        identity_signature=identity_signature,
        address=address,
        address_signature=address_signature,
        rrn_certificate=_pad_certificate(pki.rrn_certificate_der, applet_version),
        photo=photo,
        root_certificate=_pad_certificate(pki.root_certificate_der, applet_version),
        atr=ATR_18 if applet_version == 0x18 else ATR_17,
        applet_version=applet_version,
    )
