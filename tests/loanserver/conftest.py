"""Shared fixtures of the loan server tests: a migrated database engine, on BOTH databases.

``database_url`` is parametrized over ``sqlite`` (a file in the test's tmp dir) and
``postgresql`` (a new database per test in one throwaway cluster per session,
``tests.support.pgcluster``), so every test using ``engine`` or ``database_url`` runs twice:
``test_x[sqlite]`` and ``test_x[postgresql]``. Where PostgreSQL is not installed or will
not start, the PostgreSQL variants are skipped with the reason, except under CI (the ``CI``
environment variable set): there they fail, so CI cannot silently lose that half.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import Engine

from loanserver import db
from tests.support.pgcluster import PgCluster, PgUnavailable, in_ci

DATABASES = ["sqlite", "postgresql"]


def _unavailable(reason: str) -> NoReturn:
    """Skip a PostgreSQL variant, or fail it under CI."""
    if in_ci():
        pytest.fail(f"PostgreSQL is required under CI (CI is set): {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL cluster for the session; removed at the end."""
    try:
        cluster = PgCluster().start()
    except PgUnavailable as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:  # outside the except block: the report shows the reason, not a chain
        _unavailable(reason)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_database_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database for one test (dropped afterwards)."""
    url = pg_cluster.fresh_database()
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database for one test: SQLite file, then PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'loanserver.db'}"
    # Looked up lazily: a run of the SQLite variants alone never starts a cluster.
    return str(request.getfixturevalue("pg_database_url"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on ``database_url``."""
    engine = db.make_engine(database_url)
    db.migrate(engine)
    yield engine
    engine.dispose()
