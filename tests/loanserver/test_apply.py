"""What each kiosk transaction kind changes on the server (docs/api.md, the table), and
"physical facts win": a conflicting row is applied as far as sensible, raises a server
``conflict`` alarm and is still answered 200.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from loanserver.models import Alarm, Command, Device, Loan, Reservation, Transaction
from tests.loanserver.kiosk_support import (
    BORROWER_KEY,
    World,
    give_back,
    open_world,
    pickup,
    staff_job,
)


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    with open_world(engine) as world:
        yield world


def _reservation(world: World, tag: str) -> Reservation:
    with world.session() as session:
        found = session.get(Reservation, world.reservations[tag])
        assert found is not None
        return found


def _device(world: World, tag: str) -> str:
    with world.session() as session:
        return session.scalars(select(Device.status).where(Device.asset_tag == tag)).one()


def _loans(world: World) -> list[Loan]:
    with world.session() as session:
        return list(session.scalars(select(Loan).order_by(Loan.id)))


def _pulled(world: World, tag: str) -> dict[str, Any]:
    """The reservation as a kiosk's full pull shows it."""
    items = world.client.get("/api/v1/kiosk/reservations", headers=world.auth).json()["items"]
    return next(item for item in items if item["asset_tag"] == tag)


# -- the normal life of a device ---------------------------------------------------------------
def test_load_marks_the_reservation_loaded_in_its_compartment(world: World) -> None:
    world.send(staff_job(world, "load", "LT-1", compartment=4))
    pulled = _pulled(world, "LT-1")
    assert (pulled["status"], pulled["compartment"]) == ("loaded", 4)
    assert _device(world, "LT-1") == "loaded"
    assert world.conflicts() == []


def test_unload_of_a_loaded_reservation_puts_it_back_to_requested(world: World) -> None:
    world.send(staff_job(world, "load", "LT-1"), staff_job(world, "unload", "LT-1"))
    pulled = _pulled(world, "LT-1")
    assert (pulled["status"], pulled["compartment"]) == ("requested", None)
    assert _device(world, "LT-1") == "reserved"
    assert world.conflicts() == []


def test_unload_of_a_cancelled_loaded_reservation_frees_the_device(world: World) -> None:
    world.send(staff_job(world, "load", "LT-1"))
    world.cancel("LT-1")
    world.send(staff_job(world, "unload", "LT-1"))
    assert _device(world, "LT-1") == "available"  # can be reserved again
    assert _reservation(world, "LT-1").status == "cancelled"
    assert world.conflicts() == []


def test_pickup_starts_a_loan_with_the_kiosks_id_due_at_23_59(world: World) -> None:
    row = pickup(world, "LT-2", due_date="2026-12-24")
    world.send(staff_job(world, "load", "LT-2"), row)
    reservation = _reservation(world, "LT-2")
    assert (reservation.status, reservation.compartment) == ("picked_up", None)
    assert _device(world, "LT-2") == "on_loan"
    [loan] = _loans(world)
    assert loan.external_id == row["payload"]["loan_id"]
    assert loan.borrower_id == world.borrower_id
    assert loan.reservation_id == reservation.id
    assert loan.pickup_kiosk_id == world.kiosk_id
    assert loan.due_at == datetime(2026, 12, 24, 23, 59, tzinfo=UTC)
    assert loan.started_at == datetime.fromisoformat(row["payload"]["started_at"])
    assert world.conflicts() == []


def test_return_closes_the_loan_and_flags_the_device_to_check(world: World) -> None:
    row = pickup(world, "LT-1")
    world.send(row)
    back = give_back(world, "LT-1", row["payload"]["loan_id"])
    world.send(back)
    [loan] = _loans(world)
    assert loan.returned_at == datetime.fromisoformat(back["occurred_at"])
    assert loan.return_kiosk_id == world.kiosk_id
    assert _device(world, "LT-1") == "to_check"
    # Unloading the returned device (no reservation) leaves it to check.
    world.send(staff_job(world, "unload", "LT-1", reservation_id=None))
    assert _device(world, "LT-1") == "to_check"
    assert world.conflicts() == []


