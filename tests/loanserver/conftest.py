"""Shared fixtures of the loan server tests: a migrated database engine.

``engine`` is the database every server test runs on; the PostgreSQL variant (a throwaway
cluster) is added here so that every test using ``engine`` runs on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from loanserver import db


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A URL of an empty database for one test."""
    return f"sqlite:///{tmp_path / 'loanserver.db'}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on ``database_url``."""
    engine = db.make_engine(database_url)
    db.migrate(engine)
    yield engine
    engine.dispose()
