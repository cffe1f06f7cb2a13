"""``digibank-kiosk demo`` with its embedded loan server, run as a person runs it: a
subprocess. The server part plays the story with the sync link and prints what the server
says; the server (a child of the demo) is gone afterwards on every way out: the end, a
failed story, SIGTERM, even SIGKILL of the demo. Bad input is one line on stderr and exit 2.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.demo_server import LoanServerProcess, ServerError
from kiosk.demo_with_server import SERVER_STORY
from kiosk.scenario_format import PEPPER

DEMO = [sys.executable, "-m", "kiosk", "demo", "--tour"]
TIMEOUT_S = 120.0  # the server part takes ~30 s on a loaded 2-core machine
SERVER_LINE = re.compile(r"loan server at (http://127\.0\.0\.1:(\d+)).*, data in (\S+)\n")


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DEMO, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def server_port(output: str) -> int:
    match = SERVER_LINE.search(output)
    assert match, f"the demo did not say where its server is:\n{output[-2000:]}"
    return int(match.group(2))


def assert_gone(port: int) -> None:
    """Nothing answers on the server's port any more (bounded wait for the child to end)."""
    deadline = time.monotonic() + 5.0
    while True:
        with socket.socket() as sock:
            sock.settimeout(1.0)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        assert time.monotonic() < deadline, f"the loan server still answers on port {port}"
        time.sleep(0.1)


def test_the_server_part_plays_the_day_and_shows_what_the_server_says() -> None:
    began = time.monotonic()
    result = run_demo("--parts", "server")
    took = time.monotonic() - began
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr
    assert "$ loanserver admin add-kiosk digibank-demo" in out
    assert "$ loanserver admin add-staff --national-number *** --pin 1234 --name Els" in out
    assert "every expectation holds" in out
    assert "after step 17: the pickup of LAP-0042 reached the server" in out
    assert re.search(r"\n\s+2\s+TAB-0007\s+2\s+", out), "the server never listed the 2nd loan"
    assert "      no open loans" in out
    for figure in ("people_reached: 2", "loans_started: 2", "returns: 2"):
        assert f"      {figure}\n" in out
    assert "loan server stopped" in out
    # No national number and no kiosk token on the screen.
    assert "85073003328" not in out and "71010112345" not in out
    assert not re.search(r"[A-Za-z0-9_-]{40,}", out), "something like a token was printed"
    assert_gone(server_port(out))
    # ~23 s on an idle 2-core machine; the bound leaves room for a loaded CI runner.
    assert took < 90, f"the server part took {took:.0f} s"


def test_a_failing_story_exits_1_and_stops_the_server(tmp_path: Path) -> None:
    story = tmp_path / "broken.toml"
    text = SERVER_STORY.read_text()
    # Step 2: Els's card shows her PIN screen; expecting the staff map instead fails there.
    story.write_text(text.replace('expect_screen = "staff_pin"', 'expect_screen = "staff_map"'))
    result = run_demo("--parts", "server", "--server-story", str(story))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
    assert "FAILED: step 2" in result.stdout
    assert "loan server stopped" in result.stdout
    assert_gone(server_port(result.stdout))


def start_demo_until_its_server_answers() -> tuple[subprocess.Popen[str], str]:
    """The demo's server part started; it and the output up to the server's address."""
    demo = subprocess.Popen(
        [*DEMO, "--parts", "server"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stdout is not None
    seen = ""
    deadline = time.monotonic() + TIMEOUT_S
    while not SERVER_LINE.search(seen):
        if time.monotonic() > deadline or not (line := demo.stdout.readline()):
            demo.kill()
            demo.wait(10)
            raise AssertionError(f"the demo never started its server: {seen[-2000:]}")
        seen += line
    return demo, seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_signal_stops_the_demo_and_its_server(sig: signal.Signals) -> None:
    demo, seen = start_demo_until_its_server_answers()
    try:
        demo.send_signal(sig)
        rest, _err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    # SIGTERM: through every `finally` (exit 143); SIGKILL: the kernel's parent-death signal.
    assert demo.returncode == (128 + sig if sig == signal.SIGTERM else -sig)
    assert "every expectation holds" not in rest
    assert_gone(server_port(seen))
    workdir = Path(SERVER_LINE.search(seen).group(3))  # type: ignore[union-attr]
    if sig == signal.SIGKILL:  # nobody was left to remove the server's directory
        shutil.rmtree(workdir)
    assert not workdir.exists()


def test_an_unknown_part_is_one_line_and_exit_2() -> None:
    result = run_demo("--parts", "tour,sever")
    assert result.returncode == 2
    assert "unknown part 'sever'" in result.stderr
    assert result.stdout == ""


def test_a_bad_server_story_is_refused_before_any_server_starts(tmp_path: Path) -> None:
    story = tmp_path / "bad.toml"
    story.write_text('[[step]]\ntap = "load"\nexpect_screan = "idle"\n')
    result = run_demo("--parts", "server", "--server-story", str(story))
    assert result.returncode == 2
    assert "expect_screan" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "loan server at" not in result.stdout


def test_a_server_that_will_not_start_is_one_clear_error_and_leaves_nothing() -> None:
    server = LoanServerProcess(PEPPER)
    workdir = server.dir
    server.database = "sqlite:////nonexistent-directory/loanserver.db"
    with pytest.raises(ServerError, match=r"the loan server did not start: .*database"):
        server.start()
    server.stop()
    assert not server.running
    assert not workdir.exists()
