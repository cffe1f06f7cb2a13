"""Library exceptions become ``StoreError``/``StoreCorrupt`` here, at the store's boundary.

The core only knows ``kiosk.core.ports.StoreError``; SQLAlchemy's and sqlite3's exception
types never leave ``kiosk.store``. Messages are one line and name the file.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from alembic.util.exc import CommandError
from sqlalchemy.exc import SQLAlchemyError

from kiosk.core.ports import StoreCorrupt, StoreError

# Everything the database libraries raise; the caller catches these and calls translate().
DB_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error, CommandError)

_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")

# What an installer or staff member should do, by SQLite result code (prefix).
_ADVICE = {
    "SQLITE_FULL": "the disk is full; free space on the kiosk's disk",
    "SQLITE_BUSY": "the database is locked by another process; is a second kiosk running?",
    "SQLITE_LOCKED": "the database is locked; is a second kiosk running?",
    "SQLITE_READONLY": "the database or its directory is not writable by this user",
    "SQLITE_CANTOPEN": "cannot open the database file; check the directory and its permissions",
    "SQLITE_PERM": "permission denied; check the owner of the file and its directory",
    "SQLITE_IOERR": "input/output error; the disk or SD card may be failing",
}


def _sqlite_error(exc: BaseException) -> BaseException:
    """The sqlite3 exception inside a SQLAlchemy one (or ``exc`` itself)."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def _one_line(text: str) -> str:
    return " ".join(text.split())


def translate(exc: BaseException, path: Path | str) -> Exception:
    """The ``StoreError`` (or ``StoreCorrupt``) that says what ``exc`` means for the kiosk.

    A ValueError raised while binding a parameter (a naive datetime) is a caller's mistake,
    not a database failure: it comes back as that ValueError.
    """
    if isinstance(exc, StoreError):
        return exc
    inner = _sqlite_error(exc)
    if isinstance(inner, ValueError) and not isinstance(inner, sqlite3.Error):
        return ValueError(str(inner))
    name = str(getattr(inner, "sqlite_errorname", ""))
    detail = _one_line(str(inner)) or type(inner).__name__
    if name.startswith(_CORRUPT):
        return StoreCorrupt(
            f"{path}: the database is damaged ({detail}); the file is kept unchanged for "
            "rescue: move it away to start with an empty store, or restore a backup"
        )
    for prefix, advice in _ADVICE.items():
        if name.startswith(prefix):
            return StoreError(f"{path}: {advice} ({detail})")
    if isinstance(inner, CommandError):
        return StoreError(f"{path}: schema migration failed: {detail}")
    return StoreError(f"{path}: database error: {detail}")


class _HasPath(Protocol):
    @property
    def path(self) -> Path: ...


S = TypeVar("S", bound=_HasPath)
P = ParamSpec("P")
R = TypeVar("R")


def translated(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Decorate a method of an object with a ``path``: database errors become StoreError."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except DB_ERRORS as exc:
            raise translate(exc, self.path) from exc

    return wrapper
