"""``loanserver serve``: a real process on a free port (health, 401, access log, SIGTERM or
SIGINT: exit 0), and configuration errors as one line on stderr with exit 2.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from loanserver import admin, db, services

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
SERVING = re.compile(r"serving on (http://127\.0\.0\.1:\d+)$")


class _Lines:
    """The process's stderr, line by line, read by a thread (every wait bounded)."""

    def __init__(self, stream: object) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if match := pattern.search(line):
                return match
        raise AssertionError(f"no line matching {pattern.pattern!r}; got {self.seen}")

    def drain(self, timeout: float = 10.0) -> list[str]:
        """Every line up to the end of the stream (the process has exited)."""
        self.reader.join(timeout)
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return self.seen


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANSERVER_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_serve_answers_logs_and_stops_cleanly_on_a_signal(
    database_url: str, tmp_path: Path
) -> None:
    engine = db.make_engine(database_url)
    db.migrate(engine)
    with db.session_factory(engine)() as session:
        token = services.add_kiosk(session, "kiosk-1").token
    engine.dispose()
    process = subprocess.Popen(
        [sys.executable, "-m", "loanserver", "serve", "--database", database_url, "--port", "0"],
        cwd=tmp_path,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _Lines(process.stderr)
        url = lines.wait_for(SERVING, START_TIMEOUT_S).group(1)
        health = requests.get(url + "/health", timeout=10)
        assert health.status_code == 200 and health.json()["database"] == "ok"
        denied = requests.get(url + "/api/v1/kiosk/staff", timeout=10)
        assert denied.status_code == 401 and denied.json() == {"detail": "unknown kiosk token"}
        allowed = requests.get(
            url + "/api/v1/kiosk/staff?since=x",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert allowed.status_code == 200 and allowed.json() == {"items": []}
        # SIGTERM (a supervisor) on one database, SIGINT (Ctrl-C) on the other: both exit 0.
        stop = signal.SIGTERM if database_url.startswith("sqlite") else signal.SIGINT
        process.send_signal(stop)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    output = lines.drain()
    access = [json.loads(line) for line in output if line.startswith("{")]
    assert [(a["path"], a["status"], a["kiosk"]) for a in access] == [
        ("/health", 200, None),
        ("/api/v1/kiosk/staff", 401, None),
        ("/api/v1/kiosk/staff", 200, 1),
    ]
    assert token not in "\n".join(output) and "since=x" not in "\n".join(output)
    assert output[-1] == "stopped"


def _serve(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = admin.run(["serve", *args])
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


def test_a_taken_port_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LOANSERVER_PEPPER_FILE", "LOANSERVER_ADMIN_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, err = _serve(
            capsys, "--database", f"sqlite:///{tmp_path / 'x.db'}", "--port", str(port)
        )
    assert code == 2
    assert err == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_configuration_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LOANSERVER_PEPPER_FILE", "LOANSERVER_ADMIN_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    good_db = f"sqlite:///{tmp_path / 'ok.db'}"
    not_hex = tmp_path / "admin.txt"
    not_hex.write_text("the token itself, not its hash\n")
    cases = [
        (["--database", "nope"], "not a database URL"),
        (["--database", f"sqlite:///{tmp_path / 'no' / 'dir.db'}"], "cannot use the database"),
        (["--database", good_db, "--pepper-file", str(tmp_path / "absent")], "does not exist"),
        (["--database", good_db, "--admin-token-file", str(not_hex)], "SHA-256 hex digest"),
        (["--database", good_db, "--admin-token-file", str(tmp_path)], "cannot read"),
        (["--database", good_db, "--port", "70000"], "not between 0 and 65535"),
    ]
    for args, expected in cases:
        if "--port" not in args:
            args = [*args, "--port", "0"]  # never serves: each case fails before listening
        code, err = _serve(capsys, *args)
        assert code == 2, args
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], (args, err)
