"""read_card over the in-memory BELPIC card: what is read, what it costs, what goes wrong."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from hardware.eid.apdu import CardSession
from hardware.eid.base import ReaderErrorKind, VerificationStatus
from hardware.eid.belpic import BelpicCard, CardFaults
from hardware.eid.cardfiles import load_specimen
from hardware.eid.cardmaker import TestPki, make_card
from hardware.eid.cardread import (
    CERT_PREFIX_LENGTH,
    CardReadError,
    CertificateCache,
    read_card,
)
from hardware.eid.simulated import card_transmit
from hardware.eid.verify import der_length_trim

SPECIMENS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "eid"
NATIONAL_NUMBER = "71010112345"  # not a real person's number (tests hold it in memory only)


@pytest.fixture(scope="module")
def rsa_pki() -> TestPki:
    return TestPki.create("rsa")


@pytest.fixture(scope="module")
def ec_pki() -> TestPki:
    return TestPki.create("ec")


@pytest.fixture(scope="module")
def other_pki() -> TestPki:
    return TestPki.create("rsa", name="somebody else")


def card(pki: TestPki, **overrides: object):
    fields = {
        "national_number": NATIONAL_NUMBER,
        "given_names": "Anna Maria",
        "surname": "Peeters",
        "card_number": "592000123456",
    }
    fields.update(overrides)
    return make_card(pki, **fields)  # type: ignore[arg-type]


def read(files, *, roots=(), faults=None, **kwargs):
    """Read ``files`` from a fresh in-memory card; returns (event, session)."""
    belpic = BelpicCard(files, faults=faults)
    session = CardSession(card_transmit(belpic))
    event = read_card(session, belpic.atr, trusted_roots=list(roots), **kwargs)
    return event, session


def test_rsa_card_is_read_and_verified(rsa_pki: TestPki) -> None:
    files = card(rsa_pki, street_and_number="Kerkstraat 7", postal_code="9000")
    event, _ = read(files, roots=[rsa_pki.root_certificate], reader="r1")
    assert event.reader == "r1"
    assert event.identity.surname == "Peeters"
    assert event.identity.given_names == "Anna Maria"
    assert event.identity.national_number == NATIONAL_NUMBER
    assert event.identity.card_number == "592000123456"
    assert event.address is not None
    assert (event.address.street_and_number, event.address.postal_code) == ("Kerkstraat 7", "9000")
    assert event.verification.status is VerificationStatus.VERIFIED
    assert event.card.atr == files.atr
    assert event.card.applet_version == "1.7"
    assert event.card.chip_serial and len(event.card.chip_serial) == 16
    assert event.photo is None
    # Identity, address, two signatures and the certificate: ~2 KB, never the photo.
    assert event.timing.bytes_read < len(files.photo or b"") + 200
    assert 6 <= event.timing.apdus <= 25
    assert event.timing.ms >= 0


def test_ec_18_card_is_read_and_verified(ec_pki: TestPki) -> None:
    files = card(ec_pki, applet_version=0x18)
    event, _ = read(files, roots=[ec_pki.root_certificate])
    assert event.verification.status is VerificationStatus.VERIFIED
    assert "ECDSA" in (event.verification.algorithm or "")
    assert event.card.applet_version == "1.8"


def test_another_root_is_untrusted(rsa_pki: TestPki, other_pki: TestPki) -> None:
    event, _ = read(card(rsa_pki), roots=[other_pki.root_certificate])
    assert event.verification.status is VerificationStatus.UNTRUSTED_ROOT


def test_tampered_identity_is_a_bad_signature(rsa_pki: TestPki) -> None:
    files = card(rsa_pki, surname="Peeters")
    tampered = files.identity.replace(b"Peeters", b"Peeterz")
    event, _ = read(dataclasses.replace(files, identity=tampered), roots=[rsa_pki.root_certificate])
    assert event.identity.surname == "Peeterz"
    assert event.verification.status is VerificationStatus.BAD_SIGNATURE


def test_expired_card_is_still_read(rsa_pki: TestPki) -> None:
    files = card(rsa_pki, validity_begin=dt.date(2010, 1, 1), validity_end=dt.date(2020, 1, 1))
    event, _ = read(files, roots=[rsa_pki.root_certificate])
    assert event.identity.validity_end == dt.date(2020, 1, 1)
    assert event.verification.status is VerificationStatus.VERIFIED


def test_photo_only_when_asked(rsa_pki: TestPki) -> None:
    files = card(rsa_pki)
    without, _ = read(files, roots=[rsa_pki.root_certificate])
    with_photo, _ = read(files, roots=[rsa_pki.root_certificate], read_photo=True)
    assert without.photo is None
    assert with_photo.photo == files.photo
    assert "photo matches" in with_photo.verification.reason
    photo_size = len(files.photo or b"")
    assert with_photo.timing.bytes_read - without.timing.bytes_read >= photo_size


def test_specimen_rsa_card() -> None:
    if not SPECIMENS.is_dir():
        pytest.skip(f"Belgian eID specimen files not found at {SPECIMENS} (see its NOTICE.md)")
    files = load_specimen(SPECIMENS, "rsa")
    assert files.root_certificate is not None
    root = x509.load_der_x509_certificate(files.root_certificate)
    event, _ = read(files, roots=[root])
    assert event.identity.card_number == "000000122157"
    assert event.identity.given_names == "Alice Geldigekaart"
    assert event.address is not None and event.address.municipality == "Antwerpen"
    assert event.verification.status is VerificationStatus.VERIFIED
    assert "SHA-1" in (event.verification.algorithm or "")


def test_cache_makes_the_second_card_cheaper(rsa_pki: TestPki) -> None:
    cache = CertificateCache()
    roots = [rsa_pki.root_certificate]
    first, _ = read(card(rsa_pki, card_number="592000000001"), roots=roots, cert_cache=cache)
    second, _ = read(card(rsa_pki, card_number="592000000002"), roots=roots, cert_cache=cache)
    assert len(cache) == 1
    assert first.verification.status is second.verification.status is VerificationStatus.VERIFIED
    assert second.identity.card_number == "592000000002"
    assert second.timing.apdus < first.timing.apdus
    # The second card's certificate is not read at all (the first read it up to its
    # DER length, without the zero padding).
    certificate = card(rsa_pki).rrn_certificate
    assert certificate is not None
    assert second.timing.bytes_read <= first.timing.bytes_read - len(der_length_trim(certificate))


def test_a_cached_certificate_that_does_not_fit_is_read_again(
    rsa_pki: TestPki, other_pki: TestPki
) -> None:
    files = card(rsa_pki)
    assert files.rrn_certificate is not None
    key = CertificateCache.fingerprint(files.rrn_certificate[:CERT_PREFIX_LENGTH])
    cache = CertificateCache()
    cache.put(key, other_pki.rrn_certificate_der)  # same first chunk, another key
    event, _ = read(files, roots=[rsa_pki.root_certificate], cert_cache=cache)
    assert event.verification.status is VerificationStatus.VERIFIED
    # the stale entry was replaced by the card's own certificate (padding not read)
    assert cache.get(key) == der_length_trim(files.rrn_certificate)
    cheap, _ = read(files, roots=[rsa_pki.root_certificate], cert_cache=cache)
    assert cheap.timing.apdus < event.timing.apdus


def test_no_trusted_roots_still_uses_the_cache(rsa_pki: TestPki) -> None:
    cache = CertificateCache()
    first, _ = read(card(rsa_pki), cert_cache=cache)
    second, _ = read(card(rsa_pki), cert_cache=cache)
    assert second.verification.status is VerificationStatus.UNTRUSTED_ROOT
    assert second.timing.apdus < first.timing.apdus


def test_the_first_card_costs_no_more_than_without_a_cache(
    rsa_pki: TestPki, other_pki: TestPki
) -> None:
    files = card(rsa_pki)
    plain, _ = read(files, roots=[rsa_pki.root_certificate])
    cache = CertificateCache()
    first, _ = read(files, roots=[rsa_pki.root_certificate], cert_cache=cache)
    assert (first.timing.apdus, first.timing.bytes_read) == (
        plain.timing.apdus,
        plain.timing.bytes_read,
    )
    # A card of another family: its first chunk is unknown, its certificate read in full.
    other, _ = read(card(other_pki), roots=[other_pki.root_certificate], cert_cache=cache)
    assert other.verification.status is VerificationStatus.VERIFIED
    assert len(cache) == 2


def test_nothing_personal_in_the_logs(rsa_pki: TestPki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    files = card(rsa_pki)
    read(files, roots=[rsa_pki.root_certificate], read_photo=True)
    with pytest.raises(CardReadError):
        read(files, faults=CardFaults(remove_after_apdus=5))
    assert NATIONAL_NUMBER not in caplog.text
    assert "Peeters" not in caplog.text and "Anna" not in caplog.text


def test_not_activated_card(rsa_pki: TestPki) -> None:
    with pytest.raises(CardReadError) as caught:
        read(card(rsa_pki), faults=CardFaults(not_activated=True))
    assert caught.value.kind is ReaderErrorKind.NOT_ACTIVATED


def test_a_card_without_identity_file_is_not_an_eid() -> None:
    session = CardSession(lambda command: (b"", 0x6A82))  # a bank card: no such files
    with pytest.raises(CardReadError) as caught:
        read_card(session, bytes.fromhex("3B6800000073C84013009000"), trusted_roots=[])
    assert caught.value.kind is ReaderErrorKind.NOT_AN_EID


def test_a_foreign_card_answering_6d00_is_not_an_eid() -> None:
    session = CardSession(lambda command: (b"", 0x6D00))
    with pytest.raises(CardReadError) as caught:
        read_card(session, bytes.fromhex("3B6800000073C84013009000"), trusted_roots=[])
    assert caught.value.kind is ReaderErrorKind.NOT_AN_EID


def test_malformed_identity_is_a_read_failure_without_personal_data(rsa_pki: TestPki) -> None:
    files = card(rsa_pki)
    # Cut inside the given names: the national number is in the file, not in the error.
    cut = files.identity[: files.identity.index(b"Anna") + 2]
    with pytest.raises(CardReadError) as caught:
        read(dataclasses.replace(files, identity=cut))
    assert caught.value.kind is ReaderErrorKind.READ_FAILED
    assert NATIONAL_NUMBER not in str(caught.value)
    assert "Peeters" not in str(caught.value)


def test_mute_card(rsa_pki: TestPki) -> None:
    with pytest.raises(CardReadError) as caught:
        read(card(rsa_pki), faults=CardFaults(mute=True))
    assert caught.value.kind is ReaderErrorKind.MUTE_CARD


def test_a_spurious_6b00_mid_file_is_retried(rsa_pki: TestPki) -> None:
    files = card(rsa_pki)
    clean, _ = read(files, roots=[rsa_pki.root_certificate])
    # The last APDUs read the certificate chunk by chunk: the one before the last is mid-file.
    faults = CardFaults(spurious_6b00_at={clean.timing.apdus - 1})
    event, _ = read(files, roots=[rsa_pki.root_certificate], faults=faults)
    assert event.verification.status is VerificationStatus.VERIFIED
    assert event.timing.apdus > clean.timing.apdus  # the re-select and the retry


@pytest.mark.parametrize("after", [0, 1, 3, 6, 9])
def test_removal_mid_read(rsa_pki: TestPki, after: int) -> None:
    files = card(rsa_pki)
    with pytest.raises(CardReadError) as caught:
        read(files, roots=[rsa_pki.root_certificate], faults=CardFaults(remove_after_apdus=after))
    assert caught.value.kind is ReaderErrorKind.CARD_REMOVED
    # Reinserted, the same card reads cleanly.
    event, _ = read(files, roots=[rsa_pki.root_certificate])
    assert event.verification.status is VerificationStatus.VERIFIED


def test_cache_is_bounded() -> None:
    cache = CertificateCache(max_entries=2)
    for n in range(3):
        cache.put(str(n), bytes([n]))
    assert len(cache) == 2 and cache.get("0") is None and cache.get("2") == b"\x02"
