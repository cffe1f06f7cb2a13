"""The borrower key: the only thing the kiosk derives from the national register number.

``borrower_key`` = lowercase hex HMAC-SHA256(key=pepper, msg=the 11 digits as ASCII). The
loan server computes the same function, so it must stay byte-exact: the pepper is the
secret file's content with surrounding white space stripped, the number loses its dots,
dashes and spaces and nothing else. A plain hash of an 11-digit number can be reversed by
trying every number; the secret pepper (held by the digibank) prevents that.

Neither the number nor the pepper ever appears in an exception message or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from hardware.errors import ConfigurationError

_SEPARATORS = re.compile(r"[.\- ]")
_ELEVEN_DIGITS = re.compile(r"[0-9]{11}")


class PepperError(ConfigurationError):
    """The pepper file is missing, empty or unreadable: the kiosk cannot identify anyone."""


def load_pepper(path: str | Path) -> bytes:
    """Read the pepper from ``path``: its content without surrounding white space.

    Raises ``PepperError`` (a start-up error) when the file is missing, unreadable or
    holds nothing but white space. The message names the path, never the content.
    """
    file = Path(path)
    try:
        content = file.read_bytes()
    except FileNotFoundError:
        raise PepperError(f"pepper file {file} does not exist") from None
    except IsADirectoryError:
        raise PepperError(f"pepper file {file} is a directory, not a file") from None
    except OSError as exc:
        # strerror only: the OSError itself is fine, but keep the line short and clear.
        raise PepperError(f"pepper file {file} cannot be read: {exc.strerror}") from None
    pepper = content.strip()
    if not pepper:
        raise PepperError(f"pepper file {file} is empty")
    return pepper


def borrower_key(pepper: bytes, national_number: str) -> str:
    """The borrower key for a national register number: hex HMAC-SHA256(pepper, digits).

    Dots, dashes and spaces are removed from the number first (``71.71.51-000.70``).
    Raises ``ValueError`` when what is left is not exactly 11 ASCII digits, or when the
    pepper is empty; the message never contains the number.
    """
    if not isinstance(pepper, bytes | bytearray) or not pepper:
        raise ValueError("the pepper must be non-empty bytes (see load_pepper)")
    if not isinstance(national_number, str):
        raise ValueError("the national register number must be a string")
    digits = _SEPARATORS.sub("", national_number)
    if not _ELEVEN_DIGITS.fullmatch(digits):
        raise ValueError("a national register number has 11 digits")
    return hmac.new(bytes(pepper), digits.encode("ascii"), hashlib.sha256).hexdigest()
