"""One kiosk child process seen from the harness: commands in, JSON lines out, bounded waits.

A reader thread turns the child's stdout into a queue, so every wait has a timeout. A
child that goes silent is killed and reported (``ChildHung``); one that dies (the planned
SIGKILL, or a crash) raises ``ChildDied`` from whatever was waiting for it.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHILD = Path(__file__).resolve().with_name("child.py")
ROOT = CHILD.parents[2]
START_TIMEOUT_S = 20.0  # imports + store + locker + start-up, on a loaded 2-core machine
COMMAND_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 10.0


class ChildDied(Exception):
    """The child's output ended: it exited or was killed (``returncode``)."""

    def __init__(self, returncode: int | None) -> None:
        super().__init__(f"kiosk child ended, return code {returncode}")
        self.returncode = returncode

    @property
    def killed(self) -> bool:
        """True when the child died of SIGKILL (the planned crash)."""
        return self.returncode == -signal.SIGKILL


class ChildHung(Exception):
    """The child did not answer in time; it has been killed."""


class FlowError(AssertionError):
    """The kiosk did not do what the flow script expects (a wrong screen, a failed wait)."""


@dataclass
class Child:
    """A running ``child.py``; everything it reported is kept in ``checkpoints``/``screens``."""

    proc: subprocess.Popen[str]
    stderr_path: Path
    lines: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    checkpoints: list[str] = field(default_factory=list)
    screens: list[str] = field(default_factory=list)
    started: dict[str, Any] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)  # the last reply
    boot: int = 0  # the store's boot count, reported as soon as the store is open

    @classmethod
    def spawn(
        cls,
        db: Path,
        port: str,
        stderr_path: Path,
        *,
        crash_at: str | None = None,
        bad_restart: bool = False,
    ) -> Child:
        """Start the child and wait for its start report."""
        child = cls.launch(db, port, stderr_path, crash_at=crash_at, bad_restart=bad_restart)
        try:
            child.wait_started()
        except BaseException:
            child.close()
            raise
        return child

    @classmethod
    def launch(
        cls,
        db: Path,
        port: str,
        stderr_path: Path,
        *,
        crash_at: str | None = None,
        bad_restart: bool = False,
    ) -> Child:
        """Start the child; ``wait_started`` waits for its start report."""
        argv = [sys.executable, str(CHILD), "--db", str(db), "--port", port]
        if crash_at:
            argv += ["--crash-at", crash_at]
        if bad_restart:
            argv.append("--bad-restart")
        with stderr_path.open("ab") as err:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
                cwd=ROOT,
            )
        child = cls(proc, stderr_path)
        threading.Thread(target=child._read, name="crash-child-out", daemon=True).start()
        return child

    def wait_started(self) -> dict[str, Any]:
        """Wait for the start report (start-up, reconciliation included, is done)."""
        self.started = self._until(lambda m: "started" in m, START_TIMEOUT_S, "start-up")
        return self.started

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"noise": line.rstrip()})
        self.lines.put(None)

    def _until(self, done: Any, timeout: float, what: str) -> dict[str, Any]:
        """Consume output until ``done(message)``; records checkpoints and screens."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                message = self.lines.get(timeout=max(0.0, left))
            except queue.Empty:
                self.kill()
                raise ChildHung(f"no answer to {what} within {timeout:.0f} s") from None
            if message is None:
                raise ChildDied(self._exit_code())
            if "opened" in message:
                self.boot = int(message["boot"])
            elif "checkpoint" in message:
                self.checkpoints.append(f"{message['checkpoint']}#{message['n']}")
            elif "reply" not in message and "screen" in message:
                self.screens.append(message["screen"])
            if done(message):
                return message

    def _exit_code(self) -> int | None:
        try:
            return self.proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def command(self, timeout: float = COMMAND_TIMEOUT_S, **cmd: Any) -> dict[str, Any]:
        """Send one command and return its reply."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            # Dead already: drain what it said, then report how it ended.
            self._until(lambda _m: False, EXIT_TIMEOUT_S, "a dead child's output")
        self.last = self._until(lambda m: "reply" in m, timeout, f"command {cmd}")
        return self.last

    def expect(self, screen: str, **cmd: Any) -> dict[str, Any]:
        """A command after which the kiosk must show ``screen``."""
        reply = self.command(**cmd)
        if not reply.get("ok") or reply.get("screen") != screen:
            raise FlowError(f"after {cmd}: expected screen {screen}, got {reply}")
        return reply

    def wait_screen(self, screen: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until the kiosk shows ``screen``."""
        return self.expect(screen, wait_screen=screen, timeout=timeout)

    def stop(self) -> None:
        """Ask the child to stop cleanly and wait for its exit (code 0 expected)."""
        self.command(stop=True)
        code = self._exit_code()
        if code != 0:
            raise FlowError(f"kiosk child exited with {code} on stop; see {self.stderr_path}")

    def wait_dead(self) -> int | None:
        """After a crash point: drain the output and return the exit code."""
        with contextlib.suppress(ChildDied):
            self._until(lambda _m: False, EXIT_TIMEOUT_S, "the crash")
        return self._exit_code()

    def kill(self) -> None:
        """SIGKILL the child (a hung one, or cleanup); safe when it is already gone."""
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(EXIT_TIMEOUT_S)

    def close(self) -> None:
        """Make sure the process is gone and its pipes are closed."""
        self.kill()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
