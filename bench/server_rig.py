"""The loan server under benchmark: a database (SQLite file or throwaway PostgreSQL) and a
real ``loanserver serve`` subprocess on 127.0.0.1, plus an open-loop request generator.

Used by ``bench_server.py``; not a test fixture (tests use ``tests.support``).
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from loanserver import db, services
from tests.support.pgcluster import PgCluster, free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0  # the server migrates, then logs "serving on"
STOP_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 30.0  # one request; a longer one counts as an error


@contextmanager
def databases(names: list[str], directory: Path) -> Iterator[Callable[[str], str]]:
    """A function ``fresh(name) -> URL`` of a new empty database of kind ``name``.

    PostgreSQL: one throwaway cluster for the whole run (fsync off, like the tests: the
    figures are the server's software cost, not the disk's), a new database per call.
    """
    cluster = PgCluster().start() if "postgresql" in names else None
    counter = 0

    def fresh(name: str) -> str:
        nonlocal counter
        counter += 1
        if name == "sqlite":
            return f"sqlite:///{directory / f'server-{counter}.db'}"
        assert cluster is not None
        return cluster.fresh_database()

    try:
        yield fresh
    finally:
        if cluster is not None:
            cluster.stop()


def add_kiosks(url: str, count: int) -> list[str]:
    """Migrate ``url`` and register ``count`` kiosks; their bearer tokens."""
    engine = db.make_engine(url)
    try:
        db.migrate(engine)
        with db.session_factory(engine)() as session:
            return [services.add_kiosk(session, f"kiosk-{i:04d}").token for i in range(count)]
    finally:
        engine.dispose()


def count_rows(url: str, table: str) -> int:
    """How many rows ``table`` holds (a check that every request was really stored)."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


class ServerProcess:
    """``python -m loanserver serve --database URL`` on a free port; its log in a file."""

    def __init__(self, url: str, directory: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = directory / f"server-{self.port}.log"
        self._url = url
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOANSERVER_")}
        env["PYTHONPATH"] = str(ROOT)
        argv = [sys.executable, "-m", "loanserver", "serve", "--database", self._url]
        with self.log.open("wb") as log:  # the access log is a line per request: a file
            self._proc = subprocess.Popen(
                [*argv, "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while "serving on" not in self.log.read_text(errors="replace"):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"loanserver serve did not start: {tail}")
            time.sleep(0.05)
        return self

    def mark(self) -> int:
        """Where the log ends now: ``server_ms(since=mark)`` sees only later requests."""
        return self.log.stat().st_size

    def server_ms(self, path: str, since: int = 0) -> list[float]:
        """The server's own duration of each request to ``path`` (its JSON access log)."""
        with self.log.open("rb") as log:
            log.seek(since)
            lines = log.read().decode(errors="replace").splitlines()
        found = []
        for line in lines:
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("path") == path:
                    found.append(float(entry["ms"]))
        return found

    def __exit__(self, *exc_info: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def request(
    port: int, method: str, path: str, token: str | None, body: Any | None
) -> tuple[int, bytes]:
    """One request on a NEW connection (a kiosk beating every 30 s reuses none)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    headers = {"Connection": "close"}
    data = None
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


@dataclass
class LoadResult:
    """What an open-loop run saw."""

    latencies: list[float] = field(default_factory=list)  # send -> full answer, seconds
    lags: list[float] = field(default_factory=list)  # scheduled -> sent (generator health)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0


def open_loop(count: int, rate: float, call: Callable[[int], int], workers: int = 64) -> LoadResult:
    """Call ``call(i)`` for i in 0..count-1 at ``rate`` per second, on schedule.

    Open loop: request i is due at i / rate whatever the server's speed, so a slow server
    shows as latency (and a growing lag), not as a politely lower rate. ``call`` returns
    the HTTP status; anything but 200, or an exception, is counted as an error.
    """
    result = LoadResult()
    lock = threading.Lock()
    jobs: queue.Queue[int | None] = queue.Queue()
    start = time.perf_counter()

    def worker() -> None:
        while (i := jobs.get()) is not None:
            due = start + i / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            try:
                status = call(i)
                outcome = "" if status == 200 else f"HTTP {status}"
            except Exception as exc:  # counted and shown, the run goes on
                outcome = type(exc).__name__
            done = time.perf_counter()
            with lock:
                result.lags.append(sent - due)
                result.latencies.append(done - sent)
                if outcome:
                    result.errors[outcome] = result.errors.get(outcome, 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for i in range(count):
        jobs.put(i)
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_S + count / rate + 60)
    result.elapsed = time.perf_counter() - start
    return result
