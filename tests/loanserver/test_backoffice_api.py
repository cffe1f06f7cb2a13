"""The back-office API over HTTP (TestClient) on a real database, SQLite and PostgreSQL.

What an operator's tool sees: status codes, one-line refusals, secrets answered once, and
a national register number that never comes back: not in an answer (a 422 included), not
in the database, not in a log line.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loanserver import db, keys
from loanserver.models import Borrower, Command, Device, Kiosk, Loan, utcnow
from tests.loanserver.backoffice_support import (
    ADMIN,
    AUTH,
    DIGITS,
    NUMBER,
    PEPPER,
    TOKEN,
    admin_client,
    cells,
    count,
    every_value,
)
from tests.loanserver.backoffice_support import api as api  # the fixture

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/kiosks", {"name": "K"}),
    ("POST", "/devices", {"asset_tag": "LT-1", "type": "laptop"}),
    ("POST", "/borrowers", {"code_only": True}),
    ("POST", "/reservations", {"borrower_id": 1, "asset_tag": "LT-1", "kiosk": "K"}),
    ("POST", "/reservations/1/cancel", None),
    ("GET", "/loans", None),
    ("POST", "/staff", {"name": "Ann", "pin": "1234", "code": "ANN1"}),
    ("POST", "/kiosks/K/commands", {"kind": "refresh"}),
    ("GET", "/reports", None),
]


DOOR_CASES: list[tuple[dict[str, str], bool, str]] = [
    ({}, True, "unknown admin token"),
    ({"Authorization": "Bearer wrong"}, True, "unknown admin token"),
    ({"Authorization": f"Basic {TOKEN}"}, True, "unknown admin token"),
    ({"Authorization": "Bearer " + "x" * 5000}, True, "unknown admin token"),
    (AUTH, False, "back office is off"),  # no admin-token file: the right token is no use
]


def test_every_route_needs_the_admin_token(tmp_path: Path) -> None:
    # The door is passed before any query: one database (SQLite) is enough.
    engine = db.make_engine(f"sqlite:///{tmp_path / 'door.db'}")
    db.migrate(engine)
    for headers, token_configured, detail in DOOR_CASES:
        with admin_client(engine, token=TOKEN if token_configured else None) as client:
            for method, path, body in ROUTES:
                answer = client.request(method, ADMIN + path, json=body, headers=headers)
                assert answer.status_code == 401, (headers, path, answer.text)
                assert detail in answer.json()["detail"]
                assert answer.headers["www-authenticate"] == "Bearer"
            # A malformed body does not get past the door either (no hint of the schema).
            bad = client.post(ADMIN + "/kiosks", json={"nom": 1}, headers=headers)
            assert bad.status_code == 401
    assert count(engine, Kiosk) == 0
    engine.dispose()


def test_a_kiosk_token_is_not_an_admin_token(api: TestClient) -> None:
    kiosk_token = api.post(ADMIN + "/kiosks", json={"name": "K"}, headers=AUTH).json()["token"]
    answer = api.get(ADMIN + "/loans", headers={"Authorization": f"Bearer {kiosk_token}"})
    assert answer.status_code == 401


def test_the_whole_back_office_story(api: TestClient, engine: Engine) -> None:
    made = api.post(ADMIN + "/kiosks", json={"name": "Library 1"}, headers=AUTH)
    assert made.status_code == 201
    assert made.headers["cache-control"] == "no-store"  # a secret: no cache may keep it
    token = made.json()["token"]
    assert len(token) >= 43 and token not in every_value(engine)
    again = api.post(ADMIN + "/kiosks", json={"name": "Library 1"}, headers=AUTH)
    assert again.status_code == 409 and again.json() == {
        "detail": "a kiosk named 'Library 1' already exists"
    }

    device = api.post(
        ADMIN + "/devices",
        json={"asset_tag": "LT-001", "type": "laptop", "size": "L", "charging": True},
        headers=AUTH,
    )
    assert device.status_code == 201
    assert device.json() | {"id": 0} == {
        "id": 0,
        "asset_tag": "LT-001",
        "type": "laptop",
        "size": "L",
        "charging": True,
        "status": "available",
    }
    dup = api.post(ADMIN + "/devices", json={"asset_tag": "LT-001", "type": "tablet"}, headers=AUTH)
    assert dup.status_code == 409 and "duplicate asset tag" in dup.json()["detail"]

    borrower = api.post(ADMIN + "/borrowers", json={"national_number": NUMBER}, headers=AUTH)
    assert borrower.status_code == 201 and borrower.json()["code_only"] is False
    twice = api.post(ADMIN + "/borrowers", json={"national_number": DIGITS}, headers=AUTH)
    assert twice.status_code == 409 and "already registered" in twice.json()["detail"]
    with Session(engine) as session:
        stored = session.get(Borrower, borrower.json()["id"])
        assert stored is not None and stored.key == keys.borrower_key(PEPPER, DIGITS)
    code_only = api.post(
        ADMIN + "/borrowers", json={"code_only": True, "language": "fr"}, headers=AUTH
    )
    assert code_only.status_code == 201 and code_only.json()["code_only"] is True

    body = {"borrower_id": borrower.json()["id"], "asset_tag": "LT-001", "kiosk": "Library 1"}
    reservation = api.post(ADMIN + "/reservations", json=body, headers=AUTH)
    assert reservation.status_code == 201
    code = reservation.json()["pickup_code"]
    assert len(code) == 6 and code.isdigit()
    taken = api.post(ADMIN + "/reservations", json=body, headers=AUTH)
    assert taken.status_code == 409 and "not available" in taken.json()["detail"]
    elsewhere = api.post(ADMIN + "/reservations", json=body | {"kiosk": "Nowhere"}, headers=AUTH)
    assert elsewhere.status_code == 409 and "unknown kiosk" in elsewhere.json()["detail"]

    reservation_id = reservation.json()["id"]
    cancelled = api.post(f"{ADMIN}/reservations/{reservation_id}/cancel", headers=AUTH)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    repeat = api.post(f"{ADMIN}/reservations/{reservation_id}/cancel", headers=AUTH)
    assert repeat.status_code == 409 and "already cancelled" in repeat.json()["detail"]
    unknown = api.post(f"{ADMIN}/reservations/999/cancel", headers=AUTH)
    assert unknown.status_code == 409 and "unknown" in unknown.json()["detail"]
    assert api.post(ADMIN + "/reservations", json=body, headers=AUTH).status_code == 201

    staff = api.post(
        ADMIN + "/staff",
        json={"name": "Bob", "pin": "4321", "code": "STAFF1", "role": "admin"},
        headers=AUTH,
    )
    assert staff.status_code == 201 and staff.json() | {"id": 0} == {
        "id": 0,
        "name": "Bob",
        "role": "admin",
    }
    in_use = api.post(
        ADMIN + "/staff", json={"name": "Eve", "pin": "1111", "code": "STAFF1"}, headers=AUTH
    )
    assert in_use.status_code == 409 and "already in use" in in_use.json()["detail"]
    by_eid = api.post(
        ADMIN + "/staff",
        json={"name": "Ann", "pin": "2222", "national_number": NUMBER},
        headers=AUTH,
    )
    assert by_eid.status_code == 201
    short_pin = api.post(
        ADMIN + "/staff", json={"name": "Cy", "pin": "12", "code": "CY12"}, headers=AUTH
    )
    assert short_pin.status_code == 422 and "PIN" in short_pin.json()["detail"]

    values = every_value(engine)
    for secret in (token, "STAFF1", DIGITS, NUMBER):
        assert secret not in values
    # A 6-digit code or a PIN could occur by chance inside a hash: no cell may BE one.
    assert {code, "4321", "2222"}.isdisjoint(cells(engine))


def test_loans_lists_open_loans_and_the_overdue_ones(api: TestClient, engine: Engine) -> None:
    assert api.get(ADMIN + "/loans", headers=AUTH).json() == {"items": []}
    with db.session_factory(engine)() as session:
        for n, due_in in ((1, -1), (2, 5)):
            device = Device(asset_tag=f"LT-{n}", type="laptop", status="on_loan")
            session.add(device)
            session.flush()
            now = utcnow()
            session.add(
                Loan(
                    device_id=device.id,
                    started_at=now - timedelta(days=14),
                    due_at=now + timedelta(days=due_in),
                )
            )
        session.commit()
    every = api.get(ADMIN + "/loans", headers=AUTH).json()["items"]
    assert [(r["asset_tag"], r["overdue"]) for r in every] == [("LT-1", True), ("LT-2", False)]
    overdue = api.get(ADMIN + "/loans?overdue=true", headers=AUTH).json()["items"]
    assert [r["asset_tag"] for r in overdue] == ["LT-1"]
    assert api.get(ADMIN + "/loans?overdue=maybe", headers=AUTH).status_code == 422


def test_commands_are_queued_for_the_kiosk(api: TestClient, engine: Engine) -> None:
    api.post(ADMIN + "/kiosks", json={"name": "Bib Noord"}, headers=AUTH)
    url = ADMIN + "/kiosks/Bib%20Noord/commands"
    sent = [
        api.post(url, json=body, headers=AUTH)
        for body in (
            {"kind": "open", "compartment": 3, "reason": "resident on the phone"},
            {"kind": "out_of_service", "compartment": 4},
            {"kind": "back_in_service", "compartment": 4},
            {"kind": "refresh"},
        )
    ]
    assert [a.status_code for a in sent] == [201] * 4
    first = sent[0].json()
    assert first["created_at"].endswith("+00:00")
    assert first | {"id": 0, "created_at": ""} == {
        "id": 0,
        "kiosk": "Bib Noord",
        "kind": "open",
        "compartment": 3,
        "reason": "resident on the phone",
        "created_at": "",
    }
    with Session(engine) as session:
        stored = session.scalars(select(Command).order_by(Command.id)).all()
    assert [(c.kind, c.compartment, c.done_at) for c in stored] == [
        ("open", 3, None),
        ("out_of_service", 4, None),
        ("back_in_service", 4, None),
        ("refresh", None, None),
    ]
    assert [c.id for c in stored] == [a.json()["id"] for a in sent]


BAD_COMMANDS: list[tuple[dict[str, Any], str]] = [
    ({"kind": "open", "compartment": 3}, "needs a reason"),
    ({"kind": "open", "reason": "x"}, "needs a compartment"),
    ({"kind": "open", "compartment": 0, "reason": "x"}, "greater than or equal to 1"),
    ({"kind": "open", "compartment": 2**40, "reason": "x"}, "less than or equal"),
    ({"kind": "refresh", "compartment": 1}, "takes no compartment"),
    ({"kind": "back_in_service", "compartment": 1, "reason": "x"}, "takes no reason"),
    ({"kind": "reboot"}, "Input should be"),
    ({"kind": "refresh", "extra": 1}, "Extra inputs"),
    ({"kind": "open", "compartment": 1, "reason": "a\nb"}, "should match pattern"),
]


def test_a_bad_command_is_422_and_nothing_queued(api: TestClient, engine: Engine) -> None:
    api.post(ADMIN + "/kiosks", json={"name": "K"}, headers=AUTH)
    for body, message in BAD_COMMANDS:
        answer = api.post(ADMIN + "/kiosks/K/commands", json=body, headers=AUTH)
        assert answer.status_code == 422, body
        assert message in str(answer.json()["detail"]), (body, answer.text)
    assert count(engine, Command) == 0


def test_a_command_for_an_unknown_kiosk_is_refused(api: TestClient, engine: Engine) -> None:
    answer = api.post(ADMIN + "/kiosks/Nowhere/commands", json={"kind": "refresh"}, headers=AUTH)
    assert answer.status_code == 409 and answer.json() == {"detail": "unknown kiosk 'Nowhere'"}
    assert count(engine, Command) == 0


def test_unknown_fields_and_bad_types_are_refused_and_change_nothing(
    api: TestClient, engine: Engine
) -> None:
    bad = [
        ("/kiosks", {"name": "K", "token": "mine"}),
        ("/kiosks", {"name": "K\x00"}),
        ("/devices", {"asset_tag": "LT-1", "type": "phone"}),
        ("/devices", {"asset_tag": "", "type": "laptop"}),
        ("/reservations", {"borrower_id": 2**40, "asset_tag": "LT-1", "kiosk": "K"}),
        ("/borrowers", {"code_only": True, "contact": "a\x00b"}),
    ]
    for path, body in bad:
        answer = api.post(ADMIN + path, json=body, headers=AUTH)
        assert answer.status_code == 422, (path, answer.text)
    assert count(engine, Kiosk) == count(engine, Device) == count(engine, Borrower) == 0
