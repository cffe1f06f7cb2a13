"""Clocks: the core asks the time from one object, so tests and scenarios can move it.

Durations use ``monotonic()`` (rule 7); ``now()`` is the wall time written in the journal
and compared with reservation expiry dates (UTC, timezone-aware).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Where the core gets its time from."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations, timers)."""
        ...

    def now(self) -> dt.datetime:
        """The wall time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def now(self) -> dt.datetime:
        """The current UTC time."""
        return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that only moves when told to (scenarios, tests): ``advance(seconds)``."""

    def __init__(self, start: dt.datetime | None = None, monotonic_start: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._wall = start or dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
        if self._wall.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._mono = monotonic_start

    def monotonic(self) -> float:
        """The simulated monotonic time."""
        with self._lock:
            return self._mono

    def now(self) -> dt.datetime:
        """The simulated wall time."""
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on both clocks."""
        if seconds < 0:
            raise ValueError("time does not go back")
        with self._lock:
            self._mono += seconds
            self._wall += dt.timedelta(seconds=seconds)
