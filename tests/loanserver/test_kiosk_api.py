"""The kiosk API over real ASGI (TestClient) on a real database: authentication, pulls with
cursors, batches stored exactly once (also when two copies race over real HTTP).
Heartbeat, health and access log: test_kiosk_heartbeat.py.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from loanserver import apply
from loanserver.api.app import create_app
from loanserver.models import Device, Heartbeat, Kiosk, Loan, Staff, Transaction
from tests.loanserver.kiosk_support import (
    BORROWER_KEY,
    TX_PATH,
    World,
    make_world,
    open_world,
    pickup,
)
from tests.support.live_server import LiveServer

KIOSK = "/api/v1/kiosk"
UNKNOWN = {"detail": "unknown kiosk token"}


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    with open_world(engine) as world:
        yield world


# -- authentication ---------------------------------------------------------------------------
ROUTES = [
    ("get", "/reservations"),
    ("get", "/loans"),
    ("get", "/staff"),
    ("post", "/transactions"),
    ("post", "/heartbeat"),
]
BAD_HEADERS = [None, "Bearer not-a-token", "Basic a2lvc2s6cHc=", "Bearer ", "Bearer " + "x" * 5000]


def test_a_missing_or_wrong_token_gets_401_and_nothing_else(world: World) -> None:
    for method, path in ROUTES:
        for header in BAD_HEADERS:
            headers = {"Authorization": header} if header is not None else {}
            answer = world.client.request(method, KIOSK + path, headers=headers, json={})
            assert answer.status_code == 401, (method, path, header)
            assert answer.json() == UNKNOWN
    assert world.count(Transaction) == 0 and world.count(Heartbeat) == 0


def test_every_authenticated_call_updates_last_seen(world: World) -> None:
    with world.session() as session:
        assert session.get(Kiosk, world.kiosk_id).last_seen_at is None  # type: ignore[union-attr]
    before = datetime.now(UTC)
    assert world.client.get(KIOSK + "/staff", headers=world.auth).status_code == 200
    with world.session() as session:
        seen = session.get(Kiosk, world.kiosk_id).last_seen_at  # type: ignore[union-attr]
        other = session.scalar(select(Kiosk.last_seen_at).where(Kiosk.name == "kiosk-2"))
    assert seen is not None and seen >= before - timedelta(seconds=1)
    assert other is None


# -- pulls ------------------------------------------------------------------------------------
def test_full_pull_lists_this_kiosks_open_reservations(world: World) -> None:
    world.cancel("LT-3")
    reply = world.client.get(KIOSK + "/reservations", headers=world.auth)
    assert reply.headers["Cache-Control"] == "no-store"  # keys and code hashes inside
    answer = reply.json()
    assert answer["full"] is True and answer["cursor"]
    items = {item["asset_tag"]: item for item in answer["items"]}
    assert set(items) == {"LT-1", "LT-2"}  # LT-3 was cancelled
    item = items["LT-1"]
    assert item["id"] == str(world.reservations["LT-1"])
    assert item["status"] == "requested"
    assert item["borrower_key"] == BORROWER_KEY
    assert item["code_hash"].startswith("pbkdf2-sha256$")
    assert (item["device_type"], item["size"], item["charging"]) == ("laptop", "M", False)
    assert item["compartment"] is None and item["loan_days"] == 14
    assert item["expires_at"].endswith("+00:00")  # ISO 8601 with offset (docs/api.md)
    other = {"Authorization": f"Bearer {world.other_token}"}
    assert world.client.get(KIOSK + "/reservations", headers=other).json()["items"] == []


def test_a_since_pull_reports_cancellations(world: World) -> None:
    first = world.client.get(KIOSK + "/reservations", headers=world.auth).json()
    world.cancel("LT-2")
    since = world.client.get(
        KIOSK + "/reservations", headers=world.auth, params={"since": first["cursor"]}
    ).json()
    assert since["full"] is False
    statuses = {item["asset_tag"]: item["status"] for item in since["items"]}
    assert statuses["LT-2"] == "cancelled"  # the kiosk learns it must not hand it out
    assert since["cursor"] != first["cursor"]


def test_a_since_pull_overlaps_but_leaves_old_rows_out(world: World) -> None:
    old = base64.urlsafe_b64encode(
        f"v1:{(datetime.now(UTC) + timedelta(hours=1)).isoformat()}".encode()
    ).decode()
    answer = world.client.get(KIOSK + "/reservations", headers=world.auth, params={"since": old})
    assert answer.status_code == 200 and answer.json()["items"] == []


BAD_CURSORS = [
    "not base64!",
    base64.urlsafe_b64encode(b"v1:yesterday").decode(),
    base64.urlsafe_b64encode(b"2026-11-26T15:00:00+00:00").decode(),
    base64.urlsafe_b64encode(b"v1:2026-11-26T15:00:00").decode(),  # no offset
    base64.urlsafe_b64encode(b"v1:0001-01-01T00:00:00+00:00").decode(),
    "",
]


def test_an_invalid_cursor_is_400(world: World) -> None:
    for path in ("/reservations", "/loans"):
        for cursor in BAD_CURSORS:
            answer = world.client.get(KIOSK + path, headers=world.auth, params={"since": cursor})
            assert answer.status_code == 400, (path, cursor)
            assert "cursor" in answer.json()["detail"]


def test_loans_pull_full_and_since_with_returns(world: World) -> None:
    row = pickup(world, "LT-1")
    world.send(row)
    full = world.client.get(KIOSK + "/loans", headers=world.auth).json()
    assert full["full"] is True
    [loan] = full["items"]
    assert loan["id"] == row["payload"]["loan_id"]
    assert loan["asset_tag"] == "LT-1" and loan["borrower_key"] == BORROWER_KEY
    assert loan["due_at"] == "2026-12-10T23:59:00+00:00"
    assert loan["reservation_id"] == str(world.reservations["LT-1"])
    assert loan["returned_at"] is None
    world.send(world.row("return", {"asset_tag": "LT-1", "loan_id": loan["id"]}))
    assert world.client.get(KIOSK + "/loans", headers=world.auth).json()["items"] == []
    since = world.client.get(
        KIOSK + "/loans", headers=world.auth, params={"since": full["cursor"]}
    ).json()
    assert since["full"] is False
    assert [(i["id"], i["returned_at"] is not None) for i in since["items"]] == [(loan["id"], True)]


def test_staff_pull_lists_active_staff_only(world: World) -> None:
    with world.session() as session:
        session.add_all(
            [
                Staff(name="Ann", code_hash="pbkdf2-sha256$c", pin_hash="pbkdf2-sha256$p"),
                Staff(name="Bob", borrower_key="b" * 64, pin_hash="pbkdf2-sha256$q", active=False),
            ]
        )
        session.commit()
    items = world.client.get(KIOSK + "/staff", headers=world.auth).json()["items"]
    assert [(i["name"], i["role"], i["code_hash"], i["borrower_key"]) for i in items] == [
        ("Ann", "staff", "pbkdf2-sha256$c", None)
    ]
    assert isinstance(items[0]["id"], str) and items[0]["pin_hash"] == "pbkdf2-sha256$p"


# -- transactions -----------------------------------------------------------------------------
def _bad_rows(world: World) -> list[tuple[str, dict[str, Any]]]:
    good = world.row("kiosk_started", {})
    return [
        ("uuid not a uuid", {**good, "uuid": "1234"}),
        ("seq < 1", {**good, "seq": 0}),
        ("seq too big", {**good, "seq": 2**31}),
        ("kind upper case", {**good, "kind": "Pickup"}),
        ("kind too long", {**good, "kind": "a" * 41}),
        ("payload a list", {**good, "payload": ["x"]}),
        ("payload > 16 KiB", {**good, "payload": {"x": "y" * 16_400}}),
        ("unknown field", {**good, "extra": 1}),
        ("naive time", {**good, "occurred_at": "2026-11-26T15:00:00"}),
        ("not a time", {**good, "occurred_at": "yesterday"}),
        ("time out of range", {**good, "occurred_at": "0001-01-01T00:00:00+14:00"}),
    ]


def test_malformed_rows_get_422_and_nothing_is_stored(world: World) -> None:
    for what, bad in _bad_rows(world):
        good = pickup(world, "LT-1")
        answer = world.client.post(TX_PATH, headers=world.auth, json={"transactions": [good, bad]})
        assert answer.status_code == 422, what
        assert "detail" in answer.json()
    assert world.count(Transaction) == 0 and world.count(Loan) == 0


def test_a_422_does_not_echo_the_values_sent(world: World) -> None:
    bad = world.row("pickup", ["secret-" + BORROWER_KEY])  # type: ignore[arg-type]
    answer = world.client.post(TX_PATH, headers=world.auth, json={"transactions": [bad]})
    assert answer.status_code == 422
    assert BORROWER_KEY not in answer.text


@pytest.mark.parametrize("size", [0, 501])
def test_an_empty_or_oversized_batch_is_422(world: World, size: int) -> None:
    rows = [world.row("kiosk_started", {}) for _ in range(size)]
    answer = world.client.post(TX_PATH, headers=world.auth, json={"transactions": rows})
    assert answer.status_code == 422
    assert world.count(Transaction) == 0


def test_a_batch_of_500_is_stored_in_order(world: World) -> None:
    rows = [world.row("staff_login", {"staff_id": "3"}) for _ in range(500)]
    answer = world.send(*rows)
    assert answer == {"accepted": [r["uuid"] for r in rows], "duplicates": []}
    with world.session() as session:
        seqs = list(session.scalars(select(Transaction.seq).order_by(Transaction.id)))
    assert seqs == list(range(1, 501))


def test_a_repeated_batch_is_acknowledged_and_applied_once(world: World) -> None:
    rows = [pickup(world, "LT-1"), world.row("kiosk_started", {})]
    first = world.send(*rows)
    assert first == {"accepted": [r["uuid"] for r in rows], "duplicates": []}
    newer = pickup(world, "LT-2")
    again = world.send(*rows, newer)
    assert again == {"accepted": [newer["uuid"]], "duplicates": [r["uuid"] for r in rows]}
    assert world.count(Loan) == 2  # LT-1 once, LT-2 once
    assert world.count(Transaction) == 3
    assert world.conflicts() == []


def test_the_same_batch_posted_twice_at_once_is_stored_once(engine: Engine) -> None:
    """Two copies of a batch race over real HTTP: every uuid stored once, loans once."""
    with LiveServer(engine) as server:
        with TestClient(create_app(engine)) as client:
            world = make_world(engine, client, devices=6)
        for round_ in range(3):
            tags = [f"LT-{2 * round_ + 1}", f"LT-{2 * round_ + 2}"]
            rows = [pickup(world, tag) for tag in tags]
            rows += [world.row("staff_login", {}) for _ in range(40)]
            answers = _post_together(server.url, world.token, {"transactions": rows}, copies=2)
            for row in rows:
                places = [row["uuid"] in a["accepted"] for a in answers]
                places += [row["uuid"] in a["duplicates"] for a in answers]
                assert places.count(True) == 2 and any(places[:2]), row["uuid"]
        assert world.count(Transaction) == 3 * 42
        assert world.count(Loan) == 6
        assert world.conflicts() == []


def _post_together(url: str, token: str, body: dict[str, Any], copies: int) -> list[Any]:
    barrier = threading.Barrier(copies, timeout=10)
    answers: list[Any] = [None] * copies

    def post(i: int) -> None:
        with requests.Session() as http:
            barrier.wait()
            reply = http.post(
                url + TX_PATH, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            answers[i] = (reply.status_code, reply.json())

    threads = [threading.Thread(target=post, args=(i,)) for i in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=40)
    assert all(a is not None and a[0] == 200 for a in answers), answers
    return [a[1] for a in answers]


def test_a_row_without_wall_time_is_stored_and_applied_at_receipt(world: World) -> None:
    row = pickup(world, "LT-1")
    world.send(row)
    before = datetime.now(UTC)
    back = world.row("return", {"asset_tag": "LT-1", "loan_id": row["payload"]["loan_id"]})
    assert world.send({**back, "occurred_at": None})["accepted"] == [back["uuid"]]
    with world.session() as session:
        loan = session.scalars(select(Loan)).one()
        assert loan.returned_at is not None and loan.returned_at >= before
        stored = session.scalars(select(Transaction).where(Transaction.uuid == back["uuid"])).one()
        assert stored.occurred_at is None


def test_a_uuid_is_stored_once_and_answered_as_the_kiosk_spelled_it(world: World) -> None:
    row = pickup(world, "LT-1")
    assert world.send(row, row) == {"accepted": [row["uuid"]], "duplicates": []}
    assert world.count(Loan) == 1 and world.count(Transaction) == 1
    spelled = str(uuid.uuid4()).upper()
    row = world.row("kiosk_started", {}, uuid=spelled)
    assert world.send(row) == {"accepted": [spelled], "duplicates": []}
    lower = world.row("kiosk_started", {}, uuid=spelled.lower())
    assert world.send(lower) == {"accepted": [], "duplicates": [spelled.lower()]}


def test_a_batch_that_fails_midway_keeps_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server fault while applying: 5xx, and nothing of the batch is kept (sent again)."""
    real_apply = apply.apply

    def failing(session: Any, kiosk_id: int, row: Transaction) -> None:
        if row.kind == "return":
            raise RuntimeError("simulated fault after the pickup was applied")
        real_apply(session, kiosk_id, row)

    monkeypatch.setattr(apply, "apply", failing)
    rows = [pickup(world, "LT-1"), world.row("return", {"asset_tag": "LT-1"})]
    with TestClient(create_app(world.engine), raise_server_exceptions=False) as client:
        answer = client.post(TX_PATH, headers=world.auth, json={"transactions": rows})
    assert answer.status_code == 500
    assert world.count(Transaction) == 0 and world.count(Loan) == 0
    assert _device_status(world, "LT-1") == "reserved"
    monkeypatch.setattr(apply, "apply", real_apply)
    assert world.send(*rows)["accepted"] == [r["uuid"] for r in rows]  # the retry goes through
    assert world.count(Loan) == 1


def _device_status(world: World, tag: str) -> str:
    with world.session() as session:
        return session.scalars(select(Device.status).where(Device.asset_tag == tag)).one()
