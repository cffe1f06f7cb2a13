"""Authenticity: real specimen cards and generated cards verify; tampered ones do not."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.eid.base import VerificationStatus
from hardware.eid.cardfiles import CardFiles, load_specimen
from hardware.eid.cardmaker import TestPki, make_card, make_photo
from hardware.eid.verify import (
    der_length_trim,
    load_certificate,
    load_trusted_roots,
    verify_files,
)
from hardware.errors import CardDataError, ConfigurationError

SPECIMENS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "eid"
needs_specimens = pytest.mark.skipif(
    not SPECIMENS.is_dir(),
    reason=f"Belgian eID specimen files not found at {SPECIMENS} (see its NOTICE.md)",
)
V = VerificationStatus


def _flip(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


@pytest.fixture(scope="module")
def rsa_pki() -> TestPki:
    return TestPki.create("rsa")


@pytest.fixture(scope="module")
def ec_pki() -> TestPki:
    return TestPki.create("ec")


@pytest.fixture(scope="module")
def other_pki() -> TestPki:
    """An unrelated PKI whose root has the same name as ``ec_pki``'s."""
    return TestPki.create("ec")


@pytest.fixture(scope="module")
def rsa_specimen() -> CardFiles:
    if not SPECIMENS.is_dir():
        pytest.skip(f"Belgian eID specimen files not found at {SPECIMENS}")
    return load_specimen(SPECIMENS, "rsa")


@pytest.fixture(scope="module")
def ec_specimen() -> CardFiles:
    if not SPECIMENS.is_dir():
        pytest.skip(f"Belgian eID specimen files not found at {SPECIMENS}")
    return load_specimen(SPECIMENS, "ec")


@pytest.fixture(scope="module")
def specimen_root(rsa_specimen: CardFiles):
    assert rsa_specimen.root_certificate is not None
    return load_certificate(rsa_specimen.root_certificate)


def _card(pki: TestPki, **kwargs) -> CardFiles:
    return make_card(
        pki, national_number="71715100070", given_names="Alice", surname="Peeters", **kwargs
    )


# --- the specimen cards (files nobody on this project produced) ---------------------------


@needs_specimens
def test_rsa_specimen_verifies_under_its_root_with_photo(rsa_specimen, specimen_root) -> None:
    result = verify_files(rsa_specimen, [specimen_root], check_photo=True)
    assert result.status == V.VERIFIED, result.reason
    assert result.algorithm == "RSA PKCS#1 v1.5 SHA-1"
    assert "photo matches" in result.reason


@needs_specimens
def test_rsa_specimen_test_files_are_the_same_card(specimen_root) -> None:
    files = CardFiles(
        identity=(SPECIMENS / "test-identity.tlv").read_bytes(),
        identity_signature=(SPECIMENS / "test-identity-sign.der").read_bytes(),
        address=(SPECIMENS / "test-address.tlv").read_bytes(),
        address_signature=(SPECIMENS / "test-address-sign.der").read_bytes(),
        rrn_certificate=(SPECIMENS / "test-rrn-cert.der").read_bytes(),
        photo=(SPECIMENS / "test-photo.jpg").read_bytes(),
    )
    assert verify_files(files, [specimen_root], check_photo=True).status == V.VERIFIED


@needs_specimens
def test_ec_specimen_signatures_verify_but_its_root_is_not_given(
    ec_specimen, specimen_root
) -> None:
    # The EC card's root ("eID TEST EC Root CA") is not among the specimen files.
    result = verify_files(ec_specimen, [specimen_root], check_photo=True)
    assert result.status == V.UNTRUSTED_ROOT
    assert result.algorithm == "ECDSA P-384 SHA-384"
    assert "eID TEST EC Root CA" in result.reason and "photo matches" in result.reason


@needs_specimens
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_specimen_identity_changed_by_one_byte_is_bad(kind, specimen_root) -> None:
    card = load_specimen(SPECIMENS, kind)
    tampered = dataclasses.replace(card, identity=_flip(card.identity, 40))
    result = verify_files(tampered, [specimen_root])
    assert result.status == V.BAD_SIGNATURE
    assert "identity" in result.reason


@needs_specimens
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_specimen_address_changed_by_one_byte_is_bad(kind, specimen_root) -> None:
    card = load_specimen(SPECIMENS, kind)
    assert card.address is not None
    tampered = dataclasses.replace(card, address=_flip(card.address, 5))
    result = verify_files(tampered, [specimen_root])
    assert result.status == V.BAD_SIGNATURE
    assert "address" in result.reason


