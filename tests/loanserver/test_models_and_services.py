"""The data layer: migrations match the models, and every back-office operation's checks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, update
from sqlalchemy.orm import Session

from loanserver import db, keys, services
from loanserver.models import Base, Borrower, Device, Kiosk, Loan, Reservation, Staff

PEPPER = b"test-pepper"
NUMBER = "85.07.30-033.61"


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with db.session_factory(engine)() as session:
        yield session


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    assert set(inspect(engine).get_table_names()) >= {
        "sites",
        "kiosks",
        "devices",
        "borrowers",
        "staff",
        "reservations",
        "loans",
        "transactions",
        "alarms",
        "heartbeats",
    }


def test_migrate_twice_is_harmless(engine: Engine) -> None:
    db.migrate(engine)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0002"


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(db.ENV_URL, raising=False)
    assert db.database_url() == "sqlite:///loanserver.db"
    monkeypatch.setenv(db.ENV_URL, "sqlite:///env.db")
    assert db.database_url() == "sqlite:///env.db"
    assert db.database_url("sqlite:///cli.db") == "sqlite:///cli.db"


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(db.DatabaseError, match="not a database URL"):
        db.make_engine("no such thing")


def test_kiosk_token_is_stored_only_as_its_hash(session: Session) -> None:
    new = services.add_kiosk(session, "Library 1")
    kiosk = session.get(Kiosk, new.id)
    assert kiosk is not None and kiosk.token_hash == keys.token_hash(new.token)
    assert new.token not in kiosk.token_hash
    with pytest.raises(services.Refused, match="already exists"):
        services.add_kiosk(session, "Library 1")
    with pytest.raises(services.InvalidInput):
        services.add_kiosk(session, "  ")


def test_add_device_checks(session: Session) -> None:
    device = services.add_device(session, "LT-001", type="laptop", size="L", charging=True)
    assert (device.status, device.size, device.needs_charging) == ("available", "L", True)
    with pytest.raises(services.Refused, match="duplicate asset tag"):
        services.add_device(session, "LT-001", type="tablet")
    with pytest.raises(services.InvalidInput, match="device type"):
        services.add_device(session, "X", type="phone")
    with pytest.raises(services.InvalidInput, match="size"):
        services.add_device(session, "X", type="laptop", size="XL")


def test_register_borrower_keeps_only_the_key(session: Session) -> None:
    borrower = services.register_borrower(
        session, pepper=PEPPER, national_number=NUMBER, first_name="Ann", language="fr"
    )
    assert borrower.key == keys.borrower_key(PEPPER, NUMBER)
    with pytest.raises(services.Refused, match="already registered"):
        services.register_borrower(session, pepper=PEPPER, national_number="85073003361")
    code_only = services.register_borrower(session, code_only=True)
    assert code_only.key is None and code_only.language == "nl"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"national_number": NUMBER}, "needs the pepper"),
        ({"pepper": PEPPER, "national_number": "123"}, "11 digits"),
        ({}, "either"),
        ({"pepper": PEPPER, "national_number": NUMBER, "code_only": True}, "either"),
        ({"code_only": True, "language": "de"}, "language"),
    ],
)
def test_register_borrower_rejects(session: Session, kwargs: dict, message: str) -> None:
    with pytest.raises(services.InvalidInput, match=message):
        services.register_borrower(session, **kwargs)
    assert session.scalars(select(Borrower)).all() == []


def _setup(session: Session) -> tuple[int, str]:
    services.add_kiosk(session, "K1")
    services.add_device(session, "LT-1", type="laptop")
    return services.register_borrower(session, code_only=True).id, "LT-1"


def test_reserve_and_cancel(session: Session) -> None:
    borrower_id, tag = _setup(session)
    new = services.reserve(session, borrower_id, tag, "K1")
    assert len(new.pickup_code) == 6 and new.pickup_code.isdigit()
    reservation = session.get(Reservation, new.id)
    assert reservation is not None and reservation.status == "requested"
    assert keys.check_code(new.pickup_code, reservation.pickup_code_hash)
    assert (reservation.pickup_code_hash or "").startswith("pbkdf2-sha256$20000$")
    assert reservation.expires_at is not None and reservation.expires_at.tzinfo is not None
    device = session.scalar(select(Device).where(Device.asset_tag == tag))
    assert device is not None and device.status == "reserved"

    with pytest.raises(services.Refused, match="not available"):
        services.reserve(session, borrower_id, tag, "K1")
    services.cancel(session, new.id)
    assert device.status == "available" and reservation.status == "cancelled"
    with pytest.raises(services.Refused, match="already cancelled"):
        services.cancel(session, new.id)
    with pytest.raises(services.Refused, match="unknown"):
        services.cancel(session, 999)


@pytest.mark.parametrize(
    ("borrower", "tag", "kiosk", "message"),
    [
        (999, "LT-1", "K1", "borrower 999 unknown"),
        (None, "NOPE", "K1", "unknown device"),
        (None, "LT-1", "K9", "unknown kiosk"),
    ],
)
def test_reserve_refusals(
    session: Session, borrower: int | None, tag: str, kiosk: str, message: str
) -> None:
    borrower_id, _ = _setup(session)
    with pytest.raises(services.Refused, match=message):
        services.reserve(session, borrower or borrower_id, tag, kiosk)
    assert session.scalars(select(Reservation)).all() == []


def test_cancel_of_a_loaded_reservation_leaves_the_device_to_staff(session: Session) -> None:
    borrower_id, tag = _setup(session)
    new = services.reserve(session, borrower_id, tag, "K1")
    reservation = session.get(Reservation, new.id)
    assert reservation is not None
    reservation.status = "loaded"
    device = session.scalar(select(Device).where(Device.asset_tag == tag))
    assert device is not None
    device.status = "loaded"
    session.commit()
    services.cancel(session, new.id)
    assert device.status == "loaded"


def test_list_loans_and_overdue(session: Session) -> None:
    borrower_id, _ = _setup(session)
    services.add_device(session, "LT-2", type="laptop")
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    devices = session.scalars(select(Device).order_by(Device.id)).all()
    session.add_all(
        [
            Loan(
                device_id=devices[0].id,
                borrower_id=borrower_id,
                started_at=now - timedelta(days=20),
                due_at=now - timedelta(days=6),
            ),
            Loan(
                device_id=devices[1].id,
                borrower_id=borrower_id,
                started_at=now - timedelta(days=1),
                due_at=now + timedelta(days=13),
            ),
            Loan(
                device_id=devices[1].id,
                borrower_id=borrower_id,
                started_at=now - timedelta(days=40),
                due_at=now - timedelta(days=26),
                returned_at=now - timedelta(days=30),
            ),
        ]
    )
    session.commit()
    rows = services.list_loans(session, now=now)
    assert [(r.asset_tag, r.overdue) for r in rows] == [("LT-1", True), ("LT-2", False)]
    overdue = services.list_loans(session, overdue_only=True, now=now)
    assert [r.asset_tag for r in overdue] == ["LT-1"]
    assert overdue[0].due_at == now - timedelta(days=6)


def test_add_staff_by_code_and_by_eid(session: Session) -> None:
    staff = services.add_staff(session, name="Bob", pin="1234", code="ABCD12")
    assert staff.borrower_key is None and keys.check_code("ABCD12", staff.code_hash)
    assert keys.check_code("1234", staff.pin_hash) and staff.role == "staff"
    with pytest.raises(services.Refused, match="already in use"):
        services.add_staff(session, name="Eve", pin="9999", code="ABCD12")
    admin = services.add_staff(
        session, name="Ann", pin="5678", role="admin", pepper=PEPPER, national_number=NUMBER
    )
    assert admin.borrower_key == keys.borrower_key(PEPPER, NUMBER)
    with pytest.raises(services.Refused, match="already registered"):
        services.add_staff(session, name="Ann", pin="5678", pepper=PEPPER, national_number=NUMBER)
    for kwargs, message in [
        ({"code": "ABCD99", "pin": "12"}, "PIN"),
        ({"code": "ABCD99", "pin": "1234", "role": "boss"}, "role"),
        ({"pin": "1234"}, "either"),
        ({"code": "a b", "pin": "1234"}, "staff code"),
        ({"national_number": NUMBER, "pin": "1234"}, "pepper"),
    ]:
        with pytest.raises(services.InvalidInput, match=message):
            services.add_staff(session, name="X", **kwargs)
    assert len(session.scalars(select(Staff)).all()) == 2


def test_naive_datetimes_are_refused(session: Session) -> None:
    borrower_id, _ = _setup(session)
    session.add(
        Loan(
            device_id=1,
            borrower_id=borrower_id,
            started_at=datetime(2026, 1, 1),
            due_at=datetime(2026, 1, 2),
        )
    )
    with pytest.raises(Exception, match="naive datetime"):
        session.commit()


def test_concurrent_reservation_of_one_device_loses_cleanly(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    borrower_id, tag = _setup(session)
    original = services._device_by_tag

    def stale_read(s: Session, asset_tag: str) -> Device:
        device = original(s, asset_tag)  # read as "available" ...
        with engine.begin() as other:  # ... then another admin's reservation wins the race
            other.execute(
                update(Device).where(Device.asset_tag == asset_tag).values(status="reserved")
            )
        return device

    monkeypatch.setattr(services, "_device_by_tag", stale_read)
    with pytest.raises(services.Refused, match="reserved meanwhile"):
        services.reserve(session, borrower_id, tag, "K1")
    assert session.scalars(select(Reservation)).all() == []


def test_downgrade_and_upgrade_again(engine: Engine) -> None:
    from alembic import command

    config = db.alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    db.migrate(engine)
    assert "transactions" in inspect(engine).get_table_names()


def test_loanserver_never_imports_kiosk_or_hardware() -> None:
    """House rule 3, checked in a fresh interpreter after a full migration and a CLI run."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from loanserver import admin, db\n"
        "db.migrate(db.make_engine('sqlite://'))\n"
        "admin.run(['admin', 'loans', '--database', 'sqlite://'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('kiosk', 'hardware'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
