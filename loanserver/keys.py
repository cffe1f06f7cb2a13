"""Keys and hashes: borrower keys, pickup/staff codes and PINs, kiosk tokens.

Reimplemented here on purpose (``loanserver`` never imports ``kiosk`` or ``hardware``),
byte-exact with ``hardware.eid.privacy.borrower_key`` and ``kiosk.core.codes``; the tests
check both ways. Neither a national number nor a pepper ever appears in a message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path

_SEPARATORS = re.compile(r"[.\- ]")
_ELEVEN_DIGITS = re.compile(r"[0-9]{11}")

CODE_SCHEME = "pbkdf2-sha256"
CODE_ITERATIONS = 20_000  # the kiosk checks these on a Pi: same cost as kiosk.core.codes


class InvalidKeyInput(ValueError):
    """A pepper or a national number that cannot be used; the message holds neither."""


def load_pepper(path: str | Path) -> bytes:
    """The pepper: the file's content without surrounding white space, as bytes."""
    file = Path(path)
    try:
        content = file.read_bytes()
    except FileNotFoundError:
        raise InvalidKeyInput(f"pepper file {file} does not exist") from None
    except IsADirectoryError:
        raise InvalidKeyInput(f"pepper file {file} is a directory, not a file") from None
    except OSError as exc:
        raise InvalidKeyInput(f"pepper file {file} cannot be read: {exc.strerror}") from None
    pepper = content.strip()
    if not pepper:
        raise InvalidKeyInput(f"pepper file {file} is empty")
    return pepper


def borrower_key(pepper: bytes, national_number: str) -> str:
    """Lowercase hex HMAC-SHA256(pepper, the 11 digits as ASCII).

    Dots, dashes and spaces are removed first; anything else makes it invalid.
    """
    if not isinstance(pepper, bytes | bytearray) or not pepper:
        raise InvalidKeyInput("the pepper must be non-empty bytes")
    digits = _SEPARATORS.sub("", national_number) if isinstance(national_number, str) else ""
    if not _ELEVEN_DIGITS.fullmatch(digits):
        raise InvalidKeyInput("a national register number has 11 digits")
    return hmac.new(bytes(pepper), digits.encode("ascii"), hashlib.sha256).hexdigest()


def hash_code(code: str, *, salt: bytes | None = None, iterations: int = CODE_ITERATIONS) -> str:
    """``pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`` with a fresh 16-byte salt."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", code.encode("utf-8"), salt, iterations)
    return f"{CODE_SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def check_code(code: str, stored: str | None) -> bool:
    """True when ``code`` matches ``stored`` (constant-time); malformed never matches."""
    if not stored:
        return False
    try:
        scheme, iterations_text, salt_hex, digest_hex = stored.split("$")
        iterations = int(iterations_text)
        salt = bytes.fromhex(salt_hex)
        expected = bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if scheme != CODE_SCHEME or not 1 <= iterations <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", code.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)


def new_pickup_code() -> str:
    """A random 6-digit pickup code (leading zeros kept)."""
    return f"{secrets.randbelow(1_000_000):06d}"


def new_token() -> str:
    """A new kiosk bearer token (shown once, stored only as its hash)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a kiosk token: SHA-256 hex (a 256-bit random needs no salt)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
