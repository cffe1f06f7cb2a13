"""Identity and address files: the shared specimen cards and hand-made TLV.

The specimen files (``../shared/testdata/eid``) were produced by others; the expected
values below were read off those files by hand, so a parser that drifts from the real
card format fails here.
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import date
from pathlib import Path

import pytest

from hardware.eid.identity import (
    DOCUMENT_TYPES,
    Address,
    Identity,
    PartialDate,
    document_type_name,
    identity_json,
    mask_national_number,
    national_number_valid,
    parse_address,
    parse_identity,
    parse_tlv,
)
from hardware.errors import CardDataError

SPECIMENS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "eid"


def specimen(name: str) -> bytes:
    """A specimen file's bytes (base64 ``.txt`` files decoded); skip when absent."""
    path = SPECIMENS / name
    if not path.is_file():
        pytest.skip(f"specimen eID files not found at {SPECIMENS} (a fresh clone has none)")
    data = path.read_bytes()
    return base64.b64decode(data) if name.endswith(".txt") else data


def tlv(*fields: tuple[int, bytes]) -> bytes:
    """Encode TLV the way the card does: FF-run lengths (independent of cardmaker)."""
    out = bytearray()
    for tag, value in fields:
        out.append(tag)
        length = len(value)
        while length >= 255:
            out.append(0xFF)
            length -= 255
        out.append(length)
        out += value
    return bytes(out)


MINIMAL = [
    (0x01, b"592123456789"),
    (0x06, b"71715100070"),
    (0x07, b"Peeters"),
    (0x08, b"Jan Pieter"),
    (0x0F, b"1"),
]


# --- the specimen identity files -------------------------------------------------------

