"""The end-to-end world: a real loan server (uvicorn on 127.0.0.1, SQLite file or a
throwaway PostgreSQL database) and the back office as the operator drives it.

``loan_server`` (parametrized ``sqlite`` / ``postgresql``) is a started ``LiveServer`` whose
pepper is the scenario pepper, so an eID card made by the scenario runner and a
``loanserver admin add-borrower --national-number`` give the same borrower key.
``admin`` runs ``loanserver admin ...`` (``world.Admin``). PostgreSQL
variants skip where PostgreSQL is not installed, and fail under CI (``CI`` set).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import Engine

from kiosk.scenario_format import PEPPER
from loanserver import db
from tests.e2e.world import Admin
from tests.support.live_server import LiveServer
from tests.support.pgcluster import PgCluster, PgUnavailable, in_ci

DATABASES = ["sqlite", "postgresql"]


def _unavailable(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"PostgreSQL is required under CI (CI is set): {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def e2e_pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL cluster for the end-to-end tests of this session."""
    try:
        cluster = PgCluster().start()
    except PgUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=DATABASES)
def server_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of the loan server's empty database: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'loanserver.db'}"
        return
    cluster: PgCluster = request.getfixturevalue("e2e_pg_cluster")
    url = cluster.fresh_database()
    yield url
    with contextlib.suppress(Exception):
        cluster.drop_database(url)


@pytest.fixture
def server_engine(server_database: str) -> Iterator[Engine]:
    """The server's migrated engine."""
    engine = db.make_engine(server_database)
    db.migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def loan_server(server_engine: Engine) -> Iterator[LiveServer]:
    """The real loan server on 127.0.0.1 with the scenario pepper."""
    with LiveServer(server_engine, pepper=PEPPER) as server:
        yield server


@pytest.fixture
def admin(server_database: str, tmp_path: Path) -> Admin:
    """The back office of ``loan_server``'s database."""
    pepper = tmp_path / "pepper"
    pepper.write_bytes(PEPPER)
    return Admin(server_database, pepper)
