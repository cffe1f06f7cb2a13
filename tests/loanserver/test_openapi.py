"""The committed ``docs/openapi.json`` is the schema the server serves (docs/api.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from loanserver import db, openapi
from loanserver.api.app import create_app

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
REGENERATE = "regenerate with .venv/bin/python -m loanserver.openapi > docs/openapi.json"


def test_the_committed_schema_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == openapi.render(), REGENERATE


def test_the_served_schema_is_the_committed_one() -> None:
    engine = db.make_engine("sqlite://")  # the schema does not depend on the database
    try:
        with TestClient(create_app(engine)) as client:
            served = client.get("/openapi.json").json()
    finally:
        engine.dispose()
    assert served == json.loads(COMMITTED.read_text(encoding="utf-8")), REGENERATE
    kiosk = {path for path in served["paths"] if path.startswith("/api/v1/kiosk/")}
    assert kiosk == {
        f"/api/v1/kiosk/{name}"
        for name in ("reservations", "loans", "staff", "transactions", "heartbeat")
    }
    assert "/health" in served["paths"]


def test_the_module_prints_the_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loanserver.openapi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["info"]["title"] == "digibank loan server"
