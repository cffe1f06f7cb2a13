"""``bootstrap.build_sync``: the running kiosk's link, wired to the core, on its own thread."""

from __future__ import annotations

import dataclasses
import time
from contextlib import ExitStack
from pathlib import Path

from kiosk import bootstrap
from kiosk.core.model import TxKind
from kiosk.settings_sync import SyncSettings
from tests.integration.test_core_bootstrap import settings_for
from tests.sync.conftest import Server
from tests.sync.test_pull import reserve
from tests.sync.test_remote import command, server_result


def test_without_a_server_the_kiosk_has_no_link(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "kiosk.db")
    with ExitStack() as stack:
        locker = bootstrap.start_locker(settings.locker, stack)
        core = bootstrap.build_core(settings, locker, stack)
        assert bootstrap.build_sync(settings, core, stack) is None


def test_a_remote_refresh_reaches_the_link_which_pulls_at_once(
    server: Server, sync: SyncSettings, tmp_path: Path
) -> None:
    quick = dataclasses.replace(sync, heartbeat_interval_s=1.0, pull_interval_s=3600.0)
    settings = dataclasses.replace(settings_for(tmp_path / "kiosk.db"), sync=quick)
    with ExitStack() as stack:
        locker = bootstrap.start_locker(settings.locker, stack)
        core = bootstrap.build_core(settings, locker, stack)
        service = bootstrap.build_sync(settings, core, stack)
        assert service is not None
        core.start()
        service.start()
        assert core.store is not None
        store = core.store
        deadline = time.monotonic() + 5
        while not _pulled(store):
            assert time.monotonic() < deadline, "no first pull"
            time.sleep(0.05)
        rid, _code = reserve(server)  # made after the first pull; the next is an hour away
        cid = command(server, "refresh")
        deadline = time.monotonic() + 8
        while _cached(store, rid) is None or server_result(server, cid)[0] is None:
            assert time.monotonic() < deadline, "the refresh did not bring the reservation"
            time.sleep(0.05)
        refresh = [e for e in store.journal_entries() if e.kind == TxKind.REMOTE_COMMAND]
        assert [e.payload["result"] for e in refresh] == ["done"]
        assert server_result(server, cid)[0] == "done"


def _pulled(store) -> bool:
    with store.reading() as tx:
        return tx.meta("sync.pulls") is not None


def _cached(store, rid: str):
    with store.reading() as tx:
        return tx.reservation(rid)
