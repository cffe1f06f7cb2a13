"""``loanserver.db`` per database: PostgreSQL's driver, dropped connections, bounded waits;
SQLite's write-ahead log.

The PostgreSQL tests need the server itself (the session's throwaway cluster); they are
skipped without it, failed under CI (``conftest.py``).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from loanserver import db, services


def test_a_bare_postgresql_url_uses_psycopg_3(pg_database_url: str) -> None:
    bare = pg_database_url.replace("postgresql+psycopg://", "postgresql://")
    engine = db.make_engine(bare)  # SQLAlchemy's default would be psycopg2: not installed
    try:
        db.migrate(engine)
        assert engine.url.drivername == "postgresql+psycopg"
        with engine.connect() as conn:
            assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"
    finally:
        engine.dispose()


def test_connections_dropped_by_the_server_are_replaced(pg_database_url: str) -> None:
    """A PostgreSQL restart or an idle-connection kill costs no failed request."""
    engine = db.make_engine(pg_database_url)
    try:
        db.migrate(engine)
        sessions = db.session_factory(engine)
        with sessions() as session:
            services.add_kiosk(session, "before")
        # Every pooled connection of this database is killed, as a server restart would.
        name = make_url(pg_database_url).database
        killer = db.make_engine(pg_database_url.rsplit("/", 1)[0] + "/postgres")
        try:
            with killer.connect() as conn:
                killed = conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                ).scalar()
        finally:
            killer.dispose()
        assert killed and killed >= 1
        with sessions() as session:
            assert services.add_kiosk(session, "after").name == "after"
    finally:
        engine.dispose()


def test_a_row_lock_wait_is_bounded(pg_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer stuck behind another's lock gets an error, not an endless wait."""
    monkeypatch.setattr(db, "PG_LOCK_TIMEOUT_MS", 300)
    engine = db.make_engine(pg_database_url)
    try:
        db.migrate(engine)
        with db.session_factory(engine)() as session:
            services.add_device(session, "LT-1", type="laptop")
        with engine.connect() as holder, holder.begin():
            holder.execute(text("SELECT id FROM devices WHERE asset_tag = 'LT-1' FOR UPDATE"))
            started = time.monotonic()
            with pytest.raises(OperationalError, match="lock timeout"), engine.begin() as other:
                other.execute(text("UPDATE devices SET size = 'L' WHERE asset_tag = 'LT-1'"))
            assert time.monotonic() - started < 5.0
    finally:
        engine.dispose()


def test_a_missing_database_is_one_clear_line(pg_database_url: str) -> None:
    engine = db.make_engine(pg_database_url.rsplit("/", 1)[0] + "/no_such_db")
    try:
        with pytest.raises(db.DatabaseError) as caught:
            db.migrate(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("cannot use the database") and "no_such_db" in message


def test_sqlite_readers_never_block_a_write(tmp_path: Path) -> None:
    """A long read (a report, a kiosk's pull) does not hold back the next stored batch."""
    path = tmp_path / "server.db"
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        db.migrate(engine)
        reader = sqlite3.connect(path)
        try:
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM kiosks").fetchone() == (0,)
            started = time.monotonic()
            with db.session_factory(engine)() as session:
                services.add_kiosk(session, "written while read")
            assert time.monotonic() - started < 2.0  # not the 10 s busy timeout
            # The reader's snapshot stays as it was; a new read sees the write.
            assert reader.execute("SELECT count(*) FROM kiosks").fetchone() == (0,)
            reader.rollback()
            assert reader.execute("SELECT count(*) FROM kiosks").fetchone() == (1,)
        finally:
            reader.close()
    finally:
        engine.dispose()
