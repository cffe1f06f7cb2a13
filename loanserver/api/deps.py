"""Shared FastAPI dependencies: a database session per request, the app's settings.

The app keeps its engine, session factory, pepper and admin-token hash on ``app.state``
(set by ``create_app``); nothing is built at import time (DESIGN rule 6).
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session


def db_session(request: Request) -> Iterator[Session]:
    """One session per request; the handler commits, anything left is rolled back."""
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()
