"""Tell the crash runner which crash points this session selected (it runs them ahead)."""

from __future__ import annotations

import pytest

from tests.crash.runner import RUNNER


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only what will run
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Register the selected ``test_crash_point`` cases, in the order they will run."""
    cases = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if item.name.startswith("test_crash_point[") and callspec is not None:
            params = callspec.params
            cases.append((params["flow"], params["point"], params["then"]))
    RUNNER.register(cases)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Wait for the runs still going; keep their files when something failed."""
    kept = RUNNER.close(keep=exitstatus != 0)
    if kept is not None:
        session.config.get_terminal_writer().line(f"crash runs kept in {kept}")