# file -> expected fields (read off the files with a hex dump)
SPECIMEN_IDENTITIES: dict[str, dict[str, object]] = {
    "Alice_Identity.tlv": {
        "card_number": "000000122157",
        "validity_begin": date(2009, 7, 23),
        "validity_end": date(2014, 7, 23),
        "issuing_municipality": "Antwerpen",
        "surname": "SPECIMEN",
        "given_names": "Alice Geldigekaart",
        "third_initial": "A",
        "nationality": "BELG",
        "birth_place": "Hamont-Achel",
        "birth_date": PartialDate(1971, 1, 1),
        "sex": "V",
        "document_type": "1",
        "special_status": "0",
        "photo_hash": bytes.fromhex("28f3ec532102b0ccd93c7bdf58ed83400a899790"),
        "chip_number": bytes.fromhex("534c494e336600296cff293b2a122219"),
    },
    "test-identity.tlv": {
        "card_number": "000000128019",
        "validity_begin": date(2010, 4, 30),
        "validity_end": date(2015, 4, 30),
        "given_names": "Alice Geldigekaart",
        "birth_date": PartialDate(1971, 1, 1),
    },
    "id-alice.tlv": {
        "card_number": "000000226635",
        "issuing_municipality": "Certipost Specimen",
        "given_names": "Alice Geldigekaart2266",
        "nationality": "Belg",
    },
    "id-alice-2.tlv": {
        "card_number": "000000012629",
        "birth_date": PartialDate(1971, 1, 1),  # printed "1 JAN 1971": one-digit day
        "validity_end": date(2008, 10, 24),
    },
    "id-foreigner.tlv": {
        "card_number": "B021329690",
        "surname": "Mortensen",
        "given_names": "Per",
        "third_initial": None,
        "nationality": "Denemarken",
        "birth_date": PartialDate(1969, 3, 24),  # 24 MAAR 1969
        "sex": "M",
        "document_type": "16",
        "duplicate": "00",
        "special_organisation": None,
        "member_of_family": False,
    },
    "idFile-foreigner.dat": {
        "card_number": "288231759",
        "surname": "Akhurst D'Heer",
        "given_names": "Mergo Celie",
        "nationality": "Japon",
        "birth_date": PartialDate(2003, 9, 7),  # 07 SEPT 2003
        "document_type": "11",
        "duplicate": "01",
        "special_organisation": "5",
        "member_of_family": True,
        "date_and_country_of_protection": None,
        "work_permit": "9",
        "employer_vat_1": None,
        "photo_hash": bytes.fromhex(
            "13a24cd05ad37ae98fda95ce5e027e9e1b125e131e42e97f9e2881ab7b447f34"
        ),
    },
    "h-card.tlv": {
        "card_number": "B000193087",
        "issuing_municipality": "Genk",
        "given_names": "Stanislava Ludmilova",
        "birth_date": PartialDate(1980, 3, 8),
        "document_type": "19",
        "member_of_family": True,
    },
    "dateandcountry.tlv": {
        "card_number": "181711211",
        "birth_date": PartialDate(1996, 8, 13),  # 13.AUG. 1996
        "document_type": "14",
        "date_and_country_of_protection": "13.08.2014-IT",
        "member_of_family": True,
    },
    "duplicate-02.tlv": {
        "card_number": "B000197939",
        "nationality": "Südafrika",
        "birth_place": "Radolfzell am Bodensee",
        "birth_date": PartialDate(1997, 12, 22),  # 22.DEZ. 1997
        "sex": "W",
        "duplicate": "02",
        "special_organisation": "5",
        "validity_end": date(2013, 11, 17),
    },
    "extended-minority.tlv": {
        "given_names": "Caroline Expirée2466",
        "birth_place": "Hélécine",
        "birth_date": PartialDate(1979, 9, 29),
        "noble_condition": "Comtesse",
        "special_status": "2",
        "sex": "F",
    },
    "white-cane.tlv": {
        "given_names": "Robert Suspendu0115",
        "birth_place": "Ottignies Louvain-la-neuve",
        "special_status": "1",
        "noble_condition": None,
    },
    "yellow-cane.tlv": {
        "given_names": "Erwin Junior2662",
        "birth_date": PartialDate(1992, 12, 31),
        "special_status": "4",
    },
    "test-eid-v17-ec__identity.tlv": {
        "card_number": "000001241600",
        "validity_begin": date(2022, 7, 5),
        "validity_end": date(2032, 7, 5),
        "issuing_municipality": "Brussel",
        "surname": "Specimen",
        "given_names": "Nora Angèle",
        "birth_date": PartialDate(2001, 5, 3),  # 03 MEI 2001
        "photo_hash": bytes.fromhex(
            "476a2c4072f5fb07642e256d5edfd79c6a675fc69262d327f9979051517b0801"
        ),
    },
    "new-eid.txt": {
        "card_number": "590971945581",
        "surname": "Dubuisson",
        "given_names": "Alain Guy",
        "birth_date": PartialDate(1975, 4, 26),  # "26 AVR  1975", two spaces
        "document_type": "01",
        # the hash starts with a 00 byte: not padding inside a value
        "photo_hash": bytes.fromhex("0016284738fc1588ab22507a9809511fb922eaf3"),
    },
    "old-eid.txt": {
        "card_number": "590393346847",
        "given_names": "Wouter André",
        "issuing_municipality": "Dilbeek",
        "birth_date": PartialDate(1981, 12, 21),  # "21 DEC  1981"
    },
}

# The national numbers of the specimen cards (test data, no real person).
SPECIMEN_NUMBERS = {
    "Alice_Identity.tlv": "71715100070",
    "id-foreigner.tlv": "69032453125",
    "idFile-foreigner.dat": "03090700141",  # born 2003: check digits with the "2" prefix
    "test-eid-v17-ec__identity.tlv": "01050399963",  # born 2001
    "yellow-cane.tlv": "92828100076",
}


@pytest.mark.parametrize("name", sorted(SPECIMEN_IDENTITIES))
def test_specimen_identity_fields(name: str) -> None:
    identity = parse_identity(specimen(name))
    for field, expected in SPECIMEN_IDENTITIES[name].items():
        assert getattr(identity, field) == expected, field
    assert national_number_valid(identity.national_number)
    assert identity.chip_number is not None and len(identity.chip_number) == 16
    assert identity.validity_begin < identity.validity_end


@pytest.mark.parametrize("name", sorted(SPECIMEN_NUMBERS))
def test_specimen_national_numbers(name: str) -> None:
    assert parse_identity(specimen(name)).national_number == SPECIMEN_NUMBERS[name]


