"""SIGKILL in the middle of a batch: the kiosk's sync link (``relay_child.py``, the real
``SyncService`` in its own process) killed while a batch is in flight, restarted, drained.

Kill moments, one after another on the same kiosk store:
1. the server applied the batch, the kiosk has not heard the ack (the proxy holds the
   answer): the interesting case; the restarted kiosk sends the batch again;
2. the batch is on its way but has not reached the server (the proxy holds it), and
   reaches it only after the kiosk died: the late copy and the resend are one batch;
3. the ack received, the kiosk killed just before it records it (``mark_sent``), then
   just after (the child wraps its store's ``mark_sent`` for these two exact moments);
4. timed kills while the kiosk drains in small batches (anywhere: before a send, during
   one, between the ack and ``mark_sent``).
After each kill nothing on the server is doubled and every row the kiosk marked sent is on
the server; after the last restart every row is on the server exactly once, in sequence
order, and the kiosk has marked every row sent.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from kiosk.core.clock import SystemClock
from kiosk.store import open_store
from tests.e2e.world import server_rows, transaction_counts
from tests.support.faultproxy import FaultProxy
from tests.support.live_server import LiveServer

CHILD = Path(__file__).resolve().with_name("relay_child.py")
ROOT = CHILD.parents[2]
ROWS = 1200
LINE_TIMEOUT_S = 30.0  # the child's imports and store on a loaded machine
TRANSACTIONS = "/api/v1/kiosk/transactions"
TIMED_KILLS_S = (0.0, 0.05, 0.1)  # after the drain's first new batch reached the server


class Child:
    """``relay_child.py`` as a subprocess; its JSON lines through a queue (bounded waits)."""

    def __init__(
        self, db: Path, url: str, token_file: Path, batch_size: int, log: Path, *extra: str
    ) -> None:
        command = [
            sys.executable,
            str(CHILD),
            "--db",
            str(db),
            "--url",
            url,
            "--token-file",
            str(token_file),
            "--batch-size",
            str(batch_size),
            *extra,
        ]
        self.log = log.open("ab")
        self.popen = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def line(self, timeout: float = LINE_TIMEOUT_S) -> dict[str, Any] | None:
        """The next line (None: the output ended)."""
        return self.lines.get(timeout=timeout)

    def kill(self) -> int:
        """SIGKILL, and wait for it to be gone; its return code (-9, or 0 if it had ended)."""
        self.popen.send_signal(signal.SIGKILL)
        code = self.popen.wait(LINE_TIMEOUT_S)
        self.log.close()
        return code

    def finish(self) -> tuple[int, list[dict[str, Any]]]:
        """Wait for the end; the exit code and every line after the first."""
        lines = []
        while (line := self.line()) is not None:
            lines.append(line)
        code = self.popen.wait(LINE_TIMEOUT_S)
        self.log.close()
        return code, lines


@pytest.fixture
def proxy(loan_server: LiveServer) -> Iterator[FaultProxy]:
    with FaultProxy(loan_server.url, slow_s=20.0) as p:
        yield p


def kiosk_rows(db: Path) -> tuple[set[str], set[str]]:
    """Every journal uuid of the kiosk store, and those marked sent."""
    store = open_store(db, SystemClock())
    try:
        rows = store.journal_entries()
    finally:
        store.close()
    return {r.uuid for r in rows}, {r.uuid for r in rows if r.sent_at is not None}


def check_after_kill(db: Path, engine: Engine, moment: str) -> tuple[int, int]:
    """Nothing doubled on the server; what the kiosk marked sent is there. (stored, sent)"""
    rows, distinct = transaction_counts(engine)
    assert rows == distinct, f"{moment}: {rows - distinct} transaction(s) stored twice"
    journal, sent = kiosk_rows(db)
    on_server = {u for u, _s in server_rows(engine)}
    assert sent <= on_server, f"{moment}: rows marked sent that the server does not hold"
    assert on_server <= journal
    return rows, len(sent)


# The kiosk's side is under test here (a batch applied but not marked sent); the server's
# handling of repeats on PostgreSQL is covered by test_faults. SQLite keeps this one short.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_killed_mid_batch_restarted_and_drained_each_row_once(
    loan_server: LiveServer, server_engine: Engine, proxy: FaultProxy, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(loan_server.add_kiosk("kiosk-killed") + "\n")
    db = tmp_path / "kiosk.db"
    store = open_store(db, SystemClock())
    try:
        for start in range(0, ROWS, 100):
            with store.transaction() as tx:
                for n in range(start, start + 100):
                    tx.journal("staff_login", {"staff_id": str(n)})
    finally:
        store.close()
    log = tmp_path / "children.log"

    def child(batch_size: int = 200, *extra: str) -> Child:
        return Child(db, proxy.url, token_file, batch_size, log, *extra)

    # 1. The server applied the first batch; its answer is held; the kiosk dies.
    proxy.set_mode("drop_after_apply", only=(TRANSACTIONS,), hold_s=20.0)
    first = child()
    assert first.line() == {"ready": True, "boot": 2}
    assert proxy.applied.wait(LINE_TIMEOUT_S), "the batch never reached the server"
    assert first.kill() == -signal.SIGKILL
    proxy.release()
    assert check_after_kill(db, server_engine, "killed after apply") == (200, 0)

    # 2. The batch is held before the server; the kiosk dies; then the copy arrives.
    proxy.set_mode("slow", only=(TRANSACTIONS,))
    second = child()
    assert second.line() is not None
    while proxy.arrivals(TRANSACTIONS, mode="slow") == 0:
        assert second.popen.poll() is None
        threading.Event().wait(0.01)
    assert second.kill() == -signal.SIGKILL
    proxy.release()  # the late copy of batch 1 reaches the server now
    assert proxy.applied.wait(LINE_TIMEOUT_S)
    assert check_after_kill(db, server_engine, "killed before the server had it") == (200, 0)

    # 3. Acknowledged, then killed just before the kiosk records it (2nd batch: the first
    # is the repeat of the batch the server already holds), then just after recording.
    proxy.set_mode("pass")
    for moment, nth, after in (
        ("before_mark_sent", 2, (400, 200)),
        ("after_mark_sent", 1, (400, 400)),
    ):
        victim = child(200, "--die-at", moment, "--die-on", str(nth))
        code, _lines = victim.finish()
        assert code == -signal.SIGKILL, f"the kiosk was not killed {moment}"
        assert check_after_kill(db, server_engine, f"killed {moment}") == after

    # 4. Timed kills while draining in small batches: each once the drain has begun.
    proxy.set_mode("pass")
    progress = [(400, 400)]
    for delay in TIMED_KILLS_S:
        victim = child(batch_size=20)
        assert victim.line() is not None
        while transaction_counts(server_engine)[0] == progress[-1][0]:
            if victim.popen.poll() is not None:
                break  # drained already (a fast machine): nothing left to interrupt
            threading.Event().wait(0.01)
        threading.Event().wait(delay)
        assert victim.kill() in (-signal.SIGKILL, 0)
        progress.append(check_after_kill(db, server_engine, f"killed {delay} s into a drain"))
    assert progress[-1][0] > 400, f"the timed kills left no progress: {progress}"

    # The last restart drains everything.
    code, lines = child().finish()
    assert code == 0, f"the kiosk did not drain: {lines[-3:]}"
    assert lines[-1] == {"done": True, "unsent": 0}
    journal, sent = kiosk_rows(db)
    assert sent == journal and len(journal) == ROWS
    stored = server_rows(server_engine)
    assert transaction_counts(server_engine) == (ROWS, ROWS)
    assert {u for u, _s in stored} == journal
    seqs = [s for _u, s in stored]
    assert seqs == sorted(seqs), "the server stored rows out of the kiosk's order"
