"""Opening the store: checks that never touch a bad file, the engine, migrations, boot count.

Order at ``open_store``: the location is checked (directory exists and is writable); an
existing file is inspected through a *read-only* SQLite connection (header, ``quick_check``,
known schema revision), so a damaged or too-new file is refused and left byte for byte as
it was; only then is the read-write engine made, Alembic brings the schema to head inside
one ``BEGIN IMMEDIATE`` transaction, and the boot counter goes up.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool

from kiosk.core.clock import Clock
from kiosk.core.ports import StoreCorrupt, StoreError
from kiosk.store.errors import DB_ERRORS, translate
from kiosk.store.repo import BEGIN_OPTION, SqlStore

log = logging.getLogger("kiosk.store")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 5000  # a lock held by another process: wait this long, then StoreError
POOL_TIMEOUT_S = 10.0  # every wait has a timeout, the pool's too
_HEADER = b"SQLite format 3\x00"


def alembic_config() -> Config:
    """An Alembic ``Config`` for the store's migrations, built in code (no alembic.ini)."""
    config = Config()
    # ConfigParser interpolates "%": a path holding one must be escaped.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest schema revision this program knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise StoreError(f"no migrations found in {MIGRATIONS}")
    return head


def known_revisions() -> set[str]:
    """Every schema revision this program knows."""
    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def open_store(
    path: str | Path,
    clock: Clock,
    *,
    checkpoint: Callable[[str], None] | None = None,
    create: bool = True,
    read_only: bool = False,
) -> SqlStore:
    """Open (or, with ``create``, make) the kiosk's database at ``path``.

    ``read_only`` (the ``db``/``journal`` commands): no migration, no boot count, no writes;
    the schema must already be at this program's revision. Raises ``StoreCorrupt`` for a
    damaged or too-new file (left untouched) and ``StoreError`` when the file or its
    directory cannot be used.
    """
    path = Path(path).expanduser().absolute()
    new = _check_location(path, create=create and not read_only, read_only=read_only)
    if not new:
        _inspect(path)
    engine = _engine(path, read_only=read_only)
    store = SqlStore(engine, path=path, clock=clock, checkpoint=checkpoint, read_only=read_only)
    try:
        if read_only:
            _require_head(engine, path)
        else:
            _migrate(engine)
        boot = store.start()
    except BaseException as exc:
        engine.dispose()
        if isinstance(exc, DB_ERRORS):
            raise translate(exc, path) from exc
        raise
    log.info("store opened (boot %d%s)", boot, ", read-only" if read_only else "")
    return store


def _check_location(path: Path, *, create: bool, read_only: bool) -> bool:
    """Raise StoreError when ``path`` cannot be used; True when a new database is due."""
    directory = path.parent
    if not directory.is_dir():
        raise StoreError(
            f"{path}: directory {directory} does not exist; create it and make it writable "
            "by the kiosk user"
        )
    if path.exists() and not path.is_file():
        raise StoreError(f"{path}: not a regular file")
    exists = path.exists() and path.stat().st_size > 0  # SQLite treats an empty file as new
    if not exists and not create:
        what = "is an empty file" if path.exists() else "does not exist"
        raise StoreError(f"{path}: the database {what}")
    if read_only:
        return False
    # WAL needs to create <db>-wal and <db>-shm beside the file: the directory too.
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreError(
            f"{path}: directory {directory} is not writable by this user; make it writable "
            "by the kiosk user"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(f"{path}: the file is not readable and writable by this user")
    return not exists


def _inspect(path: Path) -> None:
    """Refuse a file that is not a sound database of a schema we know, without writing."""
    try:
        with path.open("rb") as f:
            header = f.read(len(_HEADER))
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    if header != _HEADER:
        raise StoreCorrupt(
            f"{path}: not a SQLite database; the file is kept unchanged: move it away to "
            "start with an empty store, or restore a backup"
        )
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=5.0)
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # A finding may span lines ("*** in database main ***\nOn tree page ..."): one line.
            problems = [" ".join(str(r[0]).split()) for r in conn.execute("PRAGMA quick_check")]
            tables = {
                str(r[0])
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                )
            }
            revision = None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = None if row is None else str(row[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    if problems != ["ok"]:
        raise StoreCorrupt(
            f"{path}: the database fails its integrity check ({problems[0]}"
            f"{f' and {len(problems) - 1} more' if len(problems) > 1 else ''}); the file is "
            "kept unchanged for rescue: move it away or restore a backup"
        )
    if revision is None and tables - {"alembic_version"}:
        # Some other program's database (a wrong [store] path): never add tables to it.
        raise StoreCorrupt(
            f"{path}: not a kiosk database (tables {', '.join(sorted(tables)[:5])} but no "
            "schema revision); the file is kept unchanged: check [store] path"
        )
    if revision is not None and revision not in known_revisions():
        raise StoreCorrupt(
            f"{path}: schema revision {revision} is newer than this program knows "
            f"(newest {head_revision()}); install the newer kiosk software. The file is kept"
        )


def _engine(path: Path, *, read_only: bool) -> Engine:
    """The engine, with the pysqlite recipe that lets SQLAlchemy emit its own BEGIN."""
    if read_only:
        target, uri = f"file:{quote(str(path))}?mode=ro", True
    else:
        target, uri = str(path), False

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(
            target, uri=uri, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )

    # creator=: the path goes to sqlite3 as is (no URL quoting rules); QueuePool because a
    # "sqlite://" URL would otherwise get the in-memory database's single-thread pool.
    engine = create_engine(
        "sqlite+pysqlite://", creator=connect, poolclass=QueuePool, pool_timeout=POOL_TIMEOUT_S
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would BEGIN late and COMMIT before DDL: off,
        # SQLAlchemy emits BEGIN itself (the "begin" listener below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if read_only:
                cursor.execute("PRAGMA query_only=ON")
            else:
                mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"{path}: the file system does not allow WAL mode ({mode})")
            cursor.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock at BEGIN: two writers queue up (busy_timeout)
        # instead of both reading, then one failing to upgrade its lock (a deadlock).
        mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _migrate(engine: Engine) -> None:
    """Bring the schema to head in one transaction (a fresh file gets every table)."""
    config = alembic_config()
    with engine.connect() as conn:
        conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            config.attributes["connection"] = conn
            command.upgrade(config, "head")


def _require_head(engine: Engine, path: Path) -> None:
    """Read-only use needs the current schema: it cannot migrate."""
    with engine.connect() as conn:
        has_version = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
        ).first()
        revision = (
            conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if has_version
            else None
        )
    head = head_revision()
    if revision != head:
        raise StoreError(
            f"{path}: schema revision {revision or 'none'}, this program expects {head}; "
            "start the kiosk once to bring it up to date"
        )
