"""bootstrap.build_card_reader: the pepper and trust directory are read at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware.eid.cardmaker import TestPki
from hardware.eid.simulated import SimulatedReader
from hardware.errors import ConfigurationError
from kiosk.bootstrap import build_card_reader
from kiosk.settings import EidSettings


def test_missing_pepper_file_is_a_clear_startup_error(tmp_path: Path) -> None:
    eid = EidSettings(driver="pcsc", pepper_file=str(tmp_path / "pepper"), accept_unverified=True)
    with pytest.raises(ConfigurationError, match="pepper"):
        build_card_reader(eid)


def test_pcsc_without_pepper_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="pepper_file"):
        build_card_reader(EidSettings(driver="pcsc", accept_unverified=True))


def test_simulated_reader_with_pepper_and_trust(tmp_path: Path) -> None:
    pepper = tmp_path / "pepper"
    pepper.write_text("  site-secret\n")
    trust = tmp_path / "trust"
    trust.mkdir()
    TestPki.create("ec").write_trust_dir(trust)
    setup = build_card_reader(
        EidSettings(driver="simulated", pepper_file=str(pepper), trust_dir=str(trust))
    )
    assert isinstance(setup.reader, SimulatedReader)
    assert setup.pepper == b"site-secret"
