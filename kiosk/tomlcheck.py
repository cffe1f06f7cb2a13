"""A small reader that checks TOML tables while reading them and collects every error.

Each error names its key path and the expected form, e.g.
``locker.compartments[12].channel: 17 is out of range 1-16 for board 1``; keys nobody
asked for are reported with a "did you mean" hint. Nothing is raised while reading, so
one run shows the installer every mistake at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING: Any = object()

_KIND_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def kind_name(kind: type) -> str:
    """How a value kind is called in an error message."""
    return _KIND_NAMES.get(kind, kind.__name__)


class Errors:
    """The errors found so far, in reading order."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        """Record ``path: message``."""
        self.items.append(f"{path}: {message}" if path else message)

    def __bool__(self) -> bool:
        return bool(self.items)


class Table:
    """One TOML table being read; remembers which keys were used."""

    def __init__(self, data: object, path: str, errors: Errors) -> None:
        self.path = path
        self.errors = errors
        if isinstance(data, dict):
            self.data: dict[str, Any] = data
        else:
            errors.add(path, f"expected a table, got {_describe(data)}")
            self.data = {}
        self._used: set[str] = set()

    def key_path(self, key: str) -> str:
        """The dotted path of ``key`` in this table."""
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        """True when the file sets ``key`` here."""
        return key in self.data

    def get(
        self,
        key: str,
        kind: type[T],
        default: T = _MISSING,
        *,
        choices: Collection[T] | None = None,
        low: float | None = None,
        high: float | None = None,
    ) -> T:
        """The value of ``key`` checked against kind, choices and range.

        On an error the default is returned (or a neutral value) so reading goes on.
        """
        self._used.add(key)
        path = self.key_path(key)
        if key not in self.data:
            if default is _MISSING:
                self.errors.add(path, f"missing; expected {kind_name(kind)}")
                return _neutral(kind)
            return default
        value = self.data[key]
        checked = _coerce(value, kind)
        if checked is _MISSING:
            self.errors.add(path, f"expected {kind_name(kind)}, got {_describe(value)}")
            return default if default is not _MISSING else _neutral(kind)
        if choices is not None and checked not in choices:
            hint = _hint(str(checked), [str(c) for c in choices])
            listed = ", ".join(repr(c) for c in choices)
            self.errors.add(path, f"{checked!r} is not one of {listed}{hint}")
            return default if default is not _MISSING else checked
        if (low is not None and checked < low) or (high is not None and checked > high):
            self.errors.add(path, f"{checked!r} is out of range {_range(low, high)}")
            return default if default is not _MISSING else checked
        return checked

    def get_list(self, key: str, kind: type[T], default: list[T] = _MISSING) -> list[T]:
        """A list whose items are all of ``kind``."""
        self._used.add(key)
        path = self.key_path(key)
        if key not in self.data:
            if default is _MISSING:
                self.errors.add(path, f"missing; expected a list of {kind_name(kind)}")
                return []
            return default
        value = self.data[key]
        if not isinstance(value, list):
            self.errors.add(path, f"expected a list of {kind_name(kind)}, got {_describe(value)}")
            return []
        items: list[T] = []
        for index, item in enumerate(value):
            checked = _coerce(item, kind)
            if checked is _MISSING:
                self.errors.add(
                    f"{path}[{index}]", f"expected {kind_name(kind)}, got {_describe(item)}"
                )
            else:
                items.append(checked)
        return items

    def table(self, key: str) -> Table:
        """The sub-table ``key`` (an empty one when the file has none)."""
        self._used.add(key)
        return Table(self.data.get(key, {}), self.key_path(key), self.errors)

    def tables(self, key: str) -> list[Table]:
        """The array of tables ``[[key]]`` (empty when the file has none)."""
        self._used.add(key)
        value = self.data.get(key, [])
        path = self.key_path(key)
        if not isinstance(value, list):
            self.errors.add(path, f"expected a list of tables ([[{path}]]), got {_describe(value)}")
            return []
        return [Table(item, f"{path}[{i}]", self.errors) for i, item in enumerate(value)]

    def check(self, ok: bool, key: str, message: str) -> None:
        """Record ``message`` for ``key`` unless ``ok``."""
        if not ok:
            self.errors.add(self.key_path(key), message)

    def finish(self) -> None:
        """Report every key in the file that nobody read, with a "did you mean" hint."""
        known = sorted(self._used)
        for key in self.data:
            if key not in self._used:
                self.errors.add(self.key_path(key), f"unknown key{_hint(key, known)}")


def _hint(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g}-{high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def _coerce(value: object, kind: type) -> Any:
    # TOML booleans are Python bools, which are ints too: never take one for the other.
    if kind is bool:
        return value if isinstance(value, bool) else _MISSING
    if isinstance(value, bool):
        return _MISSING
    if kind is float and isinstance(value, int | float):
        return float(value)
    return value if isinstance(value, kind) else _MISSING


def _neutral(kind: type) -> Any:
    neutral: dict[type, Callable[[], Any]] = {bool: bool, int: int, float: float, str: str}
    return neutral.get(kind, lambda: None)()


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return f"{value!r} ({kind_name(type(value))})"
