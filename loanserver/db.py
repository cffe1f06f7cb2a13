"""The loan server's database: an engine from a URL, Alembic migrations applied in code.

The URL comes from ``--database`` or ``LOANSERVER_DATABASE_URL``; the default is a SQLite
file ``loanserver.db`` in the working directory (the demo needs no configuration). Only
portable SQLAlchemy is used, so a ``postgresql+psycopg://`` URL works the same (a bare
``postgresql://`` means psycopg 3 too: it is the driver installed). On PostgreSQL every
wait is bounded: connecting, waiting for a pooled connection, waiting for a row lock.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_URL = "sqlite:///loanserver.db"
ENV_URL = "LOANSERVER_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_S = 10.0  # every wait has a timeout: another writer's lock included
PG_CONNECT_TIMEOUT_S = 10  # libpq connect_timeout: an unreachable host fails in bounded time
PG_LOCK_TIMEOUT_MS = 10_000  # the PostgreSQL twin of SQLite's busy timeout
PG_POOL_SIZE = 10  # uvicorn serves from one process; 10 + 10 overflow covers a burst of kiosks
PG_POOL_OVERFLOW = 10
PG_POOL_TIMEOUT_S = 10.0  # wait for a free pooled connection at most this long
PG_POOL_RECYCLE_S = 1800  # reconnect before a firewall or the server drops an idle one


class DatabaseError(Exception):
    """The database URL is unusable or the database cannot be opened."""


def database_url(explicit: str | None = None) -> str:
    """The URL to use: ``explicit``, else the environment, else the default file."""
    return explicit or os.environ.get(ENV_URL) or DEFAULT_URL


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"not a database URL: {url!r}") from exc
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {}
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    elif parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            # SQLAlchemy's default driver is psycopg2, which is not installed: use psycopg 3.
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.update(
            # A connection dropped by a server restart is replaced, not handed to a request.
            pool_pre_ping=True,
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_POOL_OVERFLOW,
            pool_timeout=PG_POOL_TIMEOUT_S,
            pool_recycle=PG_POOL_RECYCLE_S,
            connect_args={
                "connect_timeout": PG_CONNECT_TIMEOUT_S,
                "options": f"-c lock_timeout={PG_LOCK_TIMEOUT_MS} -c timezone=UTC",
            },
        )
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
                # WAL: readers (the kiosks' pulls) never wait for a writer, and a commit is
                # one fsync of the log instead of several: heartbeats 51 -> 133 per second
                # (bench/bench_server.py). FULL keeps every acknowledged batch on disk.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
            finally:
                cursor.close()

    return engine


def describe(engine: Engine) -> str:
    """The engine's URL for messages: password hidden (SQLAlchemy masks it as ``***``)."""
    return engine.url.render_as_string(hide_password=True)


def connect(engine: Engine) -> Connection:
    """A connection; DatabaseError in one line when the database cannot be reached or opened.

    The driver's first line only ("connection refused", "unable to open database file"),
    never SQLAlchemy's full message, which may quote statements and their parameters.
    """
    try:
        return engine.connect()
    except OperationalError as exc:
        lines = str(exc.orig).strip().splitlines() if exc.orig is not None else []
        reason = lines[0] if lines else type(exc).__name__
        raise DatabaseError(f"cannot use the database {describe(engine)}: {reason}") from None


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
    with connect(engine) as conn, conn.begin():
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