def test_return_without_a_loan_id_closes_the_devices_open_loan(world: World) -> None:
    world.send(pickup(world, "LT-1"))
    world.send(give_back(world, "LT-1", None))
    assert _loans(world)[0].returned_at is not None
    assert world.conflicts() == []


def test_alarms_raised_and_cleared_by_the_kiosk(world: World) -> None:
    raised = {"alarm_id": "a" * 32, "kind": "jammed", "compartment": 3, "detail": "stuck"}
    world.send(world.row("alarm_raised", raised), world.row("alarm_raised", raised))
    with world.session() as session:
        [alarm] = session.scalars(select(Alarm)).all()  # the same alarm id twice: once
        assert (alarm.kiosk_id, alarm.kind, alarm.compartment) == (world.kiosk_id, "jammed", 3)
        assert (alarm.detail, alarm.cleared_at) == ("stuck", None)
    cleared = {"alarm_id": "a" * 32, "kind": "jammed", "compartment": 3, "by": "kiosk"}
    world.send(world.row("alarm_cleared", cleared))
    with world.session() as session:
        assert session.scalars(select(Alarm.cleared_at)).one() is not None
    assert world.conflicts() == []


def test_other_kinds_are_stored_only(world: World) -> None:
    rows = [
        world.row("staff_open", {"compartment": 1, "reason": "look"}),
        world.row("a_kind_of_the_future", {"anything": [1, 2]}),
    ]
    assert world.send(*rows)["accepted"] == [r["uuid"] for r in rows]
    with world.session() as session:
        kinds = list(session.scalars(select(Transaction.kind).order_by(Transaction.id)))
        assert kinds == ["staff_open", "a_kind_of_the_future"]
        assert session.scalars(select(Alarm)).all() == []
    assert {_device(world, t) for t in ("LT-1", "LT-2", "LT-3")} == {"reserved"}


# -- physical facts win --------------------------------------------------------------------------
@pytest.fixture
def big_world(engine: Engine) -> Iterator[World]:
    with open_world(engine, devices=6) as world:
        yield world


def _conflict(world: World, *rows: dict[str, Any]) -> str:
    """Send ``rows`` (answered 200, all accepted); returns the one conflict they raised."""
    before = len(world.conflicts())
    assert world.send(*rows)["accepted"] == [row["uuid"] for row in rows]
    details = world.conflicts()
    assert len(details) == before + 1, details[before:]
    assert "\n" not in details[-1] and len(details[-1]) <= 500
    return details[-1]


def test_pickup_conflicts_still_record_the_loan(big_world: World) -> None:
    world = big_world
    # A reservation cancelled meanwhile: the device is with that person all the same.
    world.cancel("LT-1")
    detail = _conflict(world, pickup(world, "LT-1"))
    assert "reservation" in detail and "was cancelled" in detail and "loan recorded" in detail
    assert _reservation(world, "LT-1").status == "cancelled"
    assert _device(world, "LT-1") == "on_loan"
    assert _loans(world)[-1].borrower_id == world.borrower_id
    # A reservation id of the wrong type is an unknown reservation.
    assert "unknown reservation 'abc'" in _conflict(
        world, pickup(world, "LT-2", reservation_id="abc")
    )
    assert _loans(world)[-1].reservation_id is None and _device(world, "LT-2") == "on_loan"
    # Another device than the reserved one left the cabinet.
    other = pickup(world, "LT-4", reservation_id=str(world.reservations["LT-3"]))
    assert "not the device of reservation" in _conflict(world, other)
    assert _reservation(world, "LT-3").status == "requested"
    assert _device(world, "LT-4") == "on_loan"
    # The same loan id again under a new uuid: no second loan.
    loans = len(_loans(world))
    again = pickup(world, "LT-1", loan_id=other["payload"]["loan_id"])
    assert "already recorded" in _conflict(world, again)
    assert len(_loans(world)) == loans
    # Garbage in every field: stored, alarmed, no loan (no device known).
    garbage = pickup(
        world,
        "LT-5",
        reservation_id=[1],
        asset_tag=5,
        loan_id={"x": 1},
        started_at=3,
        due_date="never",
        compartment="x" * 100,
    )
    assert "asset tag 5 unusable" in _conflict(world, garbage)
    assert len(_loans(world)) == loans
    assert not any(BORROWER_KEY in detail for detail in world.conflicts())