ADDRESSES = {
    "Alice_Address.tlv": ("Meirplaats 1 bus 1", "2000", "Antwerpen"),
    "test-address.tlv": ("Meirplaats 1 bus 1", "2000", "Antwerpen"),
    "address-alice.tlv": ("Meirplaats 1 bus 1", "2000", "Antwerpen"),
    # the card pads the street with spaces: they are not part of the address
    "address-fcorneli.tlv": ("Elfbunderslaan 76", "1650", "Beersel"),
    "test-eid-v17-ec__address.tlv": ("Specimenstraat 12", "1000", "Brussel"),
}


@pytest.mark.parametrize("name", sorted(ADDRESSES))
def test_specimen_addresses(name: str) -> None:
    address = parse_address(specimen(name))
    street, postal_code, municipality = ADDRESSES[name]
    assert (address.street_and_number, address.postal_code, address.municipality) == (
        street,
        postal_code,
        municipality,
    )


def test_specimen_json_object() -> None:
    identity = parse_identity(specimen("Alice_Identity.tlv"))
    address = parse_address(specimen("Alice_Address.tlv"))
    out = identity_json(identity, address)
    assert json.loads(json.dumps(out)) == out  # plain JSON types only
    assert out == {
        "card_number": "000000122157",
        "chip_number": "534c494e336600296cff293b2a122219",
        "validity_begin": "2009-07-23",
        "validity_end": "2014-07-23",
        "issuing_municipality": "Antwerpen",
        "national_number": "*******0070",
        "surname": "SPECIMEN",
        "given_names": "Alice Geldigekaart",
        "third_initial": "A",
        "nationality": "BELG",
        "birth_place": "Hamont-Achel",
        "birth_date": "1971-01-01",
        "sex": "V",
        "noble_condition": None,
        "document_type": "1",
        "document_type_name": "eID",
        "special_status": "0",
        "photo_hash": "28f3ec532102b0ccd93c7bdf58ed83400a899790",
        "duplicate": None,
        "special_organisation": None,
        "member_of_family": False,
        "date_and_country_of_protection": None,
        "address": {
            "street_and_number": "Meirplaats 1 bus 1",
            "postal_code": "2000",
            "municipality": "Antwerpen",
        },
    }
    shown = identity_json(identity, None, show_national_number=True)
    assert shown["national_number"] == "71715100070"
    assert shown["address"] is None


def test_specimen_foreigner_json() -> None:
    out = identity_json(parse_identity(specimen("dateandcountry.tlv")), None)
    assert out["document_type"] == "14"
    assert out["document_type_name"] == "D card"
    assert out["member_of_family"] is True
    assert out["date_and_country_of_protection"] == "13.08.2014-IT"
    assert out["national_number"] == "*******9118"


# --- hand-made TLV ---------------------------------------------------------------------


def test_ff_run_lengths() -> None:
    for size in (0, 1, 254, 255, 256, 509, 510, 600):
        value = bytes(range(256)) * 3
        data = tlv((0x05, value[:size]), (0x07, b"x"))
        assert parse_tlv(data) == [(0x05, value[:size]), (0x07, b"x")]
    assert parse_tlv(b"\x05\xff\x00" + b"a" * 255) == [(0x05, b"a" * 255)]
    assert parse_tlv(b"\x05\xff\xff\x02" + b"b" * 512) == [(0x05, b"b" * 512)]


def test_long_field_in_identity() -> None:
    long_place = "Sint-" + "a" * 300
    identity = parse_identity(tlv(*MINIMAL, (0x0B, long_place.encode())))
    assert identity.birth_place == long_place


def test_version_tag_and_padding() -> None:
    data = tlv((0x00, b"\x01\x02"), *MINIMAL) + b"\x00" * 40
    fields = parse_tlv(data)
    assert fields[0] == (0x00, b"\x01\x02")
    assert [tag for tag, _ in fields] == [0, 1, 6, 7, 8, 15]
    assert parse_identity(data).version == b"\x01\x02"
    # a 00 tag after the start ends the file, even with bytes after it
    assert parse_tlv(tlv((0x01, b"a")) + b"\x00\x05junk!") == [(0x01, b"a")]
    address = parse_address(
        tlv((0x00, b"\x00\x01"), (0x01, b"Kerkstraat 1"), (0x02, b"9000"), (0x03, b"Gent"))
        + b"\x00" * 60
    )
    assert address == Address("Kerkstraat 1", "9000", "Gent", version=b"\x00\x01")


