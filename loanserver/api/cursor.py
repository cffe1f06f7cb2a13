"""Pull cursors: opaque to the kiosk, a timestamp to the server.

A cursor is the URL-safe base64 of ``v1:<ISO time the answer was computed>``. A ``since``
pull returns every row changed at or after that time minus ``OVERLAP``: a transaction that
stamped a row just before the previous answer but committed just after it is still seen.
The overlap repeats a few rows; the kiosk applies items idempotently (docs/api.md).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

from fastapi import HTTPException, status

PREFIX = "v1:"
# Longer than any write transaction can run: SQLite's busy timeout is 10 s.
OVERLAP = timedelta(seconds=30)
CURSOR_MAX = 100


def encode(at: datetime) -> str:
    """The cursor for an answer computed at ``at`` (aware UTC)."""
    return base64.urlsafe_b64encode(f"{PREFIX}{at.astimezone(UTC).isoformat()}".encode()).decode()


def decode(cursor: str) -> datetime:
    """The time from which to report changes; 400 for anything that is not our cursor."""
    try:
        if len(cursor) > CURSOR_MAX:
            raise ValueError("too long")
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
        if not text.startswith(PREFIX):
            raise ValueError("no prefix")
        at = datetime.fromisoformat(text[len(PREFIX) :])
        if at.tzinfo is None:
            raise ValueError("naive time")
        return at.astimezone(UTC) - OVERLAP
    except (ValueError, UnicodeError, binascii.Error, OverflowError):
        raise HTTPException(
            status_code=status.HTTP_400_BAD_REQUEST,
            detail="invalid cursor: pass the cursor of a previous answer, or none",
        ) from None
