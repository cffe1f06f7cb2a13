"""The pull fills the kiosk's cache from the real server, and never undoes an unsent fact."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kiosk.core.codes import check_code
from kiosk.core.events import SyncDone
from kiosk.core.model import ReservationStatus, TxKind
from kiosk.store import SqlStore
from kiosk.sync.client import SyncClient
from kiosk.sync.pull import COUNT_KEY, FULL_EVERY, Puller
from loanserver import services
from loanserver.db import session_factory
from tests.sync.conftest import KIOSK, Server, service_for


def reserve(server: Server, tag: str = "LAP-0001") -> tuple[str, str]:
    """A code-only borrower's reservation of a new laptop here: (id, pickup code)."""
    with session_factory(server.engine)() as session:
        services.add_device(session, tag, type="laptop", size="M", charging=True)
        borrower = services.register_borrower(session, code_only=True, first_name="Ann")
        made = services.reserve(session, borrower.id, tag, KIOSK)
        return str(made.id), made.pickup_code


def cached(store: SqlStore, reservation_id: str):
    with store.reading() as tx:
        return tx.reservation(reservation_id)


class Recorder:
    """The core's queue as the service sees it (only ``post``)."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def post(self, event: object) -> None:
        self.events.append(event)


def test_a_pull_fills_reservations_and_staff_and_tells_the_core(server, sync, store, clock) -> None:
    rid, code = reserve(server)
    with session_factory(server.engine)() as session:
        services.add_staff(session, name="Els", pin="4321", code="STAFF01")
    core = Recorder()
    result = service_for(sync, store, clock, core).run_once()  # type: ignore[arg-type]
    assert result.ok and result.pull is not None and result.pull.applied and result.pull.full
    reservation = cached(store, rid)
    assert reservation is not None and reservation.asset_tag == "LAP-0001"
    assert reservation.status is ReservationStatus.REQUESTED and reservation.charging
    assert check_code(code, reservation.code_hash)  # the resident's code works offline
    with store.reading() as tx:
        staff = tx.staff()
    assert [m.name for m in staff] == ["Els"] and check_code("4321", staff[0].pin_hash)
    assert any(isinstance(e, SyncDone) for e in core.events)


def test_an_unsent_load_is_not_undone_by_a_pull_and_the_pull_follows_the_relay(
    server, sync, store, clock
) -> None:
    rid, _code = reserve(server)
    service = service_for(sync, store, clock)
    assert service.run_once().ok
    with store.transaction() as tx:  # staff load it, as the core writes it
        loaded = replace(cached(store, rid), status=ReservationStatus.LOADED, compartment=2)
        tx.put_reservation(loaded)
        tx.journal(TxKind.LOAD, {"reservation_id": rid, "asset_tag": "LAP-0001", "compartment": 2})
    skipped = Puller(store, SyncClient(sync)).pull()  # the server still says "requested"
    assert not skipped.applied
    assert cached(store, rid).status is ReservationStatus.LOADED
    result = service.run_once()  # relay first: then the server knows, and the pull applies
    assert result.ok and result.pull is not None and result.pull.applied
    after = cached(store, rid)
    assert after.status is ReservationStatus.LOADED and after.compartment == 2


def test_a_row_written_while_the_answer_travels_skips_the_pull(server, sync, store) -> None:
    rid, _code = reserve(server)

    class WritingClient(SyncClient):
        """The real client; a flow journals a load while the staff list is on its way."""

        def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
            answer = super().get(path, params)
            if path == "/staff":
                with store.transaction() as tx:
                    tx.journal(TxKind.LOAD, {"reservation_id": rid, "compartment": 1})
            return answer

    result = Puller(store, WritingClient(sync)).pull()
    assert not result.applied
    assert cached(store, rid) is None  # nothing of that answer was applied


def test_changes_since_the_cursor_then_a_full_pull_every_so_often(
    server, sync, store, clock
) -> None:
    rid, _code = reserve(server)
    puller = Puller(store, SyncClient(sync))
    assert puller.pull().full
    with session_factory(server.engine)() as session:
        services.cancel(session, int(rid))
    changes = puller.pull()
    assert changes.applied and not changes.full
    assert cached(store, rid).status is ReservationStatus.CANCELLED  # learnt from the changes
    with store.transaction() as tx:
        tx.set_meta(COUNT_KEY, str(FULL_EVERY))
    full = puller.pull()
    assert full.applied and full.full
    assert cached(store, rid) is None  # a full answer holds open reservations only
