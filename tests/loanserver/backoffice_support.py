"""Helpers of the back-office API tests: the app behind a TestClient with an admin token,
and views of everything stored (to show a secret or a number is not there).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loanserver import keys
from loanserver.api.app import create_app
from loanserver.models import Base

ADMIN = "/api/v1/admin"
TOKEN = "back-office-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NUMBER = "85.07.30-033.61"
DIGITS = "85073003361"
PEPPER = b"api-test-pepper"


def admin_client(
    engine: Engine, *, pepper: bytes | None = PEPPER, token: str | None = TOKEN
) -> TestClient:
    """A client of the app on ``engine``; ``token`` None: no admin-token file (back office off)."""
    app = create_app(
        engine, pepper=pepper, admin_token_sha256=keys.token_hash(token) if token else None
    )
    return TestClient(app, raise_server_exceptions=True)


@pytest.fixture
def api(engine: Engine) -> Iterator[TestClient]:
    """The app with a pepper and the admin token ``TOKEN`` (send ``AUTH``)."""
    with admin_client(engine) as test_client:
        yield test_client


def count(engine: Engine, model: type[Base]) -> int:
    """How many rows ``model``'s table holds."""
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def every_value(engine: Engine) -> str:
    """Every stored value of every table, as text (both databases)."""
    with engine.connect() as conn:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in conn.execute(table.select())
        )


def cells(engine: Engine) -> set[str]:
    """Every stored value, each as text."""
    with engine.connect() as conn:
        return {
            str(value)
            for table in Base.metadata.sorted_tables
            for row in conn.execute(table.select())
            for value in row
        }