def test_return_conflicts_still_take_the_device_in(big_world: World) -> None:
    world = big_world
    assert "unknown asset tag 'XX-999'" in _conflict(
        world, give_back(world, "XX-999", None, unknown=True, borrower_key=BORROWER_KEY)
    )
    row = pickup(world, "LT-1")
    world.send(row, give_back(world, "LT-1", row["payload"]["loan_id"]))
    first_return = _loans(world)[0].returned_at
    assert "already returned" in _conflict(
        world, give_back(world, "LT-1", row["payload"]["loan_id"])
    )
    assert _loans(world)[0].returned_at == first_return
    assert _device(world, "LT-1") == "to_check"
    assert "had no open loan" in _conflict(world, give_back(world, "LT-3", None))
    assert _device(world, "LT-3") == "to_check"  # it is in the cabinet now
    assert not any(BORROWER_KEY in detail for detail in world.conflicts())


def test_load_conflicts_still_mark_the_device_loaded(big_world: World) -> None:
    world = big_world
    world.cancel("LT-1")
    assert "was cancelled" in _conflict(world, staff_job(world, "load", "LT-1"))
    assert _reservation(world, "LT-1").status == "cancelled"
    assert _device(world, "LT-1") == "loaded"  # it is in a compartment: staff take it out
    with world.session() as session:
        reservation = session.get(Reservation, world.reservations["LT-2"])
        assert reservation is not None
        reservation.kiosk_id = world.kiosk_id + 1  # kiosk-2
        session.commit()
    assert "for another kiosk" in _conflict(world, staff_job(world, "load", "LT-2"))


UNUSABLE: list[tuple[str, dict[str, Any], str]] = [
    ("remote_command", {"command_id": 999, "result": "done"}, "unknown command 999"),
    ("remote_command", {"command_id": "x", "result": 1}, "unusable"),
    ("alarm_raised", {"alarm_id": 7, "kind": None}, "unusable"),
    ("alarm_cleared", {"alarm_id": ["a"]}, "unusable"),
    ("unload", {"compartment": 2}, "no asset tag"),
    ("return", {"asset_tag": None, "loan_id": None}, "neither"),
]


def test_rows_with_unusable_values_are_stored_and_alarmed(world: World) -> None:
    rows = [world.row(kind, payload) for kind, payload, _ in UNUSABLE]
    assert world.send(*rows)["accepted"] == [row["uuid"] for row in rows]
    details = world.conflicts()
    assert len(details) == len(UNUSABLE)
    for (kind, _, expected), row, detail in zip(UNUSABLE, rows, details, strict=True):
        assert detail.startswith(f"{kind} #{row['seq']}:") and expected in detail, detail


def test_a_remote_command_acknowledged_twice_keeps_the_first_result(world: World) -> None:
    with world.session() as session:
        command = Command(kiosk_id=world.kiosk_id, kind="refresh")
        session.add(command)
        session.commit()
        command_id = command.id
    world.send(world.row("remote_command", {"command_id": command_id, "result": "failed"}))
    world.send(world.row("remote_command", {"command_id": str(command_id), "result": "done"}))
    with world.session() as session:
        assert session.get(Command, command_id).result == "failed"  # type: ignore[union-attr]
    assert world.conflicts() == []
