"""Fuzz the identity/address parsers and the birth-date parser.

Card files come off a chip through a reader that may garble or cut them: the parsers
must answer with a ``CardDataError`` (or None for a birth date), never with another
exception (IndexError, UnicodeDecodeError, ValueError ...).
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.eid.identity import (
    Address,
    Identity,
    PartialDate,
    identity_json,
    parse_address,
    parse_birth_date,
    parse_identity,
    parse_tlv,
)
from hardware.errors import CardDataError

pytestmark = pytest.mark.timeout(60)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encode(fields: list[tuple[int, bytes]]) -> bytes:
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


IDENTITY = encode(
    [
        (0x00, b"\x00\x01"),
        (0x01, b"592123456789"),
        (0x02, bytes(range(16))),
        (0x03, b"01.02.2020"),
        (0x04, b"01.02.2030"),
        (0x05, b"Gent"),
        (0x06, b"71715100070"),
        (0x07, b"Peeters"),
        (0x08, b"Jan Pieter"),
        (0x09, b"K"),
        (0x0A, b"Belg"),
        (0x0B, b"Sint-Niklaas"),
        (0x0C, b"13.AUG. 1996"),
        (0x0D, b"M"),
        (0x0E, b""),
        (0x0F, b"1"),
        (0x10, b"0"),
        (0x11, bytes(20)),
        (0x14, b""),
        (0x15, b"13.08.2014-IT"),
    ]
)
ADDRESS = encode([(0x01, b"Kerkstraat 1"), (0x02, b"9000"), (0x03, b"Gent")]) + bytes(80)


def check_identity(data: bytes) -> None:
    try:
        identity = parse_identity(data)
    except CardDataError:
        return
    assert isinstance(identity, Identity)
    identity_json(identity, None)  # whatever parsed must also serialise


def check_address(data: bytes) -> None:
    with contextlib.suppress(CardDataError):
        assert isinstance(parse_address(data), Address)


def check_tlv(data: bytes) -> None:
    try:
        fields = parse_tlv(data)
    except CardDataError:
        return
    # every field takes at least its tag, a length byte and its value from the data
    assert sum(len(value) + 2 for _, value in fields) <= len(data)
    assert all(tag != 0 for tag, _ in fields[1:])  # only the first tag may be 00


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    check_tlv(data)
    check_identity(data)
    check_address(data)


@FUZZ
@given(st.integers(0, len(IDENTITY)))
def test_truncated_identity(cut: int) -> None:
    check_tlv(IDENTITY[:cut])
    check_identity(IDENTITY[:cut])


@FUZZ
@given(st.integers(0, len(ADDRESS)))
def test_truncated_address(cut: int) -> None:
    check_address(ADDRESS[:cut])


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid file with a few bytes changed, cut or inserted."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "ff", "cut", "insert"]))
        if action == "flip":
            data[index] ^= draw(st.integers(1, 255))
        elif action == "ff":
            data[index] = 0xFF  # a length byte becomes the start of an FF run
        elif action == "cut":
            del data[index : index + draw(st.integers(1, 8))]
        else:
            data[index:index] = draw(st.binary(min_size=1, max_size=8))
        if not data:
            break
    return bytes(data)


@FUZZ
@given(mutated(IDENTITY))
def test_mutated_identity(data: bytes) -> None:
    check_tlv(data)
    check_identity(data)


@FUZZ
@given(mutated(ADDRESS))
def test_mutated_address(data: bytes) -> None:
    check_address(data)


@FUZZ
@given(st.integers(1, 255), st.integers(1, 20), st.integers(0, 254), st.binary(max_size=50))
def test_oversized_lengths(tag: int, ff_run: int, last: int, value: bytes) -> None:
    data = bytes([tag]) + b"\xff" * ff_run + bytes([last]) + value
    with pytest.raises(CardDataError):
        parse_tlv(data)
    with pytest.raises(CardDataError):
        parse_identity(data)


@FUZZ
@given(
    st.sampled_from([0x01, 0x05, 0x06, 0x07, 0x08, 0x0A, 0x0C, 0x0F, 0x13, 0x15]),
    st.binary(min_size=1, max_size=40).filter(lambda b: not _is_utf8(b)),
)
def test_invalid_utf8_in_a_text_field(tag: int, value: bytes) -> None:
    fields = [(0x01, b"1"), (0x06, b"71715100070"), (0x07, b"a"), (0x08, b"b"), (0x0F, b"1")]
    fields = [(t, value if t == tag else v) for t, v in fields]
    if tag not in dict(fields):
        fields.append((tag, value))
    with pytest.raises(CardDataError, match=f"tag 0x{tag:02X}"):
        parse_identity(encode(fields))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@FUZZ
@given(st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=700)), max_size=6))
def test_tlv_round_trip(fields: list[tuple[int, bytes]]) -> None:
    assert parse_tlv(encode(fields)) == fields
    if fields:  # (a file of zeros alone reads as an empty version tag)
        assert parse_tlv(encode(fields) + bytes(30)) == fields  # zero padding ends it


MONTH_WORDS = ["JAN", "FEV", "MAART", "MÄR", "AOUT", "DEZ", "SEPT", "MEI", "XX", ""]


@FUZZ
@given(st.text(max_size=80))
def test_birth_date_random_text(text: str) -> None:
    check_birth_date(text)


@FUZZ
@given(
    st.one_of(st.just(""), st.integers(-5, 40).map(str)),
    st.sampled_from(MONTH_WORDS),
    st.one_of(st.integers(-10, 10000).map(str), st.just("")),
    st.sampled_from([" ", "  ", ".", ". ", "-", "/", "\t"]),
)
def test_birth_date_near_misses(day: str, month: str, year: str, sep: str) -> None:
    check_birth_date(f"{day}{sep}{month}{sep}{year}")


def check_birth_date(text: str) -> None:
    result = parse_birth_date(text)
    if result is None:
        return
    assert isinstance(result, PartialDate)
    assert 1 <= result.year <= 9999
    assert result.month is None or 1 <= result.month <= 12
    assert result.day is None or result.month is not None
    result.iso()


card_text = st.text(
    st.characters(blacklist_categories=["Cs", "Zs", "Cc", "Zl", "Zp"]), min_size=1, max_size=300
)


@FUZZ
@given(
    card_number=st.text("0123456789ABZ", min_size=9, max_size=12),
    number=st.text("0123456789", min_size=11, max_size=11),
    surname=card_text,
    given_names=card_text,
    birth_place=card_text,
    chip=st.binary(min_size=16, max_size=16),
    family=st.booleans(),
)
def test_generated_identity_reads_back(
    card_number: str,
    number: str,
    surname: str,
    given_names: str,
    birth_place: str,
    chip: bytes,
    family: bool,
) -> None:
    fields = [
        (0x01, card_number.encode()),
        (0x02, chip),
        (0x06, number.encode()),
        (0x07, surname.encode()),
        (0x08, given_names.encode()),
        (0x0B, birth_place.encode()),
        (0x0F, b"11"),
    ]
    if family:
        fields.append((0x14, b""))
    identity = parse_identity(encode(fields) + bytes(20))
    assert (identity.card_number, identity.national_number) == (card_number, number)
    assert (identity.surname, identity.given_names) == (surname, given_names)
    assert identity.birth_place == birth_place
    assert identity.chip_number == chip
    assert identity.member_of_family is family
    if number not in card_number:  # the card number may show in a repr, the number not
        assert number not in repr(identity)
