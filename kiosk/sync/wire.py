"""The JSON of docs/api.md, both ways: strict checks on what the server sends.

Every answer is checked completely before anything is applied: one wrong field anywhere
raises ``ServerUnavailable`` naming the field (never its value: it may be a key or a
hash), so garbage is never half-applied. Extra fields are tolerated (a newer server).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from kiosk.core.model import JournalEntry, Loan, Reservation, ReservationStatus, StaffMember
from kiosk.sync.client import ServerUnavailable

T = TypeVar("T")
KEY_RE = re.compile(r"[0-9a-f]{64}")
KIND_RE = re.compile(r"[a-z_]{1,40}")
_NOTHING: Any = object()


@dataclass(frozen=True)
class Page:
    """A reservations or loans answer: ``full`` (the whole list) or changes since a cursor."""

    full: bool
    cursor: str | None
    items: list[Any]


@dataclass(frozen=True)
class Command:
    """A remote command from a heartbeat answer."""

    id: int
    kind: str
    compartment: int | None
    reason: str


class _Obj:
    """One JSON object being checked; ``path`` names it in errors."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise ServerUnavailable(f"{path}: expected a JSON object")
        self.data: dict[str, Any] = value
        self.path = path

    def _get(self, key: str, kinds: tuple[type, ...], what: str, optional: bool) -> Any:
        value = self.data.get(key, _NOTHING)
        if value is _NOTHING or value is None:
            if optional:
                return None
            raise ServerUnavailable(f"{self.path}.{key}: missing")
        # JSON true/false are Python bools, which are ints too: keep them apart.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ServerUnavailable(f"{self.path}.{key}: expected {what}")
        return value

    def text(self, key: str, *, optional: bool = False, limit: int = 500) -> Any:
        value = self._get(key, (str,), "text", optional)
        if value is not None and len(value) > limit:
            raise ServerUnavailable(f"{self.path}.{key}: longer than {limit} characters")
        return value

    def whole(self, key: str, *, optional: bool = False, low: int = 0, high: int = 10**9) -> Any:
        value = self._get(key, (int,), "a whole number", optional)
        if value is not None and not low <= value <= high:
            raise ServerUnavailable(f"{self.path}.{key}: out of range {low}-{high}")
        return value

    def flag(self, key: str) -> bool:
        return bool(self._get(key, (bool,), "true or false", optional=False))

    def time(self, key: str, *, optional: bool = True) -> dt.datetime | None:
        value = self.text(key, optional=optional, limit=40)
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ServerUnavailable(f"{self.path}.{key}: a time without offset")
            return parsed.astimezone(dt.UTC)
        except (ValueError, OverflowError):  # OverflowError: year 1 with an offset ...
            raise ServerUnavailable(f"{self.path}.{key}: not an ISO 8601 time") from None

    def key(self, key: str) -> str | None:
        value = self.text(key, optional=True, limit=64)
        if value is not None and not KEY_RE.fullmatch(value):
            raise ServerUnavailable(f"{self.path}.{key}: not a borrower key (64 hex)")
        return value

    def items(self, key: str, limit: int = 100_000) -> list[Any]:
        value = self._get(key, (list,), "a list", optional=False)
        if len(value) > limit:
            raise ServerUnavailable(f"{self.path}.{key}: more than {limit} items")
        return value


def _each(values: Iterable[object], path: str, convert: Callable[[_Obj], T]) -> list[T]:
    return [convert(_Obj(value, f"{path}[{i}]")) for i, value in enumerate(values)]


def _page(data: dict[str, Any], what: str, convert: Callable[[_Obj], T]) -> Page:
    top = _Obj(data, what)
    full = top.flag("full")
    cursor = top.text("cursor", optional=True, limit=1000)
    return Page(full, cursor, _each(top.items("items"), f"{what}.items", convert))


