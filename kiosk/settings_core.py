"""The ``[store]`` and ``[flows]`` sections of the configuration (see kiosk.example.toml)."""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.core.policy import CorePolicy
from kiosk.tomlcheck import Table

DEFAULT_DB = "/var/lib/digibank-kiosk/kiosk.db"


@dataclass(frozen=True)
class StoreSettings:
    """Where the kiosk keeps its database (``[store]``)."""

    path: str = DEFAULT_DB  # SQLite file; its directory must exist and be writable


def read_store(t: Table) -> StoreSettings:
    """``[store]``: the database file."""
    path = t.get("path", str, DEFAULT_DB)
    t.check(bool(path.strip()), "path", "empty; name the database file, e.g. " + DEFAULT_DB)
    t.finish()
    return StoreSettings(path=path)


def read_flows(t: Table) -> CorePolicy:
    """``[flows]``: timeouts and limits of the pickup, return and staff flows."""

    def seconds(key: str, default_s: float, low_s: float, high_s: float) -> float:
        return t.get(key, float, default_s * 1000, low=low_s * 1000, high=high_s * 1000) / 1000

    policy = CorePolicy(
        idle_timeout_s=seconds("idle_timeout_ms", 60, 10, 600),
        message_s=seconds("message_ms", 8, 2, 120),
        staff_timeout_s=seconds("staff_timeout_ms", 180, 30, 3600),
        door_open_reminder_s=seconds("door_open_reminder_ms", 60, 5, 3600),
        door_open_alarm_s=seconds("door_open_alarm_ms", 180, 10, 86400),
        code_attempts=t.get("code_attempts", int, 5, low=1, high=100),
        code_window_s=seconds("code_window_ms", 900, 10, 86400),
        lockout_s=seconds("lockout_ms", 60, 1, 86400),
        lockout_max_s=seconds("lockout_max_ms", 3600, 1, 7 * 86400),
        loan_days=t.get("loan_days", int, 14, low=1, high=365),
        disk_min_free_mb=t.get("disk_min_free_mb", int, 200, low=0, high=1_000_000),
        site_advice=t.get("site_advice", str, ""),
    )
    t.check(
        policy.door_open_alarm_s >= policy.door_open_reminder_s,
        "door_open_alarm_ms",
        "must not be shorter than door_open_reminder_ms (remind the person before alarming staff)",
    )
    t.check(
        policy.lockout_max_s >= policy.lockout_s,
        "lockout_max_ms",
        "must not be shorter than lockout_ms",
    )
    t.finish()
    return policy
