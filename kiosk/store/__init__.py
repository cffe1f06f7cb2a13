"""The kiosk's durable local store: SQLite (WAL) through SQLAlchemy, migrated by Alembic.

``open_store(path, clock)`` returns a ``SqlStore`` implementing ``kiosk.core.ports.Store``.
Nothing here runs at import time; the engine is made by ``open_store``.
"""

from kiosk.store.db import open_store
from kiosk.store.repo import SqlStore, SqlStoreTx, StoreReport

__all__ = ["SqlStore", "SqlStoreTx", "StoreReport", "open_store"]
