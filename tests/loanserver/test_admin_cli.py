"""``python -m loanserver ...`` as an operator runs it: exit codes, last lines, no number leaks."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUMBER = "85.07.30-033.61"
DIGITS = "85073003361"


class Cli:
    """Runs the loanserver CLI against one SQLite file."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "server.db"
        self.pepper = tmp_path / "pepper"
        self.pepper.write_text("  cli-test-pepper\n")
        self.cwd = tmp_path
        self.outputs: list[str] = []

    def __call__(self, *args: str, env: dict[str, str] | None = None, database: bool = True):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOANSERVER_")}
        full_env["PYTHONPATH"] = str(ROOT)
        full_env.update(env or {})
        argv = [sys.executable, "-m", "loanserver", *args]
        if database:
            argv += ["--database", f"sqlite:///{self.db}"]
        result = subprocess.run(
            argv, cwd=self.cwd, env=full_env, capture_output=True, text=True, timeout=60
        )
        self.outputs += [result.stdout, result.stderr]
        assert "Traceback" not in result.stderr, result.stderr
        return result


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _last(text: str) -> str:
    return text.strip().splitlines()[-1]


def _dump(path: Path) -> str:
    """Every row of every table of the database file, as text."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            f"{t}: {row!r}" for t in tables for row in conn.execute(f'SELECT * FROM "{t}"')
        )
    finally:
        conn.close()


def _cells(path: Path) -> set[str]:
    """Every value stored in the database file, as text."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            str(value)
            for t in tables
            for row in conn.execute(f'SELECT * FROM "{t}"')
            for value in row
        }
    finally:
        conn.close()


def test_the_whole_story(cli: Cli) -> None:
    assert cli("migrate").returncode == 0

    kiosk = cli("admin", "add-kiosk", "Library 1")
    assert kiosk.returncode == 0
    token = _last(kiosk.stdout)
    assert len(token) >= 43 and token not in _dump(cli.db)

    assert cli("admin", "add-device", "LT-001", "--type", "laptop", "--charging").returncode == 0
    dup = cli("admin", "add-device", "LT-001", "--type", "tablet")
    assert dup.returncode == 1 and "duplicate asset tag" in dup.stderr

    borrower = cli(
        "admin",
        "add-borrower",
        "--national-number",
        NUMBER,
        "--pepper-file",
        str(cli.pepper),
        "--first-name",
        "Ann",
        "--language",
        "fr",
    )
    assert borrower.returncode == 0, borrower.stderr
    borrower_id = _last(borrower.stdout)
    assert borrower_id.isdigit()
    again = cli(
        "admin",
        "add-borrower",
        "--national-number",
        DIGITS,
        env={"LOANSERVER_PEPPER_FILE": str(cli.pepper)},
    )
    assert again.returncode == 1 and "already registered" in again.stderr

    reserve = ["admin", "reserve", "--borrower", borrower_id, "--device", "LT-001"]
    made = cli(*reserve, "--kiosk", "Library 1")
    assert made.returncode == 0, made.stderr
    code = _last(made.stdout)
    assert len(code) == 6 and code.isdigit()
    refused = cli(*reserve, "--kiosk", "Library 1")
    assert refused.returncode == 1 and "not available" in refused.stderr
    unknown = cli(*reserve, "--kiosk", "Nowhere")
    assert unknown.returncode == 1 and "unknown kiosk" in unknown.stderr

    reservation_id = made.stdout.split()[1]
    assert cli("admin", "cancel", reservation_id).returncode == 0
    twice = cli("admin", "cancel", reservation_id)
    assert twice.returncode == 1 and "already cancelled" in twice.stderr
    assert cli(*reserve, "--kiosk", "Library 1").returncode == 0  # available again

    loans = cli("admin", "loans")
    assert loans.returncode == 0 and "no open loans" in loans.stdout
    as_json = cli("admin", "loans", "--overdue", "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == []

    staff = cli(
        "admin",
        "add-staff",
        "--code",
        "STAFF1",
        "--pin",
        "4321",
        "--name",
        "Bob",
        "--role",
        "admin",
    )
    assert staff.returncode == 0 and _last(staff.stdout).isdigit()

    # The national register number is nowhere: not in any table, not in any output.
    dump = _dump(cli.db)
    assert "borrowers: (1," in dump
    for form in (DIGITS, NUMBER, "85073003361"[:9]):
        assert form not in dump
        assert not any(form in text for text in cli.outputs)
    # Short secrets could occur by chance inside a hash or a timestamp: no cell may BE one.
    cells = _cells(cli.db)
    assert {code, "STAFF1", "4321", token}.isdisjoint(cells)
    assert b"85073003361" not in cli.db.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["admin", "add-device", "X-1", "--type", "phone"], "invalid choice"),
        (["admin", "add-device", "X-1"], "--type"),
        (["admin", "add-borrower", "--national-number", NUMBER], "pepper"),
        (["admin", "add-borrower"], "one of the arguments"),
        (["admin", "add-borrower", "--code-only", "--language", "de"], "invalid choice"),
        (["admin", "reserve", "--borrower", "one", "--device", "X", "--kiosk", "K"], "invalid int"),
        (["admin", "add-staff", "--code", "ABCD", "--pin", "12", "--name", "X"], "PIN"),
        (["admin", "cancel"], "reservation_id"),
        (["admin", "frobnicate"], "invalid choice"),
        (["admin"], "required"),
        ([], "required"),
    ],
)
def test_bad_input_is_a_usage_error(cli: Cli, args: list[str], message: str) -> None:
    result = cli(*args, database=bool(args and args[0] == "admin" and len(args) > 1))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_number_is_not_echoed(cli: Cli) -> None:
    bad = "12.34.56-789.0X"
    result = cli(
        "admin", "add-borrower", "--national-number", bad, "--pepper-file", str(cli.pepper)
    )
    assert result.returncode == 2 and "11 digits" in result.stderr
    assert bad not in result.stderr + result.stdout


def test_missing_pepper_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    result = cli("admin", "add-borrower", "--national-number", NUMBER, "--pepper-file", missing)
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_database_from_environment_and_default(cli: Cli) -> None:
    other = cli.cwd / "env.db"
    result = cli("migrate", env={"LOANSERVER_DATABASE_URL": f"sqlite:///{other}"}, database=False)
    assert result.returncode == 0 and other.exists() and not cli.db.exists()
    result = cli("admin", "add-kiosk", "K", database=False)
    assert result.returncode == 0 and (cli.cwd / "loanserver.db").exists()


def test_bad_database_url_is_a_usage_error(cli: Cli) -> None:
    result = cli("migrate", "--database", "not a url", database=False)
    assert result.returncode == 2 and "not a database URL" in result.stderr


def test_unopenable_database_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no such dir' / 'x.db'}"
    result = cli("migrate", "--database", url, database=False)
    assert result.returncode == 2 and "cannot use the database" in result.stderr
