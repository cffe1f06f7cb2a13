"""Helpers of the kiosk API tests: a small world (kiosks, devices, borrowers, reservations)
made through the back-office services, and journal rows shaped as the kiosk core writes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loanserver import db, keys, services
from loanserver.api.app import create_app
from loanserver.models import Alarm, Base

PEPPER = b"test pepper"
NATIONAL_NUMBER = "85073003328"
BORROWER_KEY = keys.borrower_key(PEPPER, NATIONAL_NUMBER)
TX_PATH = "/api/v1/kiosk/transactions"


@dataclass
class World:
    """Two kiosks, devices LT-1..LT-n, one borrower with a key, one reservation per device."""

    engine: Engine
    client: TestClient
    token: str
    other_token: str
    kiosk_id: int
    borrower_id: int
    reservations: dict[str, int] = field(default_factory=dict)  # asset tag -> id
    seq: int = 0

    @property
    def auth(self) -> dict[str, str]:
        """The kiosk's authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    def session(self) -> Session:
        """A session on the server's database (to look at what the API did)."""
        return db.session_factory(self.engine)()

    def row(self, kind: str, payload: dict[str, Any], **over: Any) -> dict[str, Any]:
        """A journal row with the next sequence number."""
        self.seq += 1
        row = {
            "uuid": str(uuid.uuid4()),
            "seq": self.seq,
            "kind": kind,
            "occurred_at": datetime.now(UTC).isoformat(),
            "boot": 1,
            "payload": payload,
        }
        row.update(over)
        return row

    def send(self, *rows: dict[str, Any]) -> dict[str, Any]:
        """POST the rows as one batch; asserts 200 and returns the answer."""
        answer = self.client.post(TX_PATH, headers=self.auth, json={"transactions": list(rows)})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def count(self, model: type[Base], *where: Any) -> int:
        """How many rows of ``model`` match."""
        with self.session() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def conflicts(self) -> list[str]:
        """The details of the server's conflict alarms, oldest first."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(Alarm.detail).where(Alarm.kind == "conflict").order_by(Alarm.id)
                )
            )

    def cancel(self, asset_tag: str) -> None:
        """Cancel the device's reservation through the back office."""
        with self.session() as session:
            services.cancel(session, self.reservations[asset_tag])


def make_world(engine: Engine, client: TestClient, devices: int = 3) -> World:
    """Kiosks ``kiosk-1`` (ours) and ``kiosk-2``, devices reserved at kiosk-1."""
    with db.session_factory(engine)() as session:
        ours = services.add_kiosk(session, "kiosk-1")
        other = services.add_kiosk(session, "kiosk-2")
        borrower = services.register_borrower(
            session, pepper=PEPPER, national_number=NATIONAL_NUMBER
        )
        world = World(engine, client, ours.token, other.token, ours.id, borrower.id)
        for n in range(1, devices + 1):
            tag = f"LT-{n}"
            services.add_device(session, tag, type="laptop", size="M")
            world.reservations[tag] = services.reserve(session, borrower.id, tag, "kiosk-1").id
    return world


def pickup(world: World, tag: str, **over: Any) -> dict[str, Any]:
    """A pickup row as ``kiosk.core.pickup.record_pickup`` journals it."""
    payload: dict[str, Any] = {
        "open_id": uuid.uuid4().hex,
        "compartment": 2,
        "reservation_id": str(world.reservations.get(tag, 0)),
        "asset_tag": tag,
        "borrower_key": BORROWER_KEY,
        "via": "eid",
        "loan_id": uuid.uuid4().hex,
        "started_at": datetime.now(UTC).isoformat(),
        "due_date": "2026-12-10",
    }
    payload.update(over)
    return world.row("pickup", payload)


def give_back(world: World, tag: str, loan_id: str | None, **over: Any) -> dict[str, Any]:
    """A return row as ``kiosk.core.returns.record_return`` journals it."""
    payload: dict[str, Any] = {
        "open_id": uuid.uuid4().hex,
        "compartment": 3,
        "asset_tag": tag,
        "loan_id": loan_id,
        "borrower_key": None,
        "unknown": False,
        "receipt": "ABCD1234",
    }
    payload.update(over)
    return world.row("return", payload)


def staff_job(world: World, kind: str, tag: str, **over: Any) -> dict[str, Any]:
    """A load/unload row as ``kiosk.core.staff.staff_door_closed`` journals it."""
    payload: dict[str, Any] = {
        "open_id": uuid.uuid4().hex,
        "compartment": 4,
        "staff_id": "3",
        "reservation_id": str(world.reservations[tag]),
        "asset_tag": tag,
    }
    payload.update(over)
    return world.row(kind, payload)


@contextmanager
def open_world(engine: Engine, devices: int = 3) -> Iterator[World]:
    """The app on ``engine`` behind a TestClient (real ASGI), with a fresh world."""
    with TestClient(create_app(engine, pepper=PEPPER)) as client:
        yield make_world(engine, client, devices)
