"""Is this identity really from a Belgian card? Signature and certificate checks (pure).

The card signs its identity file, and its address file together with the identity
signature, with the key of the RRN (national register) certificate; that certificate is
issued by a Belgium Root CA. ``verify_files`` checks both signatures, the optional photo
hash, and that the RRN certificate is issued by one of the operator's trusted roots.

It never raises on card data: whatever is wrong with the files becomes an outcome with a
reason a person can read. Reasons name files and certificates, never personal data.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from hardware.eid.base import Verification, VerificationStatus
from hardware.eid.cardfiles import CardFiles
from hardware.eid.identity import parse_tlv
from hardware.errors import CardDataError, ConfigurationError

log = logging.getLogger(__name__)

PHOTO_HASH_TAG = 0x11
# Photo-hash length -> the hash the card uses for it (and, on RSA cards, for signatures).
_HASH_BY_LENGTH: dict[int, type[hashes.HashAlgorithm]] = {
    20: hashes.SHA1,
    32: hashes.SHA256,
    48: hashes.SHA384,
}
_HASHLIB_NAMES = {"sha1": "SHA-1", "sha256": "SHA-256", "sha384": "SHA-384"}
_PEM_MARKER = b"-----BEGIN CERTIFICATE-----"
_DOC_SUFFIXES = {".md", ".txt", ".rst"}  # a README in the trust directory is not a cert


def der_length_trim(data: bytes) -> bytes:
    """Cut ``data`` to the length of the DER structure at its start (drops zero padding).

    Raises ``CardDataError`` when the start is not a definite-length DER header or the
    structure is longer than the data.
    """
    if len(data) < 2:
        raise CardDataError(f"DER structure too short ({len(data)} bytes)")
    first = data[1]
    if first < 0x80:
        header, length = 2, first
    else:
        count = first & 0x7F
        # 0x80 is BER's indefinite length, never DER; more than 4 length bytes is absurd here.
        if count == 0 or count > 4 or len(data) < 2 + count:
            raise CardDataError("malformed DER length")
        header, length = 2 + count, int.from_bytes(data[2 : 2 + count], "big")
    total = header + length
    if total > len(data):
        raise CardDataError(f"DER structure of {total} bytes in {len(data)} bytes of data")
    return data[:total]


def load_certificate(data: bytes, what: str = "certificate") -> x509.Certificate:
    """Parse a (possibly zero padded) DER certificate; ``CardDataError`` naming ``what``."""
    try:
        der = der_length_trim(data)
    except CardDataError as exc:
        raise CardDataError(f"{what} is not a valid certificate: {exc}") from None
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        # cryptography's parse error is a debugging dump, not something to show.
        raise CardDataError(f"{what} is not a valid certificate: malformed DER") from None


def _load_root_file(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read trusted root {path}: {exc.strerror}") from None
    if _PEM_MARKER in data:
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError:
            raise ConfigurationError(
                f"trusted root {path} is not a valid PEM certificate"
            ) from None
    if path.suffix.lower() in _DOC_SUFFIXES:
        return []
    try:
        return [load_certificate(data, f"trusted root {path}")]
    except CardDataError as exc:
        raise ConfigurationError(f"{exc} (expected PEM or DER)") from None


def load_trusted_roots(directory: str | Path) -> list[x509.Certificate]:
    """Every certificate in ``directory`` (PEM, possibly several per file, or DER).

    Hidden files and text files without a PEM certificate are skipped. A missing
    directory or a file that is not a certificate raises ``ConfigurationError`` naming it:
    a trust directory that silently loses a root would refuse every card of that root.
    """
    root_dir = Path(directory)
    if not root_dir.is_dir():
        raise ConfigurationError(f"trusted root directory not found: {root_dir}")
    roots: list[x509.Certificate] = []
    for path in sorted(root_dir.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        for cert in _load_root_file(path):
            if not is_root_certificate(cert):
                raise ConfigurationError(
                    f"{path} is not a root certificate (issued by "
                    f"{cert.issuer.rfc4514_string()}): put only the self-signed Belgium Root "
                    "CA certificates in the trust directory"
                )
            roots.append(cert)
    return roots


def is_root_certificate(cert: x509.Certificate) -> bool:
    """True for a self-issued CA certificate (a root), as the Belgium Root CAs on cards are.

    Only roots may be trusted: trusting an intermediate such as the Citizen CA would let
    any citizen sign forged identity files with the signature key of their own card.
    """
    if cert.issuer != cert.subject:
        return False
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return True  # old v1-style roots carry no extensions
    except ValueError:
        return False  # an extension that does not parse: not a root to rely on
    return constraints.ca


def _photo_hash(identity: bytes) -> bytes | None:
    """Tag 0x11 of the identity file, or None when absent or the file does not parse."""
    try:
        for tag, value in parse_tlv(identity):
            if tag == PHOTO_HASH_TAG:
                return value
    except CardDataError:
        return None
    return None


def _rsa_signature(key: rsa.RSAPublicKey, signature: bytes) -> bytes:
    # An RSA signature is exactly the key size long; anything after it is file padding.
    return signature[: (key.key_size + 7) // 8]


class _Signer:
    """Verifies signatures with the RRN key; remembers the algorithm that worked."""

    def __init__(
        self,
        key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
        hash_order: list[type[hashes.HashAlgorithm]],
    ):
        self.key = key
        self.hash_order = hash_order  # RSA: preferred hash first, the others as retries
        self.algorithm: str | None = None

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` (the file as read) is valid over ``data``."""
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            try:
                der = der_length_trim(signature)
                self.key.verify(der, data, ec.ECDSA(hashes.SHA384()))
            except (CardDataError, InvalidSignature, ValueError):
                return False
            self.algorithm = f"ECDSA {_curve_name(self.key)} SHA-384"
            return True
        sig = _rsa_signature(self.key, signature)
        for hash_cls in self.hash_order:
            try:
                self.key.verify(sig, data, padding.PKCS1v15(), hash_cls())
            except (InvalidSignature, ValueError):
                continue
            self.algorithm = f"RSA PKCS#1 v1.5 {_HASHLIB_NAMES[hash_cls.name]}"
            # The address is signed with the same hash: try the one that worked first.
            self.hash_order = [hash_cls] + [h for h in self.hash_order if h is not hash_cls]
            return True
        return False