def _reservation(o: _Obj) -> Reservation:
    status = o.text("status")
    if status not in {s.value for s in ReservationStatus}:
        raise ServerUnavailable(f"{o.path}.status: not a reservation status")
    return Reservation(
        id=o.text("id", limit=100),
        asset_tag=o.text("asset_tag", limit=100),
        status=ReservationStatus(status),
        borrower_key=o.key("borrower_key"),
        code_hash=o.text("code_hash", optional=True),
        device_type=o.text("device_type", limit=100),
        size=o.text("size", limit=10),
        charging=o.flag("charging"),
        compartment=o.whole("compartment", optional=True, low=1, high=10_000),
        ready_by=o.time("ready_by"),
        expires_at=o.time("expires_at"),
        loan_days=o.whole("loan_days", low=1, high=3650),
    )


def _loan(o: _Obj) -> Loan:
    return Loan(
        id=o.text("id", limit=100),
        asset_tag=o.text("asset_tag", limit=100),
        borrower_key=o.key("borrower_key"),
        device_type=o.text("device_type", limit=100),
        size=o.text("size", limit=10),
        charging=o.flag("charging"),
        started_at=o.time("started_at"),
        due_at=o.time("due_at"),
        returned_at=o.time("returned_at"),
        reservation_id=o.text("reservation_id", optional=True, limit=100),
    )


def _staff(o: _Obj) -> StaffMember:
    return StaffMember(
        id=o.text("id", limit=100),
        name=o.text("name", limit=200),
        pin_hash=o.text("pin_hash"),
        role=o.text("role", limit=40),
        borrower_key=o.key("borrower_key"),
        code_hash=o.text("code_hash", optional=True),
    )


def reservations(data: dict[str, Any]) -> Page:
    """The answer of ``GET reservations``; its items are ``Reservation`` values."""
    return _page(data, "reservations", _reservation)


def loans(data: dict[str, Any]) -> Page:
    """The answer of ``GET loans``; its items are ``Loan`` values."""
    return _page(data, "loans", _loan)


def staff(data: dict[str, Any]) -> list[StaffMember]:
    """The answer of ``GET staff``: every active staff member."""
    return _each(_Obj(data, "staff").items("items"), "staff.items", _staff)


def acknowledged(data: dict[str, Any], batch: Iterable[str]) -> set[str]:
    """The uuids of ``batch`` the server stored (accepted or duplicates).

    An answer naming a uuid that was not sent is garbage: nothing of it is trusted.
    """
    top = _Obj(data, "transactions")
    listed: set[str] = set()
    for key in ("accepted", "duplicates"):
        values = top.items(key)
        if not all(isinstance(v, str) for v in values):
            raise ServerUnavailable(f"transactions.{key}: expected a list of uuids")
        listed.update(values)
    strangers = listed - set(batch)
    if strangers:
        raise ServerUnavailable(f"transactions: the answer names {len(strangers)} uuid(s) not sent")
    return listed


def commands(data: dict[str, Any]) -> list[Command]:
    """The ``commands`` of a heartbeat answer, oldest first."""
    top = _Obj(data, "heartbeat")
    top.time("server_time", optional=False)

    def command(o: _Obj) -> Command:
        kind = o.text("kind", limit=40)
        if not KIND_RE.fullmatch(kind):
            raise ServerUnavailable(f"{o.path}.kind: not a command kind")
        return Command(
            id=o.whole("id", low=1, high=2**62),
            kind=kind,
            compartment=o.whole("compartment", optional=True, low=0, high=10_000),
            reason=o.text("reason", optional=True) or "",
        )

    return _each(top.items("commands", limit=1000), "heartbeat.commands", command)


def row(entry: JournalEntry) -> dict[str, Any]:
    """One journal row as ``POST transactions`` wants it."""
    wall = entry.wall_time
    return {
        "uuid": entry.uuid,
        "seq": entry.seq,
        "kind": entry.kind,
        "occurred_at": None if wall is None else wall.astimezone(dt.UTC).isoformat(),
        "boot": entry.boot,
        "payload": dict(entry.payload),
    }
