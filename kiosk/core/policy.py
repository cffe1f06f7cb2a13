"""The kiosk's rules as plain values and pure functions: timeouts, lockouts, compartment choice.

``CorePolicy`` is read from ``[flows]`` in the configuration (``kiosk.settings``); every
duration is in seconds here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from kiosk.core.model import Compartment, CompartmentStatus, Reservation, ReservationStatus


@dataclass(frozen=True)
class CorePolicy:
    """Timeouts and limits of the flows."""

    idle_timeout_s: float = 60.0  # no touch this long: back to the start screen (doors shut)
    message_s: float = 8.0  # a message / receipt screen stays this long
    staff_timeout_s: float = 180.0  # a staff session ends after this much inactivity
    door_open_reminder_s: float = 60.0  # door still open: remind the person on screen
    door_open_alarm_s: float = 180.0  # door still open: alarm for staff
    code_attempts: int = 5  # wrong codes within code_window_s before the code entry locks
    code_window_s: float = 900.0
    lockout_s: float = 60.0  # first lockout; doubles each time, up to lockout_max_s
    lockout_max_s: float = 3600.0
    loan_days: int = 14  # when a reservation does not say how long the loan is
    disk_min_free_mb: int = 200  # below this much free disk: alarm
    site_advice: str = ""  # where else to go when the cabinet is full (shown as is)


SIZE_RANK = {"S": 1, "M": 2, "L": 3}


def choose_compartment(
    candidates: Sequence[Compartment],
    *,
    size: str | None,
    needs_charging: bool,
    unusable: Collection[int] = (),
) -> Compartment | None:
    """The best free compartment for a device, or None when none fits.

    Free: EMPTY and not in ``unusable`` (open doors, active alarms, jammed this session).
    Fits: at least the device's size (an unknown size takes M or bigger). A device that
    needs charging gets a charging compartment when one is free, else any (better than
    leaving it outside). Among equals: the smallest that fits, then the least opened
    (spreads wear), then the lowest number.
    """
    need = SIZE_RANK.get(size or "M", 2)
    free = [
        c
        for c in candidates
        if c.status is CompartmentStatus.EMPTY
        and c.number not in unusable
        and SIZE_RANK.get(c.size, 2) >= need
    ]
    if not free:
        return None

    def rank(c: Compartment) -> tuple[int, int, int, int, int]:
        charging_miss = int(needs_charging and not c.charging)
        # A charging compartment is kept for devices that need one when possible.
        charging_waste = int(not needs_charging and c.charging)
        size_waste = SIZE_RANK.get(c.size, 2) - need
        return (charging_miss, size_waste, charging_waste, c.opened_count, c.number)

    return min(free, key=rank)


def reservation_state(reservation: Reservation, now: dt.datetime) -> str:
    """``ready`` (loaded here, not expired), ``not_ready``, ``expired`` or ``gone``."""
    if reservation.status in (ReservationStatus.PICKED_UP, ReservationStatus.CANCELLED):
        return "gone"
    if reservation.status is ReservationStatus.EXPIRED:
        return "expired"
    if reservation.expires_at is not None and now >= reservation.expires_at:
        return "expired"
    if reservation.status is ReservationStatus.LOADED and reservation.compartment is not None:
        return "ready"
    return "not_ready"


@dataclass(frozen=True)
class CodeGuard:
    """Wrong-code bookkeeping (pickup codes, staff codes and PINs share it).

    Wall-clock seconds, because a lockout must survive a restart of the kiosk.
    """

    failures: tuple[float, ...] = ()
    lockouts: int = 0
    locked_until: float = 0.0

    def locked(self, now: float) -> bool:
        """True while the code entry is locked."""
        return now < self.locked_until

    def failed(self, now: float, policy: CorePolicy) -> CodeGuard:
        """One more wrong code; locks (for twice as long as last time) at the limit."""
        recent = (*(t for t in self.failures if now - t < policy.code_window_s), now)
        if len(recent) < policy.code_attempts:
            return CodeGuard(recent, self.lockouts, self.locked_until)
        lockouts = self.lockouts + 1
        length = min(policy.lockout_s * 2 ** (lockouts - 1), policy.lockout_max_s)
        return CodeGuard((), lockouts, now + length)

    def succeeded(self) -> CodeGuard:
        """A right code: forget the failures."""
        return CodeGuard()

    def attempts_left(self, now: float, policy: CorePolicy) -> int:
        """Wrong codes still allowed before the lock."""
        recent = [t for t in self.failures if now - t < policy.code_window_s]
        return max(0, policy.code_attempts - len(recent))

    def to_text(self) -> str:
        """The stored form (JSON)."""
        return json.dumps(
            {"failures": list(self.failures), "lockouts": self.lockouts, "until": self.locked_until}
        )

    @classmethod
    def from_text(cls, text: str | None) -> CodeGuard:
        """Read the stored form; anything unreadable starts clean (and is logged by the caller)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                tuple(float(t) for t in data["failures"]),
                int(data["lockouts"]),
                float(data["until"]),
            )
        except (ValueError, KeyError, TypeError):
            return cls()
