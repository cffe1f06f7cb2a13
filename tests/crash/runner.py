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


Case = tuple[str, str, str]  # flow, crash point, crash point of the restart ("": none)


def _run(case: Case, workdir: Path) -> CrashRun:
    flow, point, then = case
    return run_crash(flow, point, workdir, then=then, forked=FORKED)


class Runner:
    """The crash runs of one pytest session."""

    def __init__(self) -> None:
        self._wanted: list[Case] = []
        self._futures: dict[Case, Future[CrashRun]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._base: Path | None = None

    def register(self, cases: list[Case]) -> None:
        """The crash points this session will judge, in order."""
        self._wanted = list(cases)

    def result(self, case: Case, tmp_path: Path) -> CrashRun:
        """The run of ``case``: prefetched when registered, else run now in ``tmp_path``."""
        if case not in self._wanted:
            return _run(case, tmp_path)
        if self._pool is None:
            self._start()
        return self._futures[case].result(timeout=RESULT_TIMEOUT_S)

    def _start(self) -> None:
        self._base = Path(tempfile.mkdtemp(prefix="crash-runs-"))
        self._pool = ThreadPoolExecutor(max_workers=max(1, WORKERS), thread_name_prefix="crash")
        for i, case in enumerate(self._wanted):
            workdir = self._base / f"{i:03d}-{case[0]}"
            self._futures[case] = self._pool.submit(_run, case, workdir)

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