@needs_specimens
def test_specimen_with_unrelated_root_or_no_roots_is_untrusted(rsa_specimen, ec_pki) -> None:
    assert verify_files(rsa_specimen, [ec_pki.root_certificate]).status == V.UNTRUSTED_ROOT
    result = verify_files(rsa_specimen, [])
    assert result.status == V.UNTRUSTED_ROOT
    assert "no trusted root" in result.reason


@needs_specimens
def test_specimen_photo_swapped_fails_photo_check(rsa_specimen, ec_specimen, specimen_root):
    swapped = dataclasses.replace(rsa_specimen, photo=ec_specimen.photo)
    result = verify_files(swapped, [specimen_root], check_photo=True)
    assert result.status == V.BAD_SIGNATURE
    assert "photo" in result.reason
    # Without the photo check the same files verify.
    assert verify_files(swapped, [specimen_root]).status == V.VERIFIED


@needs_specimens
def test_specimen_with_card_padded_certificate_still_verifies(rsa_specimen, specimen_root):
    # The specimen files were stored trimmed; on the card they carry zero padding.
    assert rsa_specimen.rrn_certificate is not None
    padded = rsa_specimen.rrn_certificate + bytes(50)
    assert der_length_trim(padded) == rsa_specimen.rrn_certificate
    card = dataclasses.replace(rsa_specimen, rrn_certificate=padded)
    assert verify_files(card, [specimen_root]).status == V.VERIFIED


# --- garbage in, an outcome out -----------------------------------------------------------


@pytest.mark.parametrize(
    "certificate",
    [b"", b"\x30", b"\x30\x82\x10\x00" + bytes(40), b"\x30\x03abc" + bytes(50), b"\xff" * 900],
)
def test_garbage_rrn_certificate_is_not_checked_with_a_reason(rsa_pki, certificate) -> None:
    card = dataclasses.replace(_card(rsa_pki), rrn_certificate=certificate)
    result = verify_files(card, [rsa_pki.root_certificate])
    assert result.status == V.NOT_CHECKED
    assert "RRN certificate" in result.reason


def test_missing_rrn_certificate_is_not_checked(rsa_pki) -> None:
    result = verify_files(dataclasses.replace(_card(rsa_pki), rrn_certificate=None), [])
    assert result.status == V.NOT_CHECKED and "no RRN certificate" in result.reason


@pytest.mark.parametrize("signature", [b"", b"\x00" * 256, b"\x30\x81", b"\xff" * 300])
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_garbage_signature_is_bad(rsa_pki, ec_pki, kind, signature) -> None:
    pki = rsa_pki if kind == "rsa" else ec_pki
    card = dataclasses.replace(_card(pki), identity_signature=signature)
    result = verify_files(card, [pki.root_certificate])
    assert result.status == V.BAD_SIGNATURE and "identity" in result.reason


def test_address_without_its_signature_is_not_checked(ec_pki) -> None:
    card = dataclasses.replace(_card(ec_pki), address_signature=None)
    result = verify_files(card, [ec_pki.root_certificate])
    assert result.status == V.NOT_CHECKED and "address signature" in result.reason


def test_card_without_address_verifies_identity(ec_pki) -> None:
    result = verify_files(_card(ec_pki, with_address=False), [ec_pki.root_certificate])
    assert result.status == V.VERIFIED and "no address" in result.reason


# --- generated cards ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "version", "rsa_hash", "algorithm"),
    [
        ("rsa", 0x17, "sha1", "RSA PKCS#1 v1.5 SHA-1"),
        ("rsa", 0x17, "sha256", "RSA PKCS#1 v1.5 SHA-256"),
        ("ec", 0x17, "sha1", "ECDSA P-384 SHA-384"),
        ("ec", 0x18, "sha1", "ECDSA P-384 SHA-384"),
    ],
)
def test_generated_cards_verify(rsa_pki, ec_pki, kind, version, rsa_hash, algorithm) -> None:
    pki = rsa_pki if kind == "rsa" else ec_pki
    card = _card(pki, applet_version=version, rsa_hash=rsa_hash)
    result = verify_files(card, [pki.root_certificate], check_photo=True)
    assert result.status == V.VERIFIED, result.reason
    assert result.algorithm == algorithm


