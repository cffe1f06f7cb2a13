"""The test PKI and generated cards: files shaped like a real card's, stored and loaded back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from hardware.eid.cardfiles import ATR_18, CardFiles, load_card_dir, load_specimen, save_card_dir
from hardware.eid.cardmaker import TestPki, encode_tlv, make_card, make_photo
from hardware.eid.identity import parse_identity, parse_tlv
from hardware.eid.verify import der_length_trim, load_certificate, load_trusted_roots
from hardware.errors import ConfigurationError

NATIONAL_NUMBER = "71715100070"


def _tlv(data: bytes) -> dict[int, bytes]:
    """The identity parser's view of a file."""
    return dict(parse_tlv(data))


@pytest.fixture(scope="module")
def rsa_pki() -> TestPki:
    return TestPki.create("rsa")


@pytest.fixture(scope="module")
def ec_pki() -> TestPki:
    return TestPki.create("ec")


def _card(pki: TestPki, **kwargs) -> CardFiles:
    return make_card(
        pki, national_number=NATIONAL_NUMBER, given_names="Alice", surname="Peeters", **kwargs
    )


@pytest.mark.parametrize(
    ("length", "encoded_length"),
    [
        (0, b"\x00"),
        (254, b"\xfe"),
        (255, b"\xff\x00"),
        (300, b"\xff\x2d"),
        (510, b"\xff\xff\x00"),
    ],
)
def test_tlv_lengths_of_255_and_more_are_ff_runs(length: int, encoded_length: bytes) -> None:
    value = bytes(range(256)) * 2
    encoded = encode_tlv([(0x0B, value[:length])])
    assert encoded == b"\x0b" + encoded_length + value[:length]


def test_tlv_300_byte_value_reads_back_between_other_fields() -> None:
    long_value = b"x" * 300
    encoded = encode_tlv([(0x01, b"abc"), (0x0B, long_value), (0x0C, b"1971")])
    assert encoded[5:8] == b"\x0b\xff\x2d"
    assert _tlv(encoded) == {0x01: b"abc", 0x0B: long_value, 0x0C: b"1971"}


@pytest.mark.parametrize(("kind", "version"), [("rsa", 0x17), ("ec", 0x17), ("ec", 0x18)])
def test_card_directory_round_trip(
    tmp_path, rsa_pki: TestPki, ec_pki: TestPki, kind: str, version: int
) -> None:
    pki = rsa_pki if kind == "rsa" else ec_pki
    card = _card(pki, applet_version=version)
    save_card_dir(card, tmp_path / "card")
    assert load_card_dir(tmp_path / "card") == card


def test_round_trip_without_address_leaves_no_stale_files(tmp_path, rsa_pki: TestPki) -> None:
    save_card_dir(_card(rsa_pki), tmp_path)
    card = _card(rsa_pki, with_address=False)
    save_card_dir(card, tmp_path)
    loaded = load_card_dir(tmp_path)
    assert loaded == card
    assert loaded.address is None and loaded.address_signature is None


def test_load_card_dir_names_the_missing_identity(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match=r"identity\.tlv"):
        load_card_dir(tmp_path)


def test_identity_file_holds_the_given_fields(rsa_pki: TestPki) -> None:
    photo = make_photo("someone")
    card = _card(
        rsa_pki,
        photo=photo,
        validity_begin=dt.date(2020, 2, 29),
        document_type="6",
        birth_date_text="26 AVR  1975",
    )
    fields = _tlv(card.identity)
    assert 0x00 not in fields  # 1.7 cards have no version tag
    assert fields[0x06] == NATIONAL_NUMBER.encode()
    assert fields[0x03] == b"29.02.2020" and fields[0x04] == b"28.02.2030"
    assert fields[0x0F] == b"6"
    assert fields[0x0C] == b"26 AVR  1975"
    assert card.photo == photo
    identity = parse_identity(card.identity)
    assert identity.national_number == NATIONAL_NUMBER
    assert (identity.surname, identity.given_names) == ("Peeters", "Alice")
    assert identity.validity_end == dt.date(2030, 2, 28)
    assert identity.birth_date is not None and identity.birth_date.iso() == "1975-04-26"


