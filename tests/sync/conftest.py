"""The sync link's world: a real loan server on 127.0.0.1 and a real kiosk store (and core).

``server``: a started ``LiveServer`` on a SQLite file, with kiosk ``kiosk-1`` (its token
in ``server.token``). ``store``: the kiosk's SQLite store on a ``ManualClock``. ``sync``:
``SyncSettings`` for that server with short timeouts and backoff. ``kiosk``: a started
core over a simulated cabinet on that store (``Kiosk.core``, ``.locker``). Nothing is
mocked: the kiosk talks HTTP to uvicorn.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from hardware.locker.simulated import SimulatedLocker
from kiosk import bootstrap
from kiosk.core.clock import ManualClock
from kiosk.core.engine import KioskCore
from kiosk.core.model import TxKind
from kiosk.settings_sync import SyncSettings
from kiosk.store import SqlStore, open_store
from kiosk.sync.service import SyncService
from loanserver import db
from loanserver.db import session_factory
from loanserver.models import Transaction
from tests.integration.test_core_bootstrap import settings_for
from tests.support.live_server import LiveServer

KIOSK = "kiosk-1"


class Server(LiveServer):
    """A LiveServer that knows its kiosk's token."""

    token: str = ""


@pytest.fixture
def server_engine(tmp_path: Path) -> Iterator[Engine]:
    """The loan server's migrated SQLite database."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'loanserver.db'}")
    db.migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def server(server_engine: Engine) -> Iterator[Server]:
    """A started loan server with kiosk ``kiosk-1``."""
    live = Server(server_engine)
    live.start()
    live.token = live.add_kiosk(KIOSK)
    try:
        yield live
    finally:
        live.stop()


def restart(server: Server) -> Server:
    """The same server (database, port, kiosk) started again after ``stop()``."""
    again = Server(server.engine, port=server.port)
    again.start()
    again.token = server.token
    return again


@pytest.fixture
def clock() -> ManualClock:
    """The kiosk's clock."""
    return ManualClock(dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC))


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[SqlStore]:
    """The kiosk's SQLite store."""
    store = open_store(tmp_path / "kiosk.db", clock)
    yield store
    store.close()


def sync_settings(url: str, token_file: Path, **changes: Any) -> SyncSettings:
    """Settings for ``url`` with short timeouts and backoff (tests must stay fast)."""
    base = SyncSettings(
        url=url,
        token_file=str(token_file),
        connect_timeout_s=1.0,
        read_timeout_s=2.0,
        pull_interval_s=3600.0,
        heartbeat_interval_s=3600.0,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        unreachable_alarm_after_s=600.0,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def sync(server: Server, tmp_path: Path) -> SyncSettings:
    """Sync settings for ``server`` (the token in a file, as in production)."""
    token_file = tmp_path / "token"
    token_file.write_text(server.token + "\n", encoding="utf-8")
    return sync_settings(server.url, token_file)


def service_for(
    sync: SyncSettings, store: SqlStore, clock: ManualClock, core: KioskCore | None = None
) -> SyncService:
    """A SyncService with a seeded jitter (reproducible waits)."""
    return SyncService(sync, store, core, clock, rng=random.Random(7))


def journal_rows(store: SqlStore, count: int, kind: str = TxKind.KIOSK_STARTED) -> list[str]:
    """Write ``count`` journal rows (kinds the server only logs); their uuids in order."""
    uuids = []
    with store.transaction() as tx:
        for i in range(count):
            uuids.append(tx.journal(kind, {"boot": i}).uuid)
    return uuids


def server_rows(engine: Engine) -> list[tuple[str, int]]:
    """(uuid, seq) of every transaction the server stored, in arrival order."""
    with session_factory(engine)() as session:
        rows = session.execute(select(Transaction.uuid, Transaction.seq).order_by(Transaction.id))
        return [(u, s) for u, s in rows]


@dataclass
class Kiosk:
    """A started core over a simulated cabinet, on the test's store."""

    core: KioskCore
    locker: SimulatedLocker
    store: SqlStore
    stack: ExitStack


@pytest.fixture
def kiosk(tmp_path: Path, clock: ManualClock, store: SqlStore) -> Iterator[Kiosk]:
    """Three compartments with door and item sensors; the core started and settled."""
    settings = settings_for(tmp_path / "kiosk.db")
    with ExitStack() as stack:
        locker = bootstrap.start_locker(settings.locker, stack)
        assert isinstance(locker, SimulatedLocker)
        core = KioskCore(store=store, locker=locker, policy=settings.flows, clock=clock)
        stack.callback(core.stop)
        core.start()
        assert core.settle(5)
        yield Kiosk(core, locker, store, stack)
