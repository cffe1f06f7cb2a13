"""A month of activity with explicit datetimes, for the report tests (service, API, CLI).

November 2026 at kiosks "Noord" and "Zuid", with every boundary a report must get right:
a loan started in October and returned in November, loans on the first and last instant,
a loan without a borrower (a conflict), alarms on both sides of the month's edges.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from loanserver import services
from loanserver.models import Alarm, Kiosk, Loan


def at(text: str) -> datetime:
    """An aware UTC datetime from ``YYYY-MM-DD HH:MM[:SS]``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# What the November report must say.
NOVEMBER = {
    "month": "2026-11",
    "people_reached": 3,  # Ann (twice), Bob, Cas (code-only); the conflict loan has nobody
    "loans_started": 4,  # L2, L3, L4, L6 (L1 started in October, L5 in December)
    "returns": 2,  # L1 (started in October) and L2
    "average_loan_days": 11.8,  # (13.5 + 10.083) / 2
    "faults": [
        {"kiosk": "Noord", "alarms": 2, "conflicts": 1},
        {"kiosk": "Zuid", "alarms": 0, "conflicts": 0},
        {"kiosk": None, "alarms": 1, "conflicts": 0},
    ],
    "faults_total": {"alarms": 3, "conflicts": 1},
}


def build_month(session: Session) -> dict[str, int]:
    """Store the activity; returns the kiosk ids by name."""
    noord = services.add_kiosk(session, "Noord")
    zuid = services.add_kiosk(session, "Zuid")
    ann = services.register_borrower(session, code_only=True, first_name="Ann")
    bob = services.register_borrower(session, code_only=True, first_name="Bob")
    cas = services.register_borrower(session, code_only=True, first_name="Cas")
    devices = [services.add_device(session, f"LT-{n}", type="laptop").id for n in range(1, 7)]

    def loan(n: int, borrower: int | None, started: str, returned: str | None = None) -> None:
        start = at(started)
        session.add(
            Loan(
                external_id=f"L{n}",
                device_id=devices[n - 1],
                borrower_id=borrower,
                pickup_kiosk_id=noord.id,
                started_at=start,
                due_at=start + timedelta(days=14),
                returned_at=at(returned) if returned else None,
                return_kiosk_id=zuid.id if returned else None,
            )
        )

    loan(1, ann.id, "2026-10-20 12:00", "2026-11-03 00:00")  # 13.5 days, a November return
    loan(2, ann.id, "2026-11-02 08:00", "2026-11-12 10:00")  # 10.083 days
    loan(3, bob.id, "2026-11-15 10:00")
    loan(4, cas.id, "2026-11-30 23:59:59")  # last second of the month
    loan(5, bob.id, "2026-12-01 00:00")  # first instant of December: not November
    loan(6, None, "2026-11-20 09:00")  # a pickup the server could not match (conflict)

    def alarm(kiosk: Kiosk | None, kind: str, raised: str) -> None:
        session.add(Alarm(kiosk_id=kiosk.id if kiosk else None, kind=kind, raised_at=at(raised)))

    noord_row = session.get(Kiosk, noord.id)
    zuid_row = session.get(Kiosk, zuid.id)
    alarm(noord_row, "jammed", "2026-11-05 14:00")
    alarm(noord_row, "door_open", "2026-11-30 23:00")
    alarm(noord_row, "conflict", "2026-11-10 09:00")
    alarm(noord_row, "jammed", "2026-10-31 23:59:59")  # October
    alarm(zuid_row, "board_offline", "2026-12-01 00:00")  # December
    alarm(None, "disk_full", "2026-11-18 03:00")  # a server alarm of no kiosk
    session.commit()
    return {"Noord": noord.id, "Zuid": zuid.id}