def test_rsa_hash_retry_when_photo_hash_suggests_the_other(rsa_pki) -> None:
    # A re-signed card: SHA-256 signatures but (unusually) a SHA-1 photo hash.
    card = _card(rsa_pki)
    from hardware.eid.identity import parse_tlv

    assert len(dict(parse_tlv(card.identity))[0x11]) == 20
    identity_signature = rsa_pki.sign(card.identity, rsa_hash="sha256")
    assert card.address is not None
    address_signature = rsa_pki.sign(
        card.address.rstrip(b"\x00") + identity_signature, rsa_hash="sha256"
    )
    resigned = dataclasses.replace(
        card, identity_signature=identity_signature, address_signature=address_signature
    )
    result = verify_files(resigned, [rsa_pki.root_certificate])
    assert result.status == V.VERIFIED
    assert result.algorithm == "RSA PKCS#1 v1.5 SHA-256"


@pytest.mark.parametrize("kind", ["rsa", "ec"])
@pytest.mark.parametrize("part", ["identity", "address", "identity_signature", "photo"])
def test_tampered_generated_cards_do_not_verify(rsa_pki, ec_pki, kind, part) -> None:
    pki = rsa_pki if kind == "rsa" else ec_pki
    card = _card(pki)
    tampered = dataclasses.replace(card, **{part: _flip(getattr(card, part), 20)})
    result = verify_files(tampered, [pki.root_certificate], check_photo=True)
    assert result.status == V.BAD_SIGNATURE
    expected = {"identity_signature": "identity"}.get(part, part)
    assert expected in result.reason


def test_card_under_unrelated_root_of_same_name_is_untrusted(ec_pki, other_pki) -> None:
    assert ec_pki.root_certificate.subject == other_pki.root_certificate.subject
    result = verify_files(_card(ec_pki), [other_pki.root_certificate])
    assert result.status == V.UNTRUSTED_ROOT
    both = verify_files(_card(ec_pki), [other_pki.root_certificate, ec_pki.root_certificate])
    assert both.status == V.VERIFIED


def test_rrn_certificate_swapped_for_another_cards_is_bad(ec_pki, other_pki) -> None:
    card = dataclasses.replace(_card(ec_pki), rrn_certificate=other_pki.rrn_certificate_der)
    result = verify_files(card, [other_pki.root_certificate])
    assert result.status == V.BAD_SIGNATURE


def test_photo_check_without_photo_does_not_fail(ec_pki) -> None:
    card = dataclasses.replace(_card(ec_pki, photo=make_photo("x")), photo=None)
    result = verify_files(card, [ec_pki.root_certificate], check_photo=True)
    assert result.status == V.VERIFIED and "photo not checked" in result.reason


# --- trust directory ----------------------------------------------------------------------


def test_trust_directory_reads_pem_der_and_padded_der(tmp_path, rsa_pki, ec_pki, other_pki):
    rsa_pki.write_trust_dir(tmp_path)  # PEM
    der = ec_pki.root_certificate.public_bytes(serialization.Encoding.DER)
    (tmp_path / "ec-root.der").write_bytes(der)
    # A root file as read from a card (503B) is zero padded: accepted as is.
    other = other_pki.root_certificate.public_bytes(serialization.Encoding.DER)
    (tmp_path / "card-root.crt").write_bytes(other + bytes(50))
    (tmp_path / "README.md").write_text("Belgium Root CA certificates go here.\n")
    (tmp_path / ".hidden").write_bytes(b"junk")
    roots = load_trusted_roots(tmp_path)
    assert len(roots) == 3
    assert {r.fingerprint(ec_pki.root_certificate.signature_hash_algorithm) for r in roots} == {
        c.root_certificate.fingerprint(ec_pki.root_certificate.signature_hash_algorithm)
        for c in (rsa_pki, ec_pki, other_pki)
    }


def test_trust_directory_with_bad_file_names_it(tmp_path, ec_pki) -> None:
    ec_pki.write_trust_dir(tmp_path)
    (tmp_path / "broken.pem").write_bytes(b"not a certificate at all")
    with pytest.raises(ConfigurationError, match=r"broken\.pem"):
        load_trusted_roots(tmp_path)


