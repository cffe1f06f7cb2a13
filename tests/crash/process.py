"""One kiosk child process seen from the harness: commands in, JSON lines out, bounded waits.

Children start as the documented command (``python tests/crash/child.py``), or, for speed
in the big crash-point run, forked from a fork server that imported the kiosk once. A
reader thread turns the child's stdout into a queue, so every wait has a timeout. A
child that goes silent is killed and reported (``ChildHung``); one that dies (the planned
SIGKILL, or a crash) raises ``ChildDied`` from whatever was waiting for it.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tests.crash import child as child_module

CHILD = Path(__file__).resolve().with_name("child.py")
ROOT = CHILD.parents[2]
START_TIMEOUT_S = 20.0  # imports + store + locker + start-up, on a loaded 2-core machine
COMMAND_TIMEOUT_S = 30.0  # a wait_screen (10 s) then settle (10 s), under load
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


class Popened:
    """A child started as ``python tests/crash/child.py ...`` (the documented command)."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen
        assert popen.stdin is not None and popen.stdout is not None
        self.stdin: TextIO = popen.stdin
        self.stdout: TextIO = popen.stdout

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        return self.popen.returncode

    def kill(self) -> None:
        self.popen.kill()


class Forked:
    """A child forked by a fork server that imported everything once (saves ~0.6 s of CPU
    per start); stdin and stdout are one socket, the rest is the same ``child.main``."""

    def __init__(self, argv: list[str], stderr_path: Path) -> None:
        ours, theirs = socket.socketpair()
        context = _fork_server()
        self.process = context.Process(
            target=child_module.forked_main, args=(argv, theirs, str(stderr_path)), daemon=True
        )
        self.process.start()
        theirs.close()  # the child has its copy: EOF on ours means the child is gone
        self.socket = ours
        self.stdin: TextIO = ours.makefile("w", encoding="utf-8", buffering=1)
        self.stdout: TextIO = ours.makefile("r", encoding="utf-8")

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float) -> int | None:
        self.process.join(timeout)
        return self.process.exitcode

    def kill(self) -> None:
        self.process.kill()


_SERVER_LOCK = threading.Lock()


def _fork_server() -> Any:
    """The forkserver context, its server preloading the child's imports (started once)."""
    with _SERVER_LOCK:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["tests.crash.child"])
        return context


@dataclass
class Child:
    """A running kiosk child; everything it reported is kept in ``checkpoints``/``screens``."""

    proc: Popened | Forked
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
        forked: bool = False,
    ) -> Child:
        """Start the child and wait for its start report."""
        child = cls.launch(
            db, port, stderr_path, crash_at=crash_at, bad_restart=bad_restart, forked=forked
        )
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
        forked: bool = False,
    ) -> Child:
        """Start the child (``forked``: from the fork server); ``wait_started`` follows."""
        args = ["--db", str(db), "--port", port]
        if crash_at:
            args += ["--crash-at", crash_at]
        if bad_restart:
            args.append("--bad-restart")
        proc: Popened | Forked
        if forked:
            proc = Forked(args, stderr_path)
        else:
            with stderr_path.open("ab") as err:
                proc = Popened(
                    subprocess.Popen(
                        [sys.executable, str(CHILD), *args],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=err,
                        text=True,
                        bufsize=1,
                        cwd=ROOT,
                    )
                )
        child = cls(proc, stderr_path)
        threading.Thread(target=child._read, name="crash-child-out", daemon=True).start()
        return child

    def wait_started(self) -> dict[str, Any]:
        """Wait for the start report (start-up, reconciliation included, is done)."""
        self.started = self._until(lambda m: "started" in m, START_TIMEOUT_S, "start-up")
        return self.started

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # closed under us by close()
            for line in self.proc.stdout:
                self._line(line)
        self.lines.put(None)

    def _line(self, line: str) -> None:
        if line:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"noise": line.rstrip()})

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
        code = self.proc.wait(EXIT_TIMEOUT_S)
        if code is None:
            self.kill()
            code = self.proc.poll()
        return code

    def command(self, *, answer_s: float = COMMAND_TIMEOUT_S, **cmd: Any) -> dict[str, Any]:
        """Send one command (``cmd`` as JSON) and return its reply, waiting ``answer_s``."""
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            # Dead already: drain what it said, then report how it ended.
            self._until(lambda _m: False, EXIT_TIMEOUT_S, "a dead child's output")
        self.last = self._until(lambda m: "reply" in m, answer_s, f"command {cmd}")
        return self.last

    def expect(self, screen: str, **cmd: Any) -> dict[str, Any]:
        """A command after which the kiosk must show ``screen``."""
        reply = self.command(**cmd)
        if not reply.get("ok") or reply.get("screen") != screen:
            raise FlowError(f"after {cmd}: expected screen {screen}, got {reply}")
        return reply

    def wait_screen(self, screen: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait (in the child, up to ``timeout``) until the kiosk shows ``screen``."""
        return self.expect(screen, wait_screen=screen, timeout=timeout)

    def stop(self) -> None:
        """Ask the child to stop cleanly and wait for its exit (code 0 expected)."""
        reply = self.command(stop=True)
        code = self._exit_code()
        # multiprocessing's fork server reports 255 when it cannot read a child's status
        # (popen_forkserver.poll: "perhaps the forkserver process itself got killed"). The
        # child's own "stop" reply comes after its core, locker and store closed, so it is
        # the proof of a clean stop there; only that one unknown status is forgiven.
        forgiven = isinstance(self.proc, Forked) and code == 255 and reply.get("reply") == "stop"
        if code != 0 and not forgiven:
            raise FlowError(f"kiosk child exited with {code} on stop; see {self.stderr_path}")

    def kill(self) -> None:
        """SIGKILL the child (a hung one, or cleanup); safe when it is already gone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(EXIT_TIMEOUT_S)

    def close(self) -> None:
        """Make sure the process is gone and its pipes are closed."""
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        if isinstance(self.proc, Forked):
            self.proc.socket.close()
