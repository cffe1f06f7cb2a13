"""The kiosk's rules as plain values and pure functions: timeouts, lockouts, compartment choice.

``CorePolicy`` is read from ``[flows]`` in the configuration (``kiosk.settings``); every
duration is in seconds here.
"""

from __future__ import annotations

from dataclasses import dataclass


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