def test_unknown_tags_are_skipped() -> None:
    data = tlv(*MINIMAL[:2], (0x42, b"\xff\xfe not text"), *MINIMAL[2:], (0x99, b"new"))
    identity = parse_identity(data)
    assert identity.surname == "Peeters"
    assert identity.document_type == "1"


def test_minimal_identity_defaults() -> None:
    identity = parse_identity(tlv(*MINIMAL))
    assert identity.birth_date is None
    assert identity.photo_hash is None
    assert identity.member_of_family is False
    assert identity.validity_end is None
    out = identity_json(identity, None)
    assert out["birth_date"] is None and out["chip_number"] is None
    assert out["address"] is None


def test_all_optional_tags() -> None:
    identity = parse_identity(
        tlv(
            *MINIMAL,
            (0x0C, b"1975"),
            (0x14, b""),
            (0x16, b"A"),
            (0x17, b"BE0123456789"),
            (0x18, b"BE0987654321"),
            (0x19, b"R-17"),
            (0x1A, bytes(48)),
            (0x1B, b"brexit 1"),
            (0x1C, b"brexit 2"),
            (0x1D, b"card A 1"),
            (0x1E, b"card A 2"),
        )
    )
    assert identity.birth_date == PartialDate(1975)
    assert identity_json(identity, None)["birth_date"] == "1975"
    assert identity.member_of_family is True
    assert (identity.work_permit, identity.employer_vat_1, identity.employer_vat_2) == (
        "A",
        "BE0123456789",
        "BE0987654321",
    )
    assert identity.regional_file_number == "R-17"
    assert identity.basic_key_hash == bytes(48)
    assert identity.brexit_mention_2 == "brexit 2"
    assert identity.card_a_mention_1 == "card A 1"


def test_partial_birth_date_in_json() -> None:
    identity = parse_identity(tlv(*MINIMAL, (0x0C, b"   MEI 1969")))
    assert identity.birth_date == PartialDate(1969, 5, None)
    assert identity_json(identity, None)["birth_date"] == "1969-05"


def test_unreadable_birth_date_is_none_not_an_error() -> None:
    assert parse_identity(tlv(*MINIMAL, (0x0C, b"?? ??? ????"))).birth_date is None


@pytest.mark.parametrize("missing", [0x01, 0x06, 0x07, 0x08, 0x0F])
def test_missing_mandatory_tag(missing: int) -> None:
    fields = [(tag, value) for tag, value in MINIMAL if tag != missing]
    with pytest.raises(CardDataError, match="lacks"):
        parse_identity(tlv(*fields))


def test_missing_address_tag() -> None:
    with pytest.raises(CardDataError, match="postal code"):
        parse_address(tlv((0x01, b"Kerkstraat 1"), (0x03, b"Gent")))


def test_invalid_utf8_names_the_tag() -> None:
    data = tlv(*MINIMAL[:2], (0x07, b"Pe\xe9ters"), *MINIMAL[3:])
    with pytest.raises(CardDataError, match=r"surname \(tag 0x07\).*UTF-8") as info:
        parse_identity(data)
    assert "Pe" not in str(info.value)
    with pytest.raises(CardDataError, match="tag 0x03"):
        parse_address(tlv((0x01, b"a"), (0x02, b"1000"), (0x03, b"\xc3")))


def test_bad_validity_date() -> None:
    with pytest.raises(CardDataError, match=r"validity end \(tag 0x04\)"):
        parse_identity(tlv(*MINIMAL, (0x04, b"31.02.2030")))
    with pytest.raises(CardDataError, match=r"validity begin \(tag 0x03\)"):
        parse_identity(tlv(*MINIMAL, (0x03, b"2030-01-01")))
    assert parse_identity(tlv(*MINIMAL, (0x04, b""))).validity_end is None


