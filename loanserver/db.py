"""The loan server's database: an engine from a URL, Alembic migrations applied in code.

The URL comes from ``--database`` or ``LOANSERVER_DATABASE_URL``; the default is a SQLite
file ``loanserver.db`` in the working directory (the demo needs no configuration). Only
portable SQLAlchemy is used, so a ``postgresql+psycopg://`` URL works the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_URL = "sqlite:///loanserver.db"
ENV_URL = "LOANSERVER_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_S = 10.0  # every wait has a timeout: another writer's lock included


class DatabaseError(Exception):
    """The database URL is unusable or the database cannot be opened."""


def database_url(explicit: str | None = None) -> str:
    """The URL to use: ``explicit``, else the environment, else the default file."""
    return explicit or os.environ.get(ENV_URL) or DEFAULT_URL


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys on and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"not a database URL: {url!r}") from exc
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {}
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    try:
        engine = create_engine(parsed, **kwargs)
    except Exception as exc:  # a missing driver (psycopg) or a bad option
        raise DatabaseError(f"cannot use database {parsed!r}: {exc}") from exc
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # SQLite ignores foreign keys unless asked, per connection.
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA foreign_keys=ON")
            finally:
                cursor.close()

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (the CLI prints them)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """An Alembic ``Config`` for the server's migrations, built in code (no alembic.ini)."""
    config = Config()
    # ConfigParser interpolates "%": a path holding one must be escaped.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to head in one transaction (a fresh database gets every table)."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