def _curve_name(key: ec.EllipticCurvePublicKey) -> str:
    return {"secp384r1": "P-384", "secp256r1": "P-256", "secp521r1": "P-521"}.get(
        key.curve.name, key.curve.name
    )


def _issued_by(cert: x509.Certificate, root: x509.Certificate) -> bool:
    # Issuer name and signature only: validity dates are deliberately not checked, as
    # cards stay valid after their root expired (Belgium Root CA2 expired in 2021).
    # By hand, because cryptography's verify_directly_issued_by refuses SHA-1, and the
    # RRN certificates of older cards are signed with SHA-1.
    if cert.issuer != root.subject:
        return False
    try:
        key = root.public_key()
        params = cert.signature_algorithm_parameters
        if isinstance(key, rsa.RSAPublicKey) and isinstance(params, padding.PKCS1v15 | padding.PSS):
            hash_alg = cert.signature_hash_algorithm
            if hash_alg is None:
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, params, hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            key.verify(cert.signature, cert.tbs_certificate_bytes, params)
        else:
            return False
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_photo(identity: bytes, photo: bytes | None) -> str | None:
    """None when the photo matches the identity's photo hash, else the problem."""
    if photo is None:
        return "photo not read"
    expected = _photo_hash(identity)
    if expected is None:
        return "identity file has no photo hash"
    hash_cls = _HASH_BY_LENGTH.get(len(expected))
    if hash_cls is None:
        return f"photo hash of unexpected length {len(expected)}"
    if hashlib.new(hash_cls.name, photo).digest() != expected:
        return "photo does not match the photo hash in the identity file"
    return None


