"""The monthly report on a real database (SQLite and PostgreSQL): every figure, every edge."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loanserver import db, reports, services
from tests.loanserver.report_data import NOVEMBER, at, build_month


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with db.session_factory(engine)() as session:
        yield session


def test_november_counts_every_figure_at_its_edges(session: Session) -> None:
    build_month(session)
    figures = reports.report(session, "2026-11")
    assert {k: figures[k] for k in NOVEMBER} == NOVEMBER
    assert figures["from"] == "2026-11-01T00:00:00+00:00"
    assert figures["until"] == "2026-12-01T00:00:00+00:00"


def test_a_loan_counts_in_the_month_it_started_its_return_in_the_month_it_ended(
    session: Session,
) -> None:
    build_month(session)
    october = reports.report(session, "2026-10")
    assert (october["loans_started"], october["people_reached"], october["returns"]) == (1, 1, 0)
    assert october["average_loan_days"] is None  # nothing came back in October
    assert october["faults_total"] == {"alarms": 1, "conflicts": 0}
    december = reports.report(session, "2026-12")
    assert (december["loans_started"], december["returns"]) == (1, 0)
    assert december["faults"][1] == {"kiosk": "Zuid", "alarms": 1, "conflicts": 0}


def test_default_is_the_current_utc_month(session: Session) -> None:
    build_month(session)
    # 23:30 UTC on 30 November is already December in Brussels: the report goes by UTC.
    figures = reports.report(session, now=at("2026-11-30 23:30"))
    assert figures["month"] == "2026-11" and figures["loans_started"] == 4
    assert reports.report(session, now=at("2026-12-01 00:00"))["month"] == "2026-12"


def test_an_empty_month_has_zeros_and_lists_every_kiosk(session: Session) -> None:
    build_month(session)
    figures = reports.report(session, "2025-01")
    assert (figures["people_reached"], figures["loans_started"], figures["returns"]) == (0, 0, 0)
    assert figures["average_loan_days"] is None
    assert [row["kiosk"] for row in figures["faults"]] == ["Noord", "Zuid"]


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", "", "x"])
def test_a_malformed_month_is_refused_with_the_expected_form(month: str) -> None:
    with pytest.raises(services.InvalidInput, match="YYYY-MM"):
        reports.month_range(month)


def test_the_report_checks_its_month(session: Session) -> None:
    with pytest.raises(services.InvalidInput, match="YYYY-MM"):
        reports.report(session, "1999-12")


def test_december_ends_at_the_new_year() -> None:
    assert reports.month_range("2026-12")[1:] == (at("2026-12-01 00:00"), at("2027-01-01 00:00"))


def test_csv_has_a_row_per_kiosk_and_a_totals_row(session: Session) -> None:
    build_month(session)
    text = reports.to_csv(reports.report(session, "2026-11"))
    assert text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["scope"], r["kiosk"], r["alarms"], r["conflicts"]) for r in rows] == [
        ("kiosk", "Noord", "2", "1"),
        ("kiosk", "Zuid", "0", "0"),
        ("kiosk", "(server)", "1", "0"),
        ("total", "", "3", "1"),
    ]
    total = rows[-1]
    assert total["month"] == "2026-11"
    assert (total["people_reached"], total["loans_started"], total["returns"]) == ("3", "4", "2")
    assert total["average_loan_days"] == "11.8"
    assert rows[0]["loans_started"] == ""  # per-kiosk rows carry faults only


def test_csv_defuses_a_kiosk_name_a_spreadsheet_would_run(session: Session) -> None:
    services.add_kiosk(session, "=HYPERLINK(1)")
    text = reports.to_csv(reports.report(session, "2026-11"))
    assert list(csv.reader(io.StringIO(text)))[1][2] == "'=HYPERLINK(1)"
    assert reports.report(session, "2026-11")["faults"][0]["kiosk"] == "=HYPERLINK(1)"
