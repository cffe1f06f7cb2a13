"""The borrower key and the pepper: byte-exact with the loan server, and no leaks.

The expected keys are computed here with hmac + hashlib from the specification (not by
calling the code under test), so a change in what is hashed fails these tests.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pytest

from hardware.eid.identity import PartialDate, parse_identity
from hardware.eid.privacy import PepperError, borrower_key, load_pepper
from hardware.errors import CardDataError, ConfigurationError

NUMBER = "71715100070"
PEPPER = b"digibank-test-pepper-0123456789"


def reference_key(pepper: bytes, digits: str) -> str:
    return hmac.new(pepper, digits.encode("ascii"), hashlib.sha256).hexdigest()


def test_known_vector() -> None:
    key = borrower_key(PEPPER, NUMBER)
    assert key == reference_key(PEPPER, NUMBER)
    assert len(key) == 64 and key == key.lower()
    # a fixed vector too, so a change in the reference above is noticed as well
    assert borrower_key(b"pepper", "71715100070") == (
        hmac.new(b"pepper", b"71715100070", hashlib.sha256).hexdigest()
    )
    assert key != hashlib.sha256(NUMBER.encode()).hexdigest()  # keyed, not a plain hash


def test_other_pepper_other_key() -> None:
    assert borrower_key(PEPPER, NUMBER) != borrower_key(PEPPER + b"x", NUMBER)
    assert borrower_key(PEPPER, NUMBER) != borrower_key(PEPPER, "71715100052")


@pytest.mark.parametrize(
    "written", ["71.71.51-000.70", "717151-000-70", "71 71 51 000 70", " 71715100070 "]
)
def test_separators_are_removed(written: str) -> None:
    assert borrower_key(PEPPER, written) == reference_key(PEPPER, NUMBER)


@pytest.mark.parametrize(
    "bad",
    ["7171510007", "717151000700", "7171510007a", "", "71/71/51/000/70", "٧١٧١٥١٠٠٠٧٠"],
)
def test_not_eleven_digits(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        borrower_key(PEPPER, bad)
    if bad:
        assert bad not in str(info.value)
        assert "7171510007" not in str(info.value)


def test_empty_pepper_refused() -> None:
    with pytest.raises(ValueError):
        borrower_key(b"", NUMBER)


def test_pepper_file_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "pepper"
    path.write_bytes(b"  \n" + PEPPER + b"\r\n\t ")
    assert load_pepper(path) == PEPPER
    assert load_pepper(str(path)) == PEPPER
    assert borrower_key(load_pepper(path), NUMBER) == reference_key(PEPPER, NUMBER)
    inner = tmp_path / "inner"
    inner.write_bytes(b"a b\nc\n")  # white space inside the secret is part of it
    assert load_pepper(inner) == b"a b\nc"


def test_missing_pepper(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(PepperError, match="does not exist") as info:
        load_pepper(path)
    assert isinstance(info.value, ConfigurationError)
    assert str(path) in str(info.value)


def test_empty_pepper_file(tmp_path: Path) -> None:
    path = tmp_path / "pepper"
    path.write_bytes(b" \n\n")
    with pytest.raises(PepperError, match="empty"):
        load_pepper(path)


def test_pepper_directory(tmp_path: Path) -> None:
    with pytest.raises(PepperError):
        load_pepper(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_pepper(tmp_path: Path) -> None:
    path = tmp_path / "pepper"
    path.write_bytes(PEPPER)
    path.chmod(0)
    try:
        with pytest.raises(PepperError, match="cannot be read") as info:
            load_pepper(path)
        assert PEPPER.decode() not in str(info.value)
    finally:
        path.chmod(0o600)


def tlv(*fields: tuple[int, bytes]) -> bytes:
    return b"".join(bytes([tag, len(value)]) + value for tag, value in fields)


def test_identity_repr_never_shows_the_number() -> None:
    identity = parse_identity(
        tlv(
            (0x01, b"592123456789"),
            (0x06, NUMBER.encode()),
            (0x07, b"Peeters"),
            (0x08, b"Jan"),
            (0x0C, b"01 JAN 1971"),
            (0x0F, b"1"),
        )
    )
    assert identity.national_number == NUMBER
    assert identity.birth_date == PartialDate(1971, 1, 1)
    for text in (repr(identity), str(identity), f"{identity!r}", repr([identity])):
        assert NUMBER not in text
        assert "0070" not in text


def test_errors_never_show_the_number() -> None:
    # the number is in the file, but another field is broken: the message names the tag
    data = tlv((0x01, b"592123456789"), (0x06, NUMBER.encode()), (0x07, b"\xff\xfe"))
    with pytest.raises(CardDataError) as info:
        parse_identity(data)
    assert NUMBER not in str(info.value) and NUMBER not in repr(info.value)
    with pytest.raises(CardDataError) as info:
        parse_identity(tlv((0x06, NUMBER.encode() + b"\xff")))
    assert "national number" in str(info.value)
    assert NUMBER not in str(info.value) and NUMBER not in repr(info.value)
    with pytest.raises(ValueError) as value_info:
        borrower_key(PEPPER, NUMBER + "9")
    assert NUMBER not in str(value_info.value) and NUMBER not in repr(value_info.value)
