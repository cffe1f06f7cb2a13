"""``python -m loanserver ... --database postgresql+psycopg://...`` as an operator runs it.

The SQLite story is ``test_admin_cli.py``; this runs the production set-up once: a real
PostgreSQL server (the session's throwaway cluster), the CLI as a subprocess, the database
read back with psycopg. Skipped without PostgreSQL, failed under CI (``conftest.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from loanserver import db
from loanserver.models import Device, Loan
from tests.support.pgcluster import free_port

ROOT = Path(__file__).resolve().parents[2]
NUMBER = "85.07.30-033.61"
DIGITS = "85073003361"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess with a clean environment; never a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANSERVER_")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "loanserver", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _cells(url: str) -> set[str]:
    """Every value stored in every table of the PostgreSQL database, as text."""
    parsed = make_url(url)
    conninfo = f"host={parsed.host} port={parsed.port} user={parsed.username}"
    with psycopg.connect(f"{conninfo} dbname={parsed.database}", connect_timeout=10) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        return {
            str(value)
            for table in tables
            for row in conn.execute(f'SELECT * FROM "{table}"').fetchall()  # names from pg
            for value in row
        }


def test_admin_story_on_postgresql(pg_database_url: str, tmp_path: Path) -> None:
    url = pg_database_url
    pepper = tmp_path / "pepper"
    pepper.write_text("pg-cli-pepper\n")
    outputs: list[str] = []

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = _cli(*args, "--database", url, cwd=tmp_path)
        outputs.extend([result.stdout, result.stderr])
        return result

    migrated = cli("migrate")
    assert migrated.returncode == 0 and "up to date" in migrated.stdout
    assert "postgresql" in migrated.stdout

    kiosk = cli("admin", "add-kiosk", "Library 1")
    assert kiosk.returncode == 0, kiosk.stderr
    token = kiosk.stdout.strip().splitlines()[-1]
    assert len(token) >= 43

    assert cli("admin", "add-device", "LT-001", "--type", "laptop").returncode == 0
    dup = cli("admin", "add-device", "LT-001", "--type", "tablet")
    assert dup.returncode == 1 and "duplicate asset tag" in dup.stderr

    borrower = cli(
        "admin", "add-borrower", "--national-number", NUMBER, "--pepper-file", str(pepper)
    )
    assert borrower.returncode == 0, borrower.stderr
    borrower_id = borrower.stdout.strip().splitlines()[-1]

    reserve = ["admin", "reserve", "--borrower", borrower_id, "--device", "LT-001"]
    made = cli(*reserve, "--kiosk", "Library 1")
    assert made.returncode == 0, made.stderr
    code = made.stdout.strip().splitlines()[-1]
    assert len(code) == 6 and code.isdigit()
    refused = cli(*reserve, "--kiosk", "Library 1")
    assert refused.returncode == 1 and "not available" in refused.stderr

    assert "no open loans" in cli("admin", "loans").stdout
    # An overdue loan (as a kiosk pickup would leave it) is listed by the CLI from PostgreSQL,
    # with its due time back in UTC.
    due = datetime(2026, 1, 2, 23, 59, tzinfo=UTC)
    engine = db.make_engine(url)
    try:
        with db.session_factory(engine)() as session:
            device = session.query(Device).filter_by(asset_tag="LT-001").one()
            session.add(
                Loan(
                    device_id=device.id,
                    borrower_id=int(borrower_id),
                    started_at=due - timedelta(days=14),
                    due_at=due,
                )
            )
            session.commit()
    finally:
        engine.dispose()
    overdue = cli("admin", "loans", "--overdue", "--json")
    assert overdue.returncode == 0, overdue.stderr
    [row] = json.loads(overdue.stdout)
    assert row["asset_tag"] == "LT-001" and row["overdue"] is True
    assert datetime.fromisoformat(row["due_at"]) == due

    # Neither the national number nor a secret is stored or printed.
    cells = _cells(url)
    assert {token, code}.isdisjoint(cells)
    for form in (DIGITS, NUMBER):
        assert not any(form in cell for cell in cells)
        assert not any(form in text for text in outputs)


def test_unreachable_postgresql_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    result = _cli(
        "admin",
        "add-kiosk",
        "K",
        "--database",
        f"postgresql://operator:s3cret-pw@127.0.0.1:{port}/loans",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot use the database")
    assert "Connection refused" in lines[0] and str(port) in lines[0]
    assert "s3cret-pw" not in result.stderr + result.stdout