def test_trust_directory_with_bad_pem_names_it(tmp_path) -> None:
    (tmp_path / "root.pem").write_bytes(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(ConfigurationError, match=r"root\.pem"):
        load_trusted_roots(tmp_path)


def test_missing_trust_directory_is_a_configuration_error(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="nowhere"):
        load_trusted_roots(tmp_path / "nowhere")


@needs_specimens
def test_specimen_root_in_a_trust_directory_verifies_the_card(tmp_path, rsa_specimen) -> None:
    assert rsa_specimen.root_certificate is not None
    (tmp_path / "specimen-root.der").write_bytes(rsa_specimen.root_certificate)
    roots = load_trusted_roots(tmp_path)
    assert verify_files(rsa_specimen, roots).status == V.VERIFIED


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x80\x00\x00", b"\x30\x05abc"])
def test_der_length_trim_rejects_broken_structures(data: bytes) -> None:
    with pytest.raises(CardDataError):
        der_length_trim(data)


def test_der_length_trim_cuts_padding() -> None:
    assert der_length_trim(b"\x30\x03abc" + bytes(10)) == b"\x30\x03abc"
    long = b"\x30\x82\x01\x00" + b"x" * 256
    assert der_length_trim(long + bytes(100)) == long


# --- only roots are trusted ---------------------------------------------------------------


def _intermediate_and_leaf(pki: TestPki):
    """A Citizen-CA-like intermediate under ``pki``'s root and a citizen key under it."""
    now = dt.datetime.now(dt.UTC)
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP384R1()),
        ec.generate_private_key(ec.SECP384R1()),
    )
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test Citizen CA")])

    def build(subject, issuer, key, signer, ca: bool) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA384())
        )

    intermediate = build(ca_name, pki.root_certificate.subject, ca_key, pki.root_key, True)
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a citizen (Signature)")])
    leaf = build(leaf_name, ca_name, leaf_key, ca_key, False)
    return intermediate, leaf, leaf_key


def test_identity_signed_by_a_citizen_key_under_a_trusted_intermediate_is_untrusted(
    ec_pki,
) -> None:
    # A citizen holds the signature key of their own card: trusting the Citizen CA would
    # let them sign any identity. Only direct issuance by a root counts.
    intermediate, leaf, leaf_key = _intermediate_and_leaf(ec_pki)
    forger = dataclasses.replace(ec_pki, rrn_key=leaf_key, rrn_certificate=leaf)
    forged = _card(forger)
    result = verify_files(forged, [ec_pki.root_certificate, intermediate])
    assert result.status == V.UNTRUSTED_ROOT
    assert verify_files(forged, [intermediate]).status == V.UNTRUSTED_ROOT


def test_intermediate_in_the_trust_directory_is_named(tmp_path, ec_pki) -> None:
    intermediate, _, _ = _intermediate_and_leaf(ec_pki)
    ec_pki.write_trust_dir(tmp_path)
    (tmp_path / "citizen-ca.pem").write_bytes(intermediate.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ConfigurationError, match=r"citizen-ca\.pem is not a root"):
        load_trusted_roots(tmp_path)


@needs_specimens
def test_specimen_citizen_ca_is_refused_as_a_trusted_root(tmp_path) -> None:
    (tmp_path / "Alice_CACertificate.tlv").write_bytes(
        (SPECIMENS / "Alice_CACertificate.tlv").read_bytes()
    )
    with pytest.raises(ConfigurationError, match=r"Alice_CACertificate\.tlv is not a root"):
        load_trusted_roots(tmp_path)


# --- random bytes: always an outcome, never the unexpected-error path ---------------------


@pytest.fixture(scope="module")
def good_cards(rsa_pki, ec_pki) -> list[CardFiles]:
    return [_card(rsa_pki), _card(ec_pki, applet_version=0x18)]


_FILES = ["identity", "identity_signature", "address", "address_signature", "rrn_certificate"]


@settings(max_examples=60, deadline=None)
@given(
    which=st.sampled_from(_FILES),
    kind=st.integers(0, 1),
    data=st.one_of(
        st.binary(max_size=600), st.builds(lambda n: b"\x30\x82" + bytes(n), st.integers(0, 40))
    ),
)
def test_any_bytes_in_any_file_give_a_planned_outcome(good_cards, which, kind, data) -> None:
    card = dataclasses.replace(good_cards[kind], **{which: data})
    root = good_cards[kind].root_certificate
    assert root is not None
    result = verify_files(card, [load_certificate(root)], check_photo=True)
    assert result.status in (V.BAD_SIGNATURE, V.NOT_CHECKED), result
    assert result.reason and not result.reason.startswith("verification failed")