@pytest.mark.parametrize("tag", [0x01, 0x06, 0x0F])
def test_empty_mandatory_text(tag: int) -> None:
    fields = [(t, b"" if t == tag else v) for t, v in MINIMAL]
    with pytest.raises(CardDataError, match=f"tag 0x{tag:02X}.*empty"):
        parse_identity(tlv(*fields))


def test_empty_names_are_kept() -> None:
    fields = [(t, b"" if t == 0x07 else v) for t, v in MINIMAL]
    assert parse_identity(tlv(*fields)).surname == ""


@pytest.mark.parametrize(
    "data",
    [
        b"\x01",  # tag without length
        b"\x01\xff",  # length run cut off
        b"\x01\x05abc",  # value shorter than its length
        b"\x01\xff\xff\x10" + b"a" * 100,  # oversized FF-run length
    ],
)
def test_truncated_tlv(data: bytes) -> None:
    with pytest.raises(CardDataError, match="tag 0x01"):
        parse_tlv(data)


def test_empty_file() -> None:
    assert parse_tlv(b"") == []
    with pytest.raises(CardDataError):
        parse_identity(b"")
    with pytest.raises(CardDataError):
        parse_identity(bytes(179))  # an all-zero (blank) file


def test_identity_repr_hides_personal_data() -> None:
    identity = parse_identity(tlv(*MINIMAL, (0x0B, b"Hasselt")))
    for text in (repr(identity), str(identity), f"{identity}"):
        assert "71715100070" not in text
        assert "Peeters" not in text and "Hasselt" not in text
        assert "592123456789" in text  # the card number identifies the card in logs
    assert isinstance(identity, Identity)


# --- document types, national numbers ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("1", "eID"),
        ("01", "eID"),
        ("6", "kids ID"),
        ("7", "bootstrap card"),
        ("8", "habilitation card"),
        ("11", "A card"),
        ("12", "B card"),
        ("16", "E+ card"),
        ("18", "F+ card"),
        ("19", "H card"),
        ("23", "N card"),
        ("27", "K card"),
        ("28", "L card"),
        ("31", "EU card"),
        ("32", "EU+ card"),
        ("61", "kids EU card"),
        ("69", "kids M card"),
    ],
)
def test_document_type_names(code: str, name: str) -> None:
    assert document_type_name(code) == name


def test_document_type_table_is_complete() -> None:
    expected = {1, 6, 7, 8, *range(11, 24), 27, 28, *range(31, 37), *range(61, 70)}
    assert set(DOCUMENT_TYPES) == expected
    assert len(set(DOCUMENT_TYPES.values())) == len(DOCUMENT_TYPES)  # no two alike
    assert document_type_name("42") == "unknown document type 42"
    assert document_type_name("") == "unknown document type"
    assert document_type_name("x1") == "unknown document type"


@pytest.mark.parametrize(
    "number",
    [
        "71715100070",
        "71.71.51-000.70",
        "71 71 51 000 70",
        "03090700141",  # born 2003: 97 - (2030907001 mod 97) = 41
        "01050399963",
        "00010100697",  # 2000101006 mod 97 = 0, so the check is 97, not 00
        "85010101697",  # the same for a birth in 1985
    ],
)
def test_valid_national_numbers(number: str) -> None:
    assert national_number_valid(number)


@pytest.mark.parametrize(
    "number",
    [
        "71715100071",
        "7171510007",
        "717151000700",
        "7171510007a",
        "",
        "03090700140",
        "00010100600",  # check 00 where 97 is meant
        "٧١٧١٥١٠٠٠٧٠",  # Arabic-Indic digits are not card digits
    ],
)
def test_invalid_national_numbers(number: str) -> None:
    assert not national_number_valid(number)


def test_mask_national_number() -> None:
    assert mask_national_number("71715100070") == "*******0070"
    assert mask_national_number("71.71.51-000.70") == "*******0070"
    assert mask_national_number("123") == "***"


def test_missing_specimen_folder_skips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys.modules[__name__], "SPECIMENS", tmp_path / "absent")
    with pytest.raises(pytest.skip.Exception, match="specimen eID files not found"):
        specimen("Alice_Identity.tlv")
