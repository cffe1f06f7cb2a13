"""Loan server benchmarks: heartbeat latency of 500 kiosks, and draining a kiosk's backlog.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_server.py [--quick]
[--databases sqlite,postgresql] [--part heartbeat|drain|all] [--dir DIR]``). Prints tables
and writes bench/results/server.json. The server is a real ``loanserver serve`` subprocess
on 127.0.0.1 (uvicorn, one process); PostgreSQL is a throwaway cluster (fsync off), SQLite
a file in a temporary directory (or DIR). Load generator and server share this machine.

1. Heartbeats: 500 kiosks, each with its own token, beat every 30 s: 16.7 requests/s.
   Time is compressed, not the rate: 500 x N beats are sent open-loop at the real rate
   (request i is due at i / rate, whatever the server's speed), each on a new connection
   as a kiosk 30 s apart would; then the same at 10x and 30x that rate to show the
   headroom. Latency = send -> full answer. Baseline: ``GET /health`` (no token, no
   write) at 10x. Every heartbeat must be stored: the server's row count is checked.
2. Drain: a kiosk store (``kiosk.store.open_store``) with an unsent journal of 10,000 rows
   (kinds the server stores without a state change), sent by the kiosk's own relay
   (``kiosk.sync.relay``: note_attempt, POST, mark_sent per batch) to the live server in
   batches of 500 and of 1; rows per second, and the server's count checked.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/...` from root

from bench_core import RESULTS, pct, table  # the house's table, quantile, results dir
from server_rig import (
    LoadResult,
    ServerProcess,
    add_kiosks,
    count_rows,
    databases,
    open_loop,
    request,
)

KIOSKS = 500
BEAT_INTERVAL_S = 30.0
REAL_RATE = KIOSKS / BEAT_INTERVAL_S  # 16.7 requests per second
COMPARTMENTS = 12
HEARTBEAT = "/api/v1/kiosk/heartbeat"
HEALTH = "/health"
TRANSACTIONS = "/api/v1/kiosk/transactions"
DRAIN_ROWS = 10_000
KINDS = ("open_requested", "door_opened", "door_closed", "session_ended")  # stored only


def heartbeat_body(i: int) -> dict[str, Any]:
    """A typical beat: every compartment, one alarm on every 10th kiosk, no backlog."""
    alarms = []
    if i % 10 == 0:
        alarms = [{"id": f"a-{i}", "kind": "jammed", "compartment": 3, "detail": "no ack"}]
    compartments = [
        {"number": n, "status": "loaded" if n % 3 else "empty", "asset_tag": None, "note": ""}
        for n in range(1, COMPARTMENTS + 1)
    ]
    return {
        "compartments": compartments,
        "alarms": alarms,
        "versions": {"kiosk": "0.1.0"},
        "backlog": 0,
        "acked_commands": [],
    }


def load_row(db_name: str, what: str, rate: float, run: LoadResult) -> dict[str, Any]:
    """One table row of an open-loop run."""
    return {
        "database": db_name,
        "request": what,
        "rate_req_s": rate,
        "n": len(run.latencies),
        "done_req_s": len(run.latencies) / run.elapsed,
        "p50_ms": pct(run.latencies, 0.5) * 1000,
        "p99_ms": pct(run.latencies, 0.99) * 1000,
        "max_ms": max(run.latencies) * 1000,
        "gen_lag_p99_ms": pct(run.lags, 0.99) * 1000,
        "errors": ", ".join(f"{k}: {v}" for k, v in run.errors.items()) or "0",
    }


def heartbeats(
    fresh: Callable[[str], str], db_name: str, directory: Path, quick: bool
) -> list[dict[str, Any]]:
    """Heartbeat latency at 1x, 10x, 30x the real rate, plus /health at 10x."""
    url = fresh(db_name)
    tokens = add_kiosks(url, KIOSKS)
    beats = KIOSKS * (1 if quick else 2)  # every kiosk beats once (twice) per run
    runs = [(HEARTBEAT, 1, beats), (HEARTBEAT, 10, beats * 2), (HEARTBEAT, 30, beats * 3)]
    runs.append((HEALTH, 10, beats))
    rows = []
    answered = 0  # heartbeats answered 200: each must be a stored row
    with ServerProcess(url, directory) as server:

        def call(i: int, path: str, port: int = server.port) -> int:
            if path == HEALTH:
                return request(port, "GET", HEALTH, None, None)[0]
            kiosk = i % KIOSKS
            return request(port, "POST", path, tokens[kiosk], heartbeat_body(kiosk))[0]

        for path, factor, count in runs:
            mark = server.mark()
            run = open_loop(count, REAL_RATE * factor, lambda i, path=path: call(i, path))
            name = "GET /health" if path == HEALTH else f"heartbeat {factor}x"
            row = load_row(db_name, name, REAL_RATE * factor, run)
            # The server's own time (its access log): the rest is connection + client.
            row["server_p50_ms"] = pct(server.server_ms(path, mark), 0.5)
            rows.append(row)
            if path == HEARTBEAT:
                answered += len(run.latencies) - sum(run.errors.values())
    stored = count_rows(url, "heartbeats")
    for row in rows:
        row["stored_check"] = "ok" if stored == answered else f"{stored} of {answered} stored"
    return rows


def make_journal(path: Path, rows: int) -> None:
    """A kiosk store whose journal holds ``rows`` unsent rows (one transaction per 1000)."""
    from kiosk.core.clock import SystemClock
    from kiosk.store import open_store

    store = open_store(path, SystemClock())
    try:
        for start in range(0, rows, 1000):
            with store.transaction() as tx:
                for i in range(start, min(rows, start + 1000)):
                    payload = {"open_id": f"{i:032x}", "compartment": i % 12 + 1, "detail": ""}
                    tx.journal(KINDS[i % len(KINDS)], payload)
    finally:
        store.close()


def drain(
    fresh: Callable[[str], str], db_name: str, directory: Path, template: Path, rows: int
) -> list[dict[str, Any]]:
    """Drain a copy of the template journal in batches of 500, then of 1."""
    from kiosk.core.clock import SystemClock
    from kiosk.settings_sync import SyncSettings
    from kiosk.store import open_store
    from kiosk.sync.client import SyncClient
    from kiosk.sync.relay import relay

    results = []
    for batch in (500, 1):
        url = fresh(db_name)
        [token] = add_kiosks(url, 1)
        copy = directory / f"kiosk-{db_name}-{batch}.db"
        shutil.copyfile(template, copy)
        store = open_store(copy, SystemClock())
        try:
            with ServerProcess(url, directory) as server:
                client = SyncClient(SyncSettings(url=server.base), token=token)
                started = time.perf_counter()
                result = relay(store, client, SystemClock(), batch)
                elapsed = time.perf_counter() - started
                server_ms = server.server_ms(TRANSACTIONS)
            left = len(store.journal_entries(unsent_only=True))
        finally:
            store.close()
        stored = count_rows(url, "transactions")
        results.append(
            {
                "database": db_name,
                "batch": batch,
                "rows": result.sent,
                "posts": result.batches,
                "seconds": elapsed,
                "rows_per_s": result.sent / elapsed,
                "ms_per_post": elapsed / result.batches * 1000,
                # The server's own share (access log); the rest is the kiosk store + HTTP.
                "server_ms_per_post": sum(server_ms) / max(1, len(server_ms)),
                "check": "ok" if (stored, left) == (rows, 0) else f"{stored} stored, {left} left",
            }
        )
    return results


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load generator": "same machine, threads, new connection per request",
        # Other work on the machine shifts every figure: note how busy it was.
        "load average at start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def main() -> None:
    """Run the benchmarks and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke run)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--part", choices=("heartbeat", "drain", "all"), default="all")
    parser.add_argument("--dir", type=Path, help="where the SQLite files go (a temporary dir)")
    args = parser.parse_args()
    names = [n.strip() for n in args.databases.split(",") if n.strip()]
    if not names or set(names) - {"sqlite", "postgresql"}:
        print("error: --databases takes sqlite and/or postgresql", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.ERROR)
    results: dict[str, Any] = {"machine": machine()}
    table("machine", [{"fact": k, "value": v} for k, v in results["machine"].items()])
    rows = DRAIN_ROWS // 10 if args.quick else DRAIN_ROWS
    with (
        tempfile.TemporaryDirectory(prefix="bench-server-", dir=args.dir) as name,
        databases(names, Path(name)) as fresh,
    ):
        directory = Path(name)
        if args.part in ("heartbeat", "all"):
            beat_rows = [
                row
                for db_name in names
                for row in heartbeats(fresh, db_name, directory, args.quick)
            ]
            results["heartbeat"] = beat_rows
            table(f"heartbeats of {KIOSKS} kiosks (real rate {REAL_RATE:.1f}/s = 1x)", beat_rows)
        if args.part in ("drain", "all"):
            template = directory / "journal.db"
            make_journal(template, rows)
            drain_rows = [
                row for db_name in names for row in drain(fresh, db_name, directory, template, rows)
            ]
            results["drain"] = drain_rows
            table(f"draining a {rows}-row journal through the kiosk relay", drain_rows)
    results["machine"]["load average at end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average at end: {results['machine']['load average at end']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "server.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
