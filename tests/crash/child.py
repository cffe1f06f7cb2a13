"""The kiosk as a child process of the crash harness: real SQLite store, real serial driver.

Run as ``python tests/crash/child.py --db PATH --port /dev/pts/N [--crash-at NAME#K]``.
It opens the store with a checkpoint hook, starts the serial locker on the emulator's pty
and ``KioskCore`` with the system clock, then reads one JSON command per line on stdin:

    {"tap": "open", "value": null}   {"present": "<key>"}   {"scan": "LAP-1"}
    {"text": "1234"}   {"wait_screen": "take_item", "timeout": 5}   {"refresh": true}
    {"stop": true}

and writes JSON lines on stdout, each flushed: ``{"checkpoint": name, "n": K}`` for every
checkpoint (written BEFORE a crash point acts, so the harness knows what was reported),
``{"screen": ...}`` for every new snapshot, ``{"started": ...}`` once start-up is done, and
one ``{"reply": ...}`` per command. ``--crash-at NAME#K`` SIGKILLs the process at the K-th
occurrence of checkpoint NAME: no ``finally``, no atexit, no flush of anything else;
``--crash-at after:S`` kills it S seconds after start-up, wherever it is (inside a
COMMIT, half way through a bus frame ...).

``--bad-restart`` is a deliberately broken kiosk for the test that proves the harness can
fail: before start-up it pulses every opening that has no outcome (re-running it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

# Run as a script: the checkout root must be importable (kiosk, hardware, tests.crash).
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hardware.errors import HardwareError  # noqa: E402
from kiosk.bootstrap import build_locker  # noqa: E402
from kiosk.core.clock import SystemClock  # noqa: E402
from kiosk.core.engine import KioskCore  # noqa: E402
from kiosk.core.events import Snapshot  # noqa: E402
from kiosk.core.policy import CorePolicy  # noqa: E402
from kiosk.store import open_store  # noqa: E402
from tests.crash.cabinet import cabinet_spec  # noqa: E402

TIMED = "after:"  # --crash-at after:SECONDS: killed that long after start-up, anywhere
SETTLE_S = 10.0  # every command waits at most this long for the core to settle
POLICY = CorePolicy(message_s=60.0, idle_timeout_s=120.0, staff_timeout_s=300.0)


class Output:
    """JSON lines on stdout from any thread; the checkpoint counter and the crash switch."""

    def __init__(self, crash_at: tuple[str, int] | None) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._crash_at = crash_at

    def emit(self, **fields: Any) -> None:
        """One line, flushed at once: the harness must see it even if we die right after."""
        line = json.dumps(fields, default=str)
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def checkpoint(self, name: str) -> None:
        """Report the checkpoint, then die here if it is the crash point."""
        with self._lock:
            self._counts[name] += 1
            n = self._counts[name]
            sys.stdout.write(json.dumps({"checkpoint": name, "n": n}) + "\n")
            sys.stdout.flush()
            if self._crash_at == (name, n):
                # SIGKILL, not exit: no finally blocks, no rollback, no atexit, like a power cut
                # seen from the software (the page cache survives; that is the kernel's part).
                os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(10)  # never reached; the signal is delivered at once


def parse_crash(text: str | None) -> tuple[str, int] | None:
    """``NAME#K`` -> (NAME, K); ``NAME`` alone is its first occurrence."""
    if not text or text.startswith(TIMED):
        return None
    name, _, k = text.rpartition("#")
    return (name, int(k)) if name else (text, 1)


def snapshot_fields(snap: Snapshot) -> dict[str, Any]:
    """What the harness needs of a snapshot."""
    return {
        "screen": snap.screen.value,
        "message": snap.message,
        "compartment": snap.compartment,
        "params": dict(snap.params),
        "actions": list(snap.actions),
    }


def bad_restart(store: Any, locker: Any) -> None:
    """The broken kiosk: re-run every opening without an outcome (pulses the lock again)."""
    with store.transaction() as tx:
        unfinished = tx.unfinished_opens()
    for entry in unfinished:
        with suppress(HardwareError):
            locker.open(int(entry.payload["compartment"]), f"rerun-{entry.payload['open_id']}")


def run_command(core: KioskCore, locker: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    """Carry out one command; the reply (ok, and the screen afterwards)."""
    ok = True
    if "tap" in cmd:
        core.tap(cmd["tap"], cmd.get("value"))
    elif "present" in cmd:
        core.present(cmd["present"], cmd.get("first_name", ""))
    elif "scan" in cmd:
        core.scan(cmd["scan"])
    elif "text" in cmd:
        core.enter_text(cmd["text"])
    elif "refresh" in cmd:
        locker.refresh()
    elif "wait_screen" in cmd:
        deadline = time.monotonic() + float(cmd.get("timeout", 5.0))
        while core.snapshot().screen.value != cmd["wait_screen"]:
            if time.monotonic() >= deadline:
                ok = False
                break
            time.sleep(0.01)
    elif "sleep" in cmd:
        time.sleep(min(float(cmd["sleep"]), 5.0))
    else:
        return {"reply": "unknown", "ok": False, "error": f"unknown command {cmd!r}"}
    ok = core.settle(SETTLE_S) and ok
    return {"reply": next(iter(cmd)), "ok": ok, **snapshot_fields(core.snapshot())}


def main(argv: list[str] | None = None) -> int:
    """Start the kiosk, serve commands until ``stop`` or end of input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", required=True)
    parser.add_argument("--crash-at", default=None)
    parser.add_argument("--bad-restart", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(relativeCreated)6.0f %(name)s %(message)s"
    )
    out = Output(parse_crash(args.crash_at))
    clock = SystemClock()
    with ExitStack() as stack:
        store = open_store(args.db, clock, checkpoint=out.checkpoint)
        stack.callback(store.close)
        out.emit(opened=True, boot=store.boot)  # known even when start-up is cut short
        locker = build_locker(cabinet_spec(args.port), stack)
        locker.start()
        stack.callback(locker.close)
        if args.bad_restart:
            bad_restart(store, locker)
        core = KioskCore(
            store=store, locker=locker, policy=POLICY, clock=clock, checkpoint=out.checkpoint
        )
        core.subscribe(lambda snap: out.emit(**snapshot_fields(snap)))
        report = core.start()
        stack.callback(core.stop)
        out.emit(
            started=True,
            boot=report.boot,
            interrupted=report.interrupted,
            alarms=report.alarms,
            refused=report.refused,
        )
        if args.crash_at and args.crash_at.startswith(TIMED):
            delay = float(args.crash_at.removeprefix(TIMED))
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line)
            if cmd.get("stop"):
                core.settle(SETTLE_S)
                break
            try:
                reply = run_command(core, locker, cmd)
            except Exception as exc:  # the harness must get an answer, never a silent child
                logging.exception("command %r failed", cmd)
                reply = {"reply": "error", "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            out.emit(**reply)
    out.emit(reply="stop", ok=True)
    return 0


def forked_main(argv: list[str], conn: socket.socket, log_path: str) -> None:
    """``main`` in a process forked by the harness's fork server (``process.Forked``).

    The socket becomes stdin and stdout, the log file stderr: from here on it is the same
    program as the command line one, imports already done.
    """
    for fd in (0, 1):
        os.dup2(conn.fileno(), fd)
    conn.close()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    # multiprocessing replaced stdin with /dev/null; the streams must read the new fds.
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as we do
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.exit(main(argv))


if __name__ == "__main__":
    sys.exit(main())
