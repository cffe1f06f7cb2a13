"""House rules: the core stays free of HTTP and SQL; importing the link starts nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys, threading
import kiosk.core.engine, kiosk.core.remote, kiosk.core.flows
core_clean = not {"requests", "sqlalchemy", "urllib3"} & set(sys.modules)
import kiosk.sync.service, kiosk.sync_cli, kiosk.bootstrap
print(core_clean, threading.active_count())
"""


def test_the_core_imports_no_http_or_sql_and_the_link_starts_no_thread() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "1"]
