"""The fault proxy itself: each mode does what the fault tests rely on, seen by a real
HTTP client (requests, as the kiosk's sync link uses) against a small real upstream."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.support.faultproxy import FaultProxy


class Upstream:
    """A tiny real server that counts what reaches it and answers JSON."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                owner.hits.append(self.path)
                data = json.dumps({"got": json.loads(body or b"null")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    up.thread.start()
    yield up
    up.server.shutdown()
    up.server.server_close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url, slow_s=1.0) as p:
        yield p


def post(proxy: FaultProxy, body: object, timeout: float = 2.0) -> requests.Response:
    return requests.post(f"{proxy.url}/api/v1/x", json=body, timeout=timeout)


def test_pass_forwards_body_and_answer(proxy: FaultProxy, upstream: Upstream) -> None:
    answer = post(proxy, {"a": 1})
    assert answer.status_code == 200
    assert answer.json() == {"got": {"a": 1}}
    assert upstream.hits == ["/api/v1/x"]
    assert proxy.count("/api/v1/x", mode="pass") == 1


def test_down_refuses_connections_and_comes_back_on_the_same_port(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    port = proxy.port
    proxy.set_mode("down")
    with pytest.raises(requests.ConnectionError):
        post(proxy, {"a": 1})
    proxy.set_mode("pass")
    assert proxy.port == port
    assert post(proxy, {"a": 2}).json() == {"got": {"a": 2}}
    assert upstream.hits == ["/api/v1/x"]


def test_error500_and_garbage_never_reach_the_server(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_mode("error500")
    assert post(proxy, {}).status_code == 500
    proxy.set_mode("garbage")
    answer = post(proxy, {})
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    proxy.set_mode("wrong_shape")
    assert post(proxy, {}).json() == {"status": "ok"}
    assert upstream.hits == []


def test_reset_is_a_connection_error(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_mode("reset")
    with pytest.raises(requests.ConnectionError):
        post(proxy, {})
    assert upstream.hits == []


def test_drop_after_apply_reaches_the_server_but_the_client_hears_nothing(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.set_mode("drop_after_apply")
    with pytest.raises(requests.ConnectionError):
        post(proxy, {"batch": 1})
    assert upstream.hits == ["/api/v1/x"]
    assert proxy.applied.is_set()


def test_slow_times_the_client_out_then_applies(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_mode("slow")
    with pytest.raises(requests.Timeout):
        post(proxy, {}, timeout=0.3)
    assert proxy.applied.wait(3.0)
    assert upstream.hits == ["/api/v1/x"]


def test_only_limits_the_fault_to_some_paths(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_mode("error500", only=("/api/v1/kiosk/transactions",))
    assert post(proxy, {"b": 1}).status_code == 200
    answer = requests.post(f"{proxy.url}/api/v1/kiosk/transactions", json={}, timeout=2)
    assert answer.status_code == 500


def test_unknown_mode_is_refused(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        proxy.set_mode("flaky")
