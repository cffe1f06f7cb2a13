"""Reading values out of a kiosk transaction's payload, defensively.

A payload is whatever the kiosk journalled: a value of the wrong type or shape is read as
"absent" (None), never an exception, so one odd row cannot make a whole batch fail with a
5xx that the kiosk would retry for ever. Every value returned fits its database column
(length, 32-bit integers, no control characters: PostgreSQL refuses NUL in text).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

INT32_MAX = 2**31 - 1
SHOW_MAX = 40  # characters of an odd value quoted in a conflict detail


def text(payload: dict[str, Any], key: str, max_length: int = 64) -> str | None:
    """A non-empty one-line string of at most ``max_length`` characters, else None."""
    value = payload.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        return None
    return value if value.isprintable() else None


def clip(value: object, max_length: int) -> str:
    """Any value as one printable line of at most ``max_length`` characters (for details)."""
    line = value if isinstance(value, str) else repr(value)
    line = "".join(ch if ch.isprintable() else " " for ch in line)
    return line if len(line) <= max_length else line[: max_length - 3] + "..."


def show(payload: dict[str, Any], key: str) -> str:
    """The raw value of ``key`` quoted briefly, for a conflict detail."""
    return clip(repr(payload.get(key)), SHOW_MAX)


def number(payload: dict[str, Any], key: str) -> int | None:
    """A positive 32-bit integer (an int or a string of digits, e.g. a reservation id)."""
    value = payload.get(key)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= INT32_MAX else None


def moment(payload: dict[str, Any], key: str) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (a naive one is taken as UTC)."""
    value = payload.get(key)
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or out of range once in UTC
        return None


def day(payload: dict[str, Any], key: str) -> date | None:
    """An ISO date (``2026-12-10``)."""
    value = payload.get(key)
    if not isinstance(value, str) or len(value) > 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