@pytest.mark.parametrize(
    ("kind", "version", "rsa_hash", "hash_length"),
    [("rsa", 0x17, "sha1", 20), ("rsa", 0x17, "sha256", 32), ("ec", 0x17, "sha1", 32),
     ("ec", 0x18, "sha1", 48)],
)  # fmt: skip
def test_photo_hash_algorithm_follows_the_card_generation(
    rsa_pki: TestPki, ec_pki: TestPki, kind: str, version: int, rsa_hash: str, hash_length: int
) -> None:
    pki = rsa_pki if kind == "rsa" else ec_pki
    card = _card(pki, applet_version=version, rsa_hash=rsa_hash)
    assert len(_tlv(card.identity)[0x11]) == hash_length


def test_applet_18_card_looks_like_one(ec_pki: TestPki) -> None:
    card = _card(ec_pki, applet_version=0x18)
    assert card.identity[:1] == b"\x00"  # version tag first
    assert card.atr == ATR_18 and card.applet_version == 0x18
    assert len(card.identity_signature) == 256 and card.identity_signature[0] == 0x30
    assert card.identity_signature.endswith(b"\x00" * 100)  # DER padded like real EC cards


def test_address_file_is_zero_padded_to_121_bytes(ec_pki: TestPki) -> None:
    card = _card(ec_pki, street_and_number="Grote Markt 7", postal_code="9000", municipality="Gent")
    assert card.address is not None and len(card.address) == 121
    assert _tlv(card.address) == {0x01: b"Grote Markt 7", 0x02: b"9000", 0x03: b"Gent"}


def test_certificate_files_are_padded_and_chain_to_a_ca_root(rsa_pki: TestPki) -> None:
    card = _card(rsa_pki)
    assert card.rrn_certificate is not None and card.root_certificate is not None
    assert card.rrn_certificate.endswith(b"\x00" * 40)
    assert len(der_length_trim(card.rrn_certificate)) == len(rsa_pki.rrn_certificate_der)
    root = load_certificate(card.root_certificate)
    rrn = load_certificate(card.rrn_certificate)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not rrn.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert rrn.issuer == root.subject == root.issuer


def test_write_trust_dir_gives_a_loadable_root(tmp_path, ec_pki: TestPki) -> None:
    ec_pki.write_trust_dir(tmp_path)
    assert load_trusted_roots(tmp_path) == [ec_pki.root_certificate]


def test_rsa_pki_cannot_make_an_applet_18_card(rsa_pki: TestPki) -> None:
    with pytest.raises(ConfigurationError, match="EC"):
        _card(rsa_pki, applet_version=0x18)


def test_repr_shows_no_personal_data(rsa_pki: TestPki) -> None:
    card = _card(rsa_pki)
    for text in (repr(card), str(card)):
        assert NATIONAL_NUMBER not in text and "Peeters" not in text
        assert "bytes" in text


SPECIMENS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "eid"


@pytest.mark.parametrize(("kind", "has_root"), [("rsa", True), ("ec", False)])
def test_specimens_map_into_card_files(kind: str, has_root: bool) -> None:
    if not SPECIMENS.is_dir():
        pytest.skip(f"Belgian eID specimen files not found at {SPECIMENS} (see its NOTICE.md)")
    card = load_specimen(SPECIMENS, kind)
    assert parse_identity(card.identity).surname.upper() == "SPECIMEN"
    assert card.photo is not None and card.photo[:2] == b"\xff\xd8"
    assert (card.root_certificate is not None) == has_root
    assert card.applet_version == 0x17
    assert "SPECIMEN" not in repr(card) and "71715100070" not in repr(card)


def test_load_specimen_names_a_missing_folder(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="Alice_Identity"):
        load_specimen(tmp_path, "rsa")