def verify_files(
    files: CardFiles,
    trusted_roots: Sequence[x509.Certificate],
    *,
    check_photo: bool = False,
) -> Verification:
    """Check the signatures, the RRN certificate chain and optionally the photo hash.

    Outcomes: VERIFIED; BAD_SIGNATURE (the reason names the file that does not match);
    UNTRUSTED_ROOT (signatures good but the RRN certificate is not issued by one of
    ``trusted_roots``, or none are configured); NOT_CHECKED (no or unusable RRN
    certificate, an unsupported key, a missing signature). Never raises on card data.
    """
    try:
        return _verify(files, trusted_roots, check_photo=check_photo)
    except Exception as exc:  # the contract is an outcome, never a crash of the reader
        log.warning("eID verification failed unexpectedly: %s", type(exc).__name__)
        return Verification(
            VerificationStatus.NOT_CHECKED, f"verification failed: {type(exc).__name__}"
        )


def _verify(
    files: CardFiles, trusted_roots: Sequence[x509.Certificate], *, check_photo: bool
) -> Verification:
    not_checked = VerificationStatus.NOT_CHECKED
    bad = VerificationStatus.BAD_SIGNATURE
    if files.rrn_certificate is None:
        return Verification(not_checked, "no RRN certificate read")
    try:
        rrn = load_certificate(files.rrn_certificate, "RRN certificate")
        key = rrn.public_key()
    except (CardDataError, ValueError, UnsupportedAlgorithm) as exc:
        return Verification(not_checked, str(exc))

    if isinstance(key, rsa.RSAPublicKey):
        photo_hash = _photo_hash(files.identity)
        preferred = _HASH_BY_LENGTH.get(len(photo_hash) if photo_hash else 20, hashes.SHA1)
        order = [preferred] + [h for h in (hashes.SHA1, hashes.SHA256) if h is not preferred]
        signer = _Signer(key, order)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        signer = _Signer(key, [])
    else:
        return Verification(not_checked, f"unsupported RRN key type {type(key).__name__}")

    if not signer.verify(files.identity_signature, files.identity):
        return Verification(bad, "identity file does not match its signature")
    algorithm = signer.algorithm
    notes: list[str] = []

    if files.address is None:
        notes.append("no address file")
    elif files.address_signature is None:
        return Verification(not_checked, "address signature not read", algorithm)
    else:
        signed = files.address.rstrip(b"\x00") + files.identity_signature
        if not signer.verify(files.address_signature, signed):
            return Verification(bad, "address file does not match its signature", algorithm)

    if check_photo:
        problem = _check_photo(files.identity, files.photo)
        if problem == "photo not read":
            notes.append("photo not checked: not read")
        elif problem is not None:
            return Verification(bad, problem, algorithm)
        else:
            notes.append("photo matches")

    suffix = f" ({'; '.join(notes)})" if notes else ""
    # Intermediates are never trusted (see is_root_certificate), whoever passed them.
    roots = [root for root in trusted_roots if is_root_certificate(root)]
    if not roots:
        return Verification(
            VerificationStatus.UNTRUSTED_ROOT,
            f"signatures valid, but no trusted root certificates configured{suffix}",
            algorithm,
        )
    if not any(_issued_by(rrn, root) for root in roots):
        issuer = rrn.issuer.rfc4514_string()
        return Verification(
            VerificationStatus.UNTRUSTED_ROOT,
            f"signatures valid, but the RRN certificate's issuer {issuer} "
            f"is not a trusted root{suffix}",
            algorithm,
        )
    return Verification(
        VerificationStatus.VERIFIED, f"signatures valid, trusted root{suffix}", algorithm
    )
