"""The kiosk heartbeat (stored; remote commands delivered until acknowledged), health
(no token; 503 with the reason when the database fails) and the access log (one JSON line
per request, no secrets), over real ASGI on a real database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from loanserver import db
from loanserver.api.app import create_app
from loanserver.models import Command, Heartbeat, Kiosk
from tests.loanserver.kiosk_support import BORROWER_KEY, TX_PATH, World, open_world, pickup

KIOSK = "/api/v1/kiosk"


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    with open_world(engine) as world:
        yield world


# -- heartbeat --------------------------------------------------------------------------------
def _command(world: World, kiosk_name: str = "kiosk-1", **values: Any) -> int:
    with world.session() as session:
        kiosk_id = session.scalar(select(Kiosk.id).where(Kiosk.name == kiosk_name))
        command = Command(kiosk_id=kiosk_id, **values)
        session.add(command)
        session.commit()
        return command.id


BEAT: dict[str, Any] = {
    "compartments": [{"number": 1, "status": "loaded", "asset_tag": "LT-1", "note": ""}],
    "alarms": [
        {
            "id": "a1",
            "kind": "jammed",
            "compartment": 3,
            "detail": "",
            "raised_at": "2026-11-26T15:00:00+00:00",
        }
    ],
    "versions": {"kiosk": "0.1.0"},
    "backlog": 7,
    "acked_commands": [],
}


def test_a_heartbeat_is_stored_and_answers_pending_commands_until_acked(world: World) -> None:
    first = _command(world, kind="open", compartment=3, reason="resident on phone")
    second = _command(world, kind="refresh")
    theirs = _command(world, "kiosk-2", kind="refresh")  # another kiosk's: never shown here
    answer = world.client.post(KIOSK + "/heartbeat", headers=world.auth, json=BEAT)
    assert answer.status_code == 200
    body = answer.json()
    assert body["server_time"].endswith("+00:00")
    assert body["commands"] == [
        {"id": first, "kind": "open", "compartment": 3, "reason": "resident on phone"},
        {"id": second, "kind": "refresh", "compartment": None, "reason": None},
    ]
    with world.session() as session:
        beat = session.scalars(select(Heartbeat)).one()
        assert beat.kiosk_id == world.kiosk_id and beat.backlog == 7
        assert beat.payload["compartments"][0]["asset_tag"] == "LT-1"
        assert beat.payload["versions"] == {"kiosk": "0.1.0"}
        assert session.get(Command, first).delivered_at is not None  # type: ignore[union-attr]
    # Not acknowledged yet: delivered again.
    again = world.client.post(KIOSK + "/heartbeat", headers=world.auth, json={}).json()
    assert [c["id"] for c in again["commands"]] == [first, second]
    acks = [{"id": first, "result": "done", "detail": ""}, {"id": theirs, "result": "done"}]
    after = world.client.post(
        KIOSK + "/heartbeat", headers=world.auth, json={"acked_commands": acks}
    )
    assert [c["id"] for c in after.json()["commands"]] == [second]
    with world.session() as session:
        done = session.get(Command, first)
        assert done is not None and done.result == "done" and done.done_at is not None
        # A kiosk cannot acknowledge another kiosk's command.
        assert session.get(Command, theirs).done_at is None  # type: ignore[union-attr]


def test_a_remote_command_transaction_acknowledges_too(world: World) -> None:
    command = _command(world, kind="out_of_service", compartment=2, reason="broken")
    world.send(
        world.row("remote_command", {"command_id": command, "result": "refused", "detail": "open"})
    )
    answer = world.client.post(KIOSK + "/heartbeat", headers=world.auth, json={}).json()
    assert answer["commands"] == []
    with world.session() as session:
        assert session.get(Command, command).result == "refused"  # type: ignore[union-attr]


def test_an_acknowledgement_detail_is_stored_as_one_clipped_line(world: World) -> None:
    command = _command(world, kind="open", compartment=1)
    detail = "door\njammed " + "x" * 500
    ack = {"acked_commands": [{"id": command, "result": "failed", "detail": detail}]}
    assert world.client.post(KIOSK + "/heartbeat", headers=world.auth, json=ack).status_code == 200
    with world.session() as session:
        stored = session.get(Command, command)
        assert stored is not None and stored.result == "failed" and stored.detail is not None
        assert stored.detail.startswith("door jammed x") and len(stored.detail) == 200


BAD_BEATS: list[dict[str, Any]] = [
    {"backlog": -1},
    {"surprise": 1},
    {"compartments": [{"number": 0, "status": "empty"}]},
    {"acked_commands": [{"id": 1, "result": "maybe"}]},
    {"alarms": [{"id": "a" * 65, "kind": "jammed"}]},
    {"compartments": [{"number": 1, "status": "empty", "note": "two\nlines"}]},
]


def test_a_malformed_heartbeat_is_422_and_not_stored(world: World) -> None:
    for bad in BAD_BEATS:
        answer = world.client.post(KIOSK + "/heartbeat", headers=world.auth, json=bad)
        assert answer.status_code == 422, bad
    assert world.count(Heartbeat) == 0


# -- health and access log --------------------------------------------------------------------
def test_health_is_ok_without_token(world: World) -> None:
    answer = world.client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "database": "ok"}


def test_health_is_503_with_the_reason_when_the_database_fails(tmp_path: Any) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    try:
        with TestClient(create_app(engine)) as client:
            answer = client.get("/health")
    finally:
        engine.dispose()
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "error" and "unable to open database" in body["database"]


def test_the_access_log_is_one_json_line_without_secrets(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="loanserver.access")
    row = pickup(world, "LT-1")
    world.client.post(TX_PATH + "?tag=q123", headers=world.auth, json={"transactions": [row]})
    world.client.get(KIOSK + "/staff", headers={"Authorization": "Bearer wrong-token-xyz"})
    records = [r for r in caplog.records if r.name == "loanserver.access"]
    assert len(records) == 2
    lines = [json.loads(r.getMessage()) for r in records]
    assert lines[0]["method"] == "POST" and lines[0]["path"] == TX_PATH
    assert lines[0]["status"] == 200 and lines[0]["kiosk"] == world.kiosk_id
    assert isinstance(lines[0]["ms"], float) and lines[0]["time"].endswith("+00:00")
    assert lines[1]["status"] == 401 and lines[1]["kiosk"] is None
    text = caplog.text
    for secret in (world.token, "wrong-token-xyz", BORROWER_KEY, row["payload"]["loan_id"]):
        assert secret not in text
    assert "q123" not in text  # no query string
