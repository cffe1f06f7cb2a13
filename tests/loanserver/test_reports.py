"""The monthly report on a real database (SQLite and PostgreSQL): every figure, every edge;
the same through the back-office API, also of what a kiosk sent through the kiosk API.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loanserver import db, keys, reports, services
from tests.loanserver.backoffice_support import ADMIN, AUTH, DIGITS, NUMBER, PEPPER
from tests.loanserver.backoffice_support import api as api  # the fixture
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


def test_the_report_as_json_and_as_csv(api: TestClient, engine: Engine) -> None:
    with db.session_factory(engine)() as session:
        build_month(session)
    answer = api.get(ADMIN + "/reports?month=2026-11", headers=AUTH)
    assert answer.status_code == 200
    figures = answer.json()
    assert {k: figures[k] for k in NOVEMBER} == NOVEMBER
    assert (figures["from"], figures["until"]) == (  # times with offset (docs/api.md)
        "2026-11-01T00:00:00+00:00",
        "2026-12-01T00:00:00+00:00",
    )
    as_csv = api.get(ADMIN + "/reports?month=2026-11&format=csv", headers=AUTH)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["cache-control"] == answer.headers["cache-control"] == "no-store"
    assert "report-2026-11.csv" in as_csv.headers["content-disposition"]
    lines = as_csv.text.splitlines()
    assert lines[0].startswith("month,scope,kiosk,people_reached")
    assert lines[-1] == "2026-11,total,,3,4,2,11.8,3,1"
    assert len(lines) == 1 + 3 + 1  # header, Noord, Zuid, (server), total


def test_a_bad_report_query_is_422(api: TestClient) -> None:
    for query in ("month=2026-13", "month=november", "month=2026-011", "format=xml"):
        answer = api.get(f"{ADMIN}/reports?{query}", headers=AUTH)
        assert answer.status_code == 422 and answer.json()["detail"], query


def test_the_report_counts_what_the_kiosks_sent(api: TestClient, engine: Engine) -> None:
    """Set up through the back office, act through the kiosk API, read the report."""
    token = api.post(ADMIN + "/kiosks", json={"name": "K"}, headers=AUTH).json()["token"]
    api.post(ADMIN + "/devices", json={"asset_tag": "LT-1", "type": "laptop"}, headers=AUTH)
    borrower = api.post(ADMIN + "/borrowers", json={"national_number": NUMBER}, headers=AUTH)
    body = {"borrower_id": borrower.json()["id"], "asset_tag": "LT-1", "kiosk": "K"}
    reservation = str(api.post(ADMIN + "/reservations", json=body, headers=AUTH).json()["id"])

    def row(seq: int, what: str, occurred: str, **payload: Any) -> dict[str, Any]:
        return {
            "uuid": str(uuid.uuid4()),
            "seq": seq,
            "kind": what,
            "occurred_at": f"2026-10-{occurred}+00:00",
            "boot": 1,
            "payload": payload,
        }

    rows = [
        row(1, "load", "05T08:00:00", reservation_id=reservation, asset_tag="LT-1", compartment=1),
        row(
            2,
            "pickup",
            "05T10:00:00",
            reservation_id=reservation,
            asset_tag="LT-1",
            borrower_key=keys.borrower_key(PEPPER, DIGITS),
            loan_id="k-loan-1",
            started_at="2026-10-05T10:00:00+00:00",
            due_date="2026-10-19",
        ),
        row(3, "alarm_raised", "06T09:00:00", alarm_id="a-1", kind="jammed", compartment=2),
        row(4, "return", "12T22:00:00", loan_id="k-loan-1", asset_tag="LT-1", unknown=False),
        # A device the server never heard of: taken in, and a conflict alarm (raised when
        # the server learns of it, so it counts in the month it arrived).
        row(5, "return", "13T09:00:00", loan_id=None, asset_tag="LT-404", unknown=True),
    ]
    sent = api.post(
        "/api/v1/kiosk/transactions",
        json={"transactions": rows},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert sent.status_code == 200, sent.text

    october = api.get(ADMIN + "/reports?month=2026-10", headers=AUTH).json()
    assert (october["people_reached"], october["loans_started"], october["returns"]) == (1, 1, 1)
    assert october["average_loan_days"] == 7.5
    assert october["faults"] == [{"kiosk": "K", "alarms": 1, "conflicts": 0}]
    now = api.get(ADMIN + "/reports", headers=AUTH).json()
    assert now["faults"] == [{"kiosk": "K", "alarms": 0, "conflicts": 1}]
