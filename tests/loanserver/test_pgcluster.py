"""The throwaway PostgreSQL cluster of the tests leaves nothing behind, even when killed.

A CI run or a developer's ``timeout pytest`` that is killed must not leave a server
running and a data directory in /tmp. Needs PostgreSQL (skipped without it, failed under
CI: the ``pg_cluster`` fixture decides).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.pgcluster import PgCluster

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from tests.support.pgcluster import PgCluster
cluster = PgCluster().start()
print(cluster.dir, cluster.port, flush=True)
time.sleep(60)
"""


def _accepts(port: int) -> bool:
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _gone(directory: Path, port: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not directory.exists() and not _accepts(port):
            return True
        time.sleep(0.2)
    return False


def test_a_stopped_cluster_leaves_nothing(pg_cluster: PgCluster) -> None:
    cluster = PgCluster().start()
    assert cluster.dir is not None
    directory, port = cluster.dir, cluster.port
    url = cluster.fresh_database()
    assert url.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{port}/")
    # Its unix socket is in its own directory, not in /run/postgresql.
    assert any(p.name.startswith(".s.PGSQL.") for p in directory.iterdir())
    cluster.stop()
    assert _gone(directory, port, within_s=5.0)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_test_process_leaves_nothing(pg_cluster: PgCluster, sig: signal.Signals) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        name, port = holder.stdout.readline().split()
        assert _accepts(int(port))
    finally:
        holder.send_signal(sig)  # SIGTERM, as `timeout` sends: atexit does not run
        holder.wait(timeout=10)
    assert _gone(Path(name), int(port), within_s=10.0)
