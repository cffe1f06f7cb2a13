"""loanserver.keys agrees byte for byte with the kiosk's own functions (both ways)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from hardware.eid import privacy
from kiosk.core import codes
from loanserver import keys

NUMBERS = ["85073003361", "85.07.30-033.61", "85 07 30 033 61", "00010100101"]
PEPPERS = [b"s3cret", b"a longer pepper with spaces inside", bytes(range(1, 64))]


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("pepper", PEPPERS)
def test_borrower_key_matches_the_kiosk(pepper: bytes, number: str) -> None:
    assert keys.borrower_key(pepper, number) == privacy.borrower_key(pepper, number)


def test_borrower_key_is_lowercase_hex_hmac_of_the_digits() -> None:
    expected = hmac.new(b"pep", b"85073003361", hashlib.sha256).hexdigest()
    assert keys.borrower_key(b"pep", "85.07.30-033.61") == expected
    assert expected == expected.lower() and len(expected) == 64


def test_pepper_file_is_stripped_like_the_kiosk(tmp_path: Path) -> None:
    file = tmp_path / "pepper"
    file.write_bytes(b"  \n s3cret value \t\n")
    assert keys.load_pepper(file) == privacy.load_pepper(file) == b"s3cret value"


@pytest.mark.parametrize("content", [b"", b" \n\t "])
def test_empty_pepper_file_is_refused(tmp_path: Path, content: bytes) -> None:
    file = tmp_path / "pepper"
    file.write_bytes(content)
    with pytest.raises(keys.InvalidKeyInput, match="empty"):
        keys.load_pepper(file)


def test_missing_pepper_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(keys.InvalidKeyInput, match="does not exist"):
        keys.load_pepper(tmp_path / "nope")


@pytest.mark.parametrize("bad", ["8507300336", "850730033612", "85/07/30.033.61", "８5073003361"])
def test_bad_numbers_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(keys.InvalidKeyInput) as info:
        keys.borrower_key(b"pep", bad)
    assert bad not in str(info.value)
    with pytest.raises(ValueError):
        privacy.borrower_key(b"pep", bad)


@pytest.mark.parametrize("code", ["123456", "000001", "ABCD", "9999"])
def test_code_hashes_agree_both_ways(code: str) -> None:
    assert codes.check_code(code, keys.hash_code(code))
    assert keys.check_code(code, codes.hash_code(code))
    assert not codes.check_code(code + "0", keys.hash_code(code))
    assert not keys.check_code(code + "0", codes.hash_code(code))


def test_code_hash_format_is_identical_for_the_same_salt() -> None:
    salt = bytes(range(16))
    ours = keys.hash_code("123456", salt=salt)
    assert ours == codes.hash_code("123456", salt=salt)
    scheme, iterations, salt_hex, digest = ours.split("$")
    assert (scheme, int(iterations), salt_hex) == ("pbkdf2-sha256", codes.ITERATIONS, salt.hex())
    assert len(digest) == 64


@pytest.mark.parametrize("stored", [None, "", "garbage", "md5$1$00$00", "pbkdf2-sha256$0$00$00"])
def test_malformed_stored_hash_never_matches(stored: str | None) -> None:
    assert not keys.check_code("123456", stored)


def test_pickup_codes_are_six_digits() -> None:
    for _ in range(200):
        code = keys.new_pickup_code()
        assert len(code) == 6 and code.isdigit()


def test_token_is_stored_as_sha256_hex() -> None:
    token = keys.new_token()
    assert len(token) >= 43
    assert keys.token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert keys.new_token() != token
