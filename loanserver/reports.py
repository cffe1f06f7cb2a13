"""Monthly back-office report: people reached, loans, returns, loan length, faults per kiosk.

Month boundaries are computed in Python and applied as ``>=`` / ``<`` on the stored UTC
datetimes, so the same queries run on SQLite and PostgreSQL (no date functions).
A loan counts in the month it started; its return counts in the month it came back.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from loanserver.apply import CONFLICT
from loanserver.models import Alarm, Kiosk, Loan, utcnow
from loanserver.services import InvalidInput

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
YEAR_MIN, YEAR_MAX = 2000, 2999
SECONDS_PER_DAY = 86_400
SERVER_ROW = "(server)"  # CSV name of alarms raised by no kiosk

CSV_COLUMNS = (
    "month",
    "scope",
    "kiosk",
    "people_reached",
    "loans_started",
    "returns",
    "average_loan_days",
    "alarms",
    "conflicts",
)
CSV_HELP = """\
CSV: a header line, then
  one row per kiosk: scope=kiosk, the kiosk name (or "(server)" for alarms of no
    kiosk), alarms and conflicts raised there in the month; other figures empty;
  one row scope=total: kiosk empty, every figure for the whole month
    (average_loan_days empty when nothing was returned in the month).
Columns: """ + ",".join(CSV_COLUMNS)


def month_range(
    month: str | None, *, now: datetime | None = None
) -> tuple[str, datetime, datetime]:
    """``(YYYY-MM, first instant, first instant of the next month)`` in UTC.

    ``month`` None means the current UTC month; anything but ``YYYY-MM`` is InvalidInput.
    """
    if month is None:
        current = (now or utcnow()).astimezone(UTC)
        year, number = current.year, current.month
    else:
        match = _MONTH.fullmatch(month)
        year, number = (int(match[1]), int(match[2])) if match else (0, 0)
        if not (YEAR_MIN <= year <= YEAR_MAX and 1 <= number <= 12):
            raise InvalidInput(f"a month is YYYY-MM, e.g. 2026-11 (got {month[:20]!r})")
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return f"{year:04d}-{number:02d}", start, end


def _average_days(spans: list[tuple[datetime, datetime]]) -> float | None:
    """Mean loan length in days, 1 decimal; None without returns."""
    if not spans:
        return None
    # A kiosk clock behind the server's can put a return before its pickup: count it as 0
    # rather than let it pull the average below what really happened.
    total = sum(max((returned - started).total_seconds(), 0.0) for started, returned in spans)
    return round(total / len(spans) / SECONDS_PER_DAY, 1)


def _faults(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Alarms and conflicts raised in the range, per kiosk (every kiosk listed, by name)."""
    counts: dict[int | None, dict[str, int]] = {}
    for kiosk_id in session.scalars(select(Kiosk.id)):
        counts[kiosk_id] = {"alarms": 0, "conflicts": 0}
    grouped = (
        select(Alarm.kiosk_id, Alarm.kind, func.count(Alarm.id))
        .where(Alarm.raised_at >= start, Alarm.raised_at < end)
        .group_by(Alarm.kiosk_id, Alarm.kind)
    )
    for kiosk_id, kind, count in session.execute(grouped):
        row = counts.setdefault(kiosk_id, {"alarms": 0, "conflicts": 0})
        row["conflicts" if kind == CONFLICT else "alarms"] += count
    names = {kiosk_id: name for kiosk_id, name in session.execute(select(Kiosk.id, Kiosk.name))}
    rows = [
        {"kiosk": names.get(kiosk_id) if kiosk_id is not None else None, **figures}
        for kiosk_id, figures in counts.items()
    ]
    # Named kiosks by name; alarms of no kiosk (server-wide) last.
    return sorted(rows, key=lambda r: (r["kiosk"] is None, r["kiosk"] or ""))


def report(session: Session, month: str | None = None, *, now: datetime | None = None) -> dict:
    """The figures of one month (default: the current UTC month) as a JSON-ready dict.

    people_reached: distinct borrowers with a loan started in the month; loans_started;
    returns: loans returned in the month (whenever they started); average_loan_days of
    those returns (None when none); faults: per kiosk, alarms and conflicts raised.
    """
    label, start, end = month_range(month, now=now)
    started = (Loan.started_at >= start, Loan.started_at < end)
    loans_started = session.scalar(select(func.count(Loan.id)).where(*started)) or 0
    people = session.scalar(
        select(func.count(distinct(Loan.borrower_id))).where(
            *started, Loan.borrower_id.is_not(None)
        )
    )
    spans = session.execute(
        select(Loan.started_at, Loan.returned_at).where(
            Loan.returned_at >= start, Loan.returned_at < end
        )
    )
    returned = [(s, r) for s, r in spans if r is not None]
    faults = _faults(session, start, end)
    return {
        "month": label,
        "from": start.isoformat(),
        "until": end.isoformat(),
        "people_reached": people or 0,
        "loans_started": loans_started,
        "returns": len(returned),
        "average_loan_days": _average_days(returned),
        "faults": faults,
        "faults_total": {
            "alarms": sum(r["alarms"] for r in faults),
            "conflicts": sum(r["conflicts"] for r in faults),
        },
    }


def _cell(value: Any) -> str:
    """One CSV cell; text that a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(figures: dict) -> str:
    """The report as CSV (see ``CSV_HELP``), CRLF line ends as RFC 4180 asks."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    month = figures["month"]
    for row in figures["faults"]:
        writer.writerow(
            [
                month,
                "kiosk",
                _cell(row["kiosk"] or SERVER_ROW),
                "",
                "",
                "",
                "",
                row["alarms"],
                row["conflicts"],
            ]
        )
    total = figures["faults_total"]
    writer.writerow(
        [
            month,
            "total",
            "",
            figures["people_reached"],
            figures["loans_started"],
            figures["returns"],
            _cell(figures["average_loan_days"]),
            total["alarms"],
            total["conflicts"],
        ]
    )
    return out.getvalue()
