"""Runs the selected crash points a few at a time, ahead of the tests that judge them.

A crash run spends most of its time waiting (a child importing, a door being watched),
so a few in parallel finish the whole set in about half the time. ``conftest.py``
registers the crash points pytest selected; the first ``result()`` starts them all on a
small thread pool, in test order, and every test waits (bounded) for its own. A point
that was not registered (a single test run by hand) runs at once in the test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tests.crash.harness import CrashRun, run_crash

WORKERS = int(os.environ.get("CRASH_WORKERS", "3"))
# Children forked from a fork server that imported the kiosk once; CRASH_FORKED=0 starts
# each one as the command line does (slower, same program).
FORKED = os.environ.get("CRASH_FORKED", "1") != "0"
RESULT_TIMEOUT_S = 110.0  # below pytest-timeout's 120 s: a hung run fails its own test


class Runner:
    """The crash runs of one pytest session."""

    def __init__(self) -> None:
        self._wanted: list[tuple[str, str]] = []
        self._futures: dict[tuple[str, str], Future[CrashRun]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._base: Path | None = None

    def register(self, cases: list[tuple[str, str]]) -> None:
        """The crash points this session will judge, in order."""
        self._wanted = list(cases)

    def result(self, flow: str, point: str, tmp_path: Path) -> CrashRun:
        """The run of ``point``: prefetched when registered, else run now in ``tmp_path``."""
        if (flow, point) not in self._wanted:
            return run_crash(flow, point, tmp_path, forked=FORKED)
        if self._pool is None:
            self._start()
        return self._futures[(flow, point)].result(timeout=RESULT_TIMEOUT_S)

    def _start(self) -> None:
        self._base = Path(tempfile.mkdtemp(prefix="crash-runs-"))
        self._pool = ThreadPoolExecutor(max_workers=max(1, WORKERS), thread_name_prefix="crash")
        for i, (flow, point) in enumerate(self._wanted):
            workdir = self._base / f"{i:03d}-{flow}"
            self._futures[(flow, point)] = self._pool.submit(
                run_crash, flow, point, workdir, forked=FORKED
            )

    def close(self, *, keep: bool) -> Path | None:
        """Stop the pool (runs not started are cancelled); remove the files unless ``keep``."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        base, self._base = self._base, None
        if base is not None and not keep:
            shutil.rmtree(base, ignore_errors=True)
            return None
        return base


RUNNER = Runner()
