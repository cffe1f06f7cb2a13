"""Fixtures for the eID integration tests: a private pcscd with vsmartcard's vpcd reader.

``pcscd`` (session): Debian's pcscd in the foreground under its own PID, isolated from
any system pcscd (see ``tests/eid_support.py``), with the virtual reader up; stopped at
the end. ``virtual_slot`` (per test): that reader plus a ``CardEmulator``; the card is
taken out after the test. Both skip with the reason when pcscd, vpcd or pyscard are
missing here (CI installs them through the Makefile).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import eid_support

# libpcsclite reads PCSCLITE_CSOCK_NAME once, at the first PC/SC call of the process:
# point it at the private daemon's socket before any test can make that call.
eid_support.claim_socket_path()


@pytest.fixture(scope="session")
def pcscd() -> Iterator[eid_support.Pcscd]:
    """A running private pcscd whose reader ``.reader`` is vpcd's slot on port ``.port``."""
    try:
        daemon = eid_support.start_pcscd()
    except eid_support.PcscdUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def virtual_slot(pcscd: eid_support.Pcscd) -> Iterator[eid_support.VirtualSlot]:
    """The virtual reader with an emulator: ``insert(card)``, ``remove()``; empty after."""
    if not pcscd.alive():
        pytest.fail(f"pcscd died during the session:\n{pcscd.log_tail()}")
    slot = eid_support.VirtualSlot(pcscd)
    try:
        yield slot
    finally:
        slot.close()
