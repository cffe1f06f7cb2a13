"""The Alembic migrations: they build exactly ``schema.py``, once, and ship with the package."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path, PurePosixPath

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from kiosk.core.clock import ManualClock
from kiosk.core.ports import StoreCorrupt, StoreError
from kiosk.store import open_store
from kiosk.store.db import MIGRATIONS, alembic_config, head_revision, known_revisions
from kiosk.store.schema import Base

ROOT = Path(__file__).resolve().parents[2]


def _schema(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name"
        ).fetchall()
    conn.close()
    return [(str(t), str(n), str(s)) for t, n, s in rows]


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        (rev,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    conn.close()
    return str(rev)


def test_one_linear_history_starting_at_0001() -> None:
    assert head_revision() == "0001"
    assert known_revisions() == {"0001"}


def test_migrated_schema_equals_the_models(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    open_store(db, ManualClock()).close()
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_journal_uses_autoincrement(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    open_store(db, ManualClock()).close()
    journal_sql = next(s for t, n, s in _schema(db) if t == "table" and n == "journal")
    assert "AUTOINCREMENT" in journal_sql


def test_fresh_file_gets_head_and_a_second_open_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    open_store(db, ManualClock()).close()
    assert _revision(db) == head_revision()
    schema = _schema(db)
    assert {n for t, n, _ in schema if t == "table"} == {
        "alembic_version",
        "alarms",
        "compartments",
        "journal",
        "loans",
        "meta",
        "reservations",
        "staff",
    }
    open_store(db, ManualClock()).close()
    assert _schema(db) == schema
    assert _revision(db) == head_revision()


def test_an_empty_file_is_a_new_database(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    db.touch()
    store = open_store(db, ManualClock())
    assert store.boot == 1
    store.close()
    assert _revision(db) == head_revision()


def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    open_store(db, ManualClock()).close()
    config = alembic_config()
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert {n for t, n, _ in _schema(db) if t == "table"} == {"alembic_version"}
    finally:
        engine.dispose()
    store = open_store(db, ManualClock())  # migrates back up; the boot counter starts over
    assert store.boot == 1
    store.close()


def test_a_read_only_open_needs_the_current_schema(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    open_store(db, ManualClock()).close()
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match="start the kiosk once"):
        open_store(db, ManualClock(), read_only=True)


def test_tables_without_a_revision_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    open_store(db, ManualClock()).close()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM alembic_version")
    conn.close()
    with pytest.raises(StoreCorrupt, match="not a kiosk database"):
        open_store(db, ManualClock())


def test_migrations_ship_with_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["kiosk.store"]
    package = MIGRATIONS.parent
    files = [
        p.relative_to(package).as_posix()
        for p in MIGRATIONS.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert {"migrations/env.py", "migrations/script.py.mako"} <= set(files)
    assert any(f.startswith("migrations/versions/") for f in files)
    for name in files:
        assert any(_glob(name, pat) for pat in patterns), f"{name} would not be installed"


def _glob(name: str, pattern: str) -> bool:
    """setuptools' glob: ``*`` stays within one directory."""
    path, pat = PurePosixPath(name), PurePosixPath(pattern)
    return len(path.parts) == len(pat.parts) and path.match(pattern)
