"""A server answering nonsense: ServerUnavailable, no crash, nothing lost or half-applied.

The "server" is a tiny real HTTP server on 127.0.0.1 (``http.server``) whose answers a
test switches: text instead of JSON, the wrong JSON, a 500, a 401, a bad field deep in a
list, acknowledgements of rows never sent, or silence past the read timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kiosk.core.model import Reservation
from kiosk.store import SqlStore
from kiosk.sync.client import ServerUnavailable, SyncClient
from tests.sync.conftest import journal_rows, service_for, sync_settings

RESERVATION = {
    "id": "7",
    "asset_tag": "LAP-0007",
    "status": "requested",
    "borrower_key": None,
    "code_hash": None,
    "device_type": "laptop",
    "size": "M",
    "charging": False,
    "compartment": None,
    "ready_by": None,
    "expires_at": "2026-12-01T10:00:00+00:00",
    "loan_days": 14,
}


class Bad(ThreadingHTTPServer):
    """The switchable server: ``mode`` decides the next answers."""

    daemon_threads = True
    mode = "good"


class Handler(BaseHTTPRequestHandler):
    server: Bad

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value: object, status: int = 200) -> None:
        self._send(status, json.dumps(value).encode())

    def do_GET(self) -> None:
        self._answer(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self._answer(json.loads(self.rfile.read(length)))

    def _answer(self, body: Any) -> None:
        mode, path = self.server.mode, self.path.split("?")[0].rsplit("/", 1)[-1]
        uuids = [t["uuid"] for t in body["transactions"]] if path == "transactions" else []
        if mode == "text":
            self._send(200, b"hello, I am a captive portal", "text/html")
        elif mode == "list":
            self._json([1, 2, 3])
        elif mode == "500":
            self._json({"detail": "database is locked"}, 500)
        elif mode == "401":
            self._json({"detail": "unknown kiosk token"}, 401)
        elif mode == "drip":  # headers at once, then a byte now and then
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.1)
        elif mode == "huge":
            self._send(200, b"[" + b"0," * 5000 + b"0]")
        elif mode == "sleep":
            time.sleep(1.5)
            self._json({})
        elif mode == "strangers" and path == "transactions":
            self._json({"accepted": [*uuids, "0000-not-sent"], "duplicates": []})
        elif mode == "partial" and path == "transactions":
            self._json({"accepted": uuids[:1], "duplicates": []})
        elif mode == "bad_item" and path == "reservations":
            self._json(
                {
                    "full": True,
                    "cursor": "c",
                    "items": [RESERVATION, {**RESERVATION, "status": "lost"}],
                }
            )
        elif path == "transactions":
            self._json({"accepted": uuids, "duplicates": []})
        elif path in ("reservations", "loans"):
            self._json({"full": True, "cursor": "c", "items": []})
        elif path == "staff":
            self._json({"items": []})
        else:
            now = dt.datetime.now(dt.UTC).isoformat()
            self._json({"server_time": now, "commands": []})


@pytest.fixture
def bad(tmp_path: Path) -> Iterator[tuple[Bad, Path]]:
    server = Bad(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = tmp_path / "token"
    token.write_text("not-a-real-token", encoding="utf-8")
    try:
        yield server, token
    finally:
        server.shutdown()
        server.server_close()


def old_reservation(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.replace_reservations([Reservation("1", "LAP-0001")])


def reservation_ids(store: SqlStore) -> list[str]:
    with store.reading() as tx:
        return [r.id for r in tx.reservations()]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("text", "not JSON"),
        ("list", "not a JSON object"),
        ("500", "HTTP 500: database is locked"),
        ("401", "401"),
        ("strangers", "not sent"),
        ("partial", "2 of 3 rows not acknowledged"),
    ],
)
def test_nonsense_to_the_relay_marks_nothing_it_should_not(bad, store, clock, mode, reason) -> None:
    server, token = bad
    settings = sync_settings(f"http://127.0.0.1:{server.server_port}", token)
    service = service_for(settings, store, clock)
    assert service.run_once().ok  # the store's own rows go while the server behaves
    uuids = journal_rows(store, 3)
    server.mode = mode
    result = service.run_once()
    assert not result.ok and reason in result.error
    left = [e.uuid for e in store.journal_entries(unsent_only=True)]
    assert left == (uuids[1:] if mode == "partial" else uuids)  # only what was listed
    assert service.retry_at > clock.monotonic()
    server.mode = "good"
    assert service.run_once().ok
    assert store.journal_entries(unsent_only=True) == []


def test_a_bad_item_deep_in_a_pull_applies_nothing(bad, store, clock) -> None:
    server, token = bad
    old_reservation(store)
    settings = sync_settings(f"http://127.0.0.1:{server.server_port}", token)
    server.mode = "bad_item"
    result = service_for(settings, store, clock).run_once()
    assert not result.ok and "reservations.items[1].status" in result.error
    assert "lost" not in result.error  # the field is named, its value is not shown
    assert reservation_ids(store) == ["1"]  # neither the good item nor the replacement


def test_silence_past_the_read_timeout_is_unavailable_within_the_timeout(bad, store) -> None:
    server, token = bad
    settings = sync_settings(f"http://127.0.0.1:{server.server_port}", token, read_timeout_s=0.3)
    server.mode = "sleep"
    client = SyncClient(settings)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match="no answer within the timeout"):
        client.get("/staff")
    assert time.monotonic() - started < 1.2


def test_a_missing_or_empty_token_file_is_a_clear_configuration_error(tmp_path: Path) -> None:
    from kiosk.settings import ConfigError

    settings = sync_settings("http://127.0.0.1:9", tmp_path / "absent")
    with pytest.raises(ConfigError, match=r"sync\.token_file: cannot read the token"):
        SyncClient(settings)
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="one line"):
        SyncClient(sync_settings("http://127.0.0.1:9", tmp_path / "empty"))


def test_a_dripping_or_huge_answer_is_cut_off(bad, store, monkeypatch) -> None:
    from kiosk.sync import client as client_module

    server, token = bad
    settings = sync_settings(
        f"http://127.0.0.1:{server.server_port}", token, connect_timeout_s=0.2, read_timeout_s=0.3
    )
    client = SyncClient(settings)
    server.mode = "drip"  # every read within the timeout, the whole far beyond it
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match="took too long"):
        client.get("/staff")
    assert time.monotonic() - started < 2.0
    monkeypatch.setattr(client_module, "MAX_BODY", 1000)
    server.mode = "huge"
    with pytest.raises(ServerUnavailable, match="larger than 1000 bytes"):
        client.get("/staff")
