"""The end-to-end world: a real loan server (uvicorn on 127.0.0.1, SQLite file or a
throwaway PostgreSQL database) and the back office as the operator drives it.

The database fixtures are the loan server tests' own (``tests/loanserver/conftest.py``):
``database_url`` is parametrized ``sqlite`` / ``postgresql`` (PostgreSQL skips where it is
not installed and fails under CI), ``engine`` is migrated. ``loan_server`` is a started
``LiveServer`` whose pepper is the scenario pepper, so an eID card made by the scenario
runner and ``loanserver admin add-borrower --national-number`` give the same borrower key.
``admin`` runs ``loanserver admin ...`` (``world.Admin``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from kiosk.scenario_format import PEPPER
from tests.e2e.world import Admin
from tests.loanserver.conftest import (  # noqa: F401 - fixtures, found by name
    database_url,
    engine,
    pg_cluster,
    pg_database_url,
)
from tests.support.live_server import LiveServer


@pytest.fixture
def server_engine(engine: Engine) -> Engine:  # noqa: F811 - the imported fixture
    """The loan server's migrated engine (on each database)."""
    return engine


@pytest.fixture
def loan_server(server_engine: Engine) -> Iterator[LiveServer]:
    """The real loan server on 127.0.0.1 with the scenario pepper."""
    with LiveServer(server_engine, pepper=PEPPER) as server:
        yield server


@pytest.fixture
def admin(database_url: str, tmp_path: Path) -> Admin:  # noqa: F811 - the imported fixture
    """The back office of ``loan_server``'s database."""
    pepper = tmp_path / "pepper"
    pepper.write_bytes(PEPPER)
    return Admin(database_url, pepper)
