"""Pickup codes, staff codes and PINs: stored only as salted hashes, checked in constant time.

Format: ``pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>``; the loan server writes the
same format (docs/decisions/0011). A 6-digit code has only a million values, so no hash
makes a stolen database safe; the iterations only make each guess cost, and the kiosk's
lockout makes guessing at the screen slow.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SCHEME = "pbkdf2-sha256"
# 10.8 ms per check on the 2-core development VM (a Pi is slower); a typed pickup code is
# checked against every open reservation of the kiosk.
ITERATIONS = 20_000


def hash_code(code: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The stored form of ``code`` with a fresh random salt (or ``salt``)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", code.encode("utf-8"), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def check_code(code: str, stored: str | None) -> bool:
    """True when ``code`` matches ``stored``; a malformed ``stored`` never matches."""
    if not stored:
        return False
    try:
        scheme, iterations_text, salt_hex, digest_hex = stored.split("$")
        iterations = int(iterations_text)
        salt = bytes.fromhex(salt_hex)
        expected = bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if scheme != SCHEME or not 1 <= iterations <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", code.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)
