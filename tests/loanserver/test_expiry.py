"""Reservations nobody picked up expire: the kiosk is told, an unloaded device is freed."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from loanserver import db, services
from loanserver.api.app import create_app
from loanserver.models import Device, Reservation, utcnow


def _setup(engine: Engine) -> tuple[str, int, int]:
    """A kiosk, two devices, one borrower and two reservations; (token, r1, r2)."""
    with db.session_factory(engine)() as session:
        token = services.add_kiosk(session, "k1").token
        services.add_device(session, "LT-1", type="laptop")
        services.add_device(session, "LT-2", type="laptop")
        borrower = services.register_borrower(
            session, pepper=None, national_number=None, code_only=True
        )
        r1 = services.reserve(session, borrower.id, "LT-1", "k1").id
        r2 = services.reserve(session, borrower.id, "LT-2", "k1").id
        # r2 was loaded into compartment 4 by staff.
        session.execute(
            update(Reservation).where(Reservation.id == r2).values(status="loaded", compartment=4)
        )
        session.execute(update(Device).where(Device.asset_tag == "LT-2").values(status="loaded"))
        session.commit()
    return token, r1, r2


def _age(engine: Engine, days: int) -> None:
    with db.session_factory(engine)() as session:
        past = utcnow() - timedelta(days=days)
        session.execute(update(Reservation).values(expires_at=past))
        session.commit()


def test_an_expired_reservation_leaves_the_full_pull_and_shows_in_the_since_pull(
    engine: Engine,
) -> None:
    token, r1, r2 = _setup(engine)
    client = TestClient(create_app(engine))
    auth = {"Authorization": f"Bearer {token}"}
    first = client.get("/api/v1/kiosk/reservations", headers=auth).json()
    assert sorted(i["id"] for i in first["items"]) == sorted([str(r1), str(r2)])
    _age(engine, 1)
    since = client.get(
        "/api/v1/kiosk/reservations", headers=auth, params={"since": first["cursor"]}
    ).json()
    assert {i["id"]: i["status"] for i in since["items"]} == {
        str(r1): "expired",
        str(r2): "expired",
    }
    full = client.get("/api/v1/kiosk/reservations", headers=auth).json()
    assert full["items"] == []
    with db.session_factory(engine)() as session:
        statuses = dict(
            session.execute(
                Device.__table__.select().with_only_columns(Device.asset_tag, Device.status)
            ).all()
        )
    # Never loaded: back on the shelf. Loaded: still in compartment 4 until staff unload it.
    assert statuses == {"LT-1": "available", "LT-2": "loaded"}


def test_a_lapsed_device_can_be_reserved_again(engine: Engine) -> None:
    _setup(engine)
    _age(engine, 1)
    with db.session_factory(engine)() as session:
        borrower = services.register_borrower(
            session, pepper=None, national_number=None, code_only=True
        )
        again = services.reserve(session, borrower.id, "LT-1", "k1")
        assert again.pickup_code
