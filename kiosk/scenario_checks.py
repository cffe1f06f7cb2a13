"""Checking a step's expectations against the kiosk's snapshot, journal and lock pulses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kiosk.core.events import Snapshot


class StepFailed(Exception):
    """An expectation did not hold (or a step could not be done); the message says why."""


class CoreErrors(logging.Handler):
    """Collects what the core logs as an error: a scenario must not pass over a crash.

    The worker thread catches and logs every exception so the kiosk keeps serving; a
    scenario whose expectations happen to hold would hide it without this.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []
        self._logger = logging.getLogger("kiosk.core")
        self._level = self._logger.level
        if self._logger.getEffectiveLevel() > logging.ERROR:
            self._logger.setLevel(logging.ERROR)
        self._logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        """Remember one error line (with its exception, when there is one)."""
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f": {type(exc).__name__}: {exc}"
        self.seen.append(text)

    def check(self) -> None:
        """Raise ``StepFailed`` for the errors logged since the last check."""
        seen, self.seen = self.seen, []
        if seen:
            raise StepFailed("the kiosk core logged an error: " + "; ".join(seen))

    def detach(self) -> None:
        """Stop collecting."""
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)


def check_expectations(
    expects: dict[str, Any],
    snap: Snapshot,
    pulses: Callable[[int], int],
    new_rows: Callable[[], list[str]],
) -> None:
    """Raise ``StepFailed`` at the first expectation of ``expects`` that does not hold.

    ``pulses(n)`` counts the pulses of lock ``n`` so far; ``new_rows()`` gives the journal
    kinds written since the last journal expectation.
    """
    for key, wanted in expects.items():
        name = key.removeprefix("expect_")
        if name in ("screen", "message", "reminder", "first_name", "staff_name"):
            seen = snap.screen.value if name == "screen" else getattr(snap, name)
            extra = f" (message {snap.message!r})" if name == "screen" and snap.message else ""
            _same(name, wanted, seen, extra)
        elif name == "params":
            for param, value in wanted.items():
                _same(f"param {param}", value, snap.param(param, "<none>"))
        elif name == "actions":
            _same("actions", sorted(wanted), sorted(snap.actions))
        elif name == "choices":
            _expect_choices(wanted, snap)
        elif name == "compartment":
            for one in wanted:
                _expect_compartment(one, snap)
        elif name == "alarms":
            _expect_alarms(wanted, snap)
        elif name.startswith("journal"):
            _expect_journal(wanted, new_rows(), contains=name.endswith("contains"))
        elif name == "pulses":
            for number, count in wanted.items():
                _same(f"pulses on compartment {number}", count, pulses(number))


def _expect_choices(wanted: list[str], snap: Snapshot) -> None:
    offered = [f"{c.id} ({c.label})" for c in snap.choices]
    ok = len(wanted) == len(snap.choices) and all(
        choice_matches(w, c.id, c.label) for w, c in zip(wanted, snap.choices, strict=False)
    )
    if not ok:
        raise StepFailed(f"expected choices {wanted}, saw {offered}")


def _expect_compartment(wanted: dict[str, Any], snap: Snapshot) -> None:
    number = wanted["number"]
    view = next((c for c in snap.compartments if c.number == number), None)
    if view is None:
        raise StepFailed(f"compartment {number} is not on the map (screen {snap.screen})")
    seen = {
        "status": view.stored_status,
        "shown": view.status,
        "door": view.door,
        "item": view.item,
        "asset_tag": view.asset_tag or "",
        "note": view.note,
    }
    for key, value in wanted.items():
        if key != "number":
            _same(f"compartment {number} {key}", value, seen[key])


def _expect_journal(wanted: list[str], kinds: list[str], *, contains: bool) -> None:
    if contains:
        rest = iter(kinds)
        if not all(any(kind == w for kind in rest) for w in wanted):
            raise StepFailed(
                f"expected new journal rows containing {wanted} (in order), saw {kinds}"
            )
    elif kinds != wanted:
        raise StepFailed(f"expected new journal rows {wanted}, saw {kinds}")


def _same(what: str, wanted: object, seen: object, extra: str = "") -> None:
    if wanted != seen:
        raise StepFailed(f"expected {what}: {wanted!r}, saw {seen!r}{extra}")


def choice_matches(wanted: str, choice_id: str, label: str) -> bool:
    """A choice is named by its id or by a piece of its label (case does not matter)."""
    return wanted == choice_id or wanted.lower() in label.lower()


def alarm_name(kind: str, compartment: int | None) -> str:
    """``jammed:2``, or ``board_offline`` for an alarm of the whole cabinet."""
    return kind if compartment is None else f"{kind}:{compartment}"


def _expect_alarms(wanted: list[str], snap: Snapshot) -> None:
    """Active alarms, as ``kind`` or ``kind:compartment``; every alarm must be listed."""
    seen = [alarm_name(a.kind, a.compartment) for a in snap.alarms]
    left = list(seen)
    missing = []
    # Exact ``kind:compartment`` items first, so a bare ``kind`` takes what is left.
    for item in sorted(wanted, key=lambda w: ":" not in w):
        match = next((s for s in left if s == item or s.split(":")[0] == item), None)
        if match is None:
            missing.append(item)
        else:
            left.remove(match)
    if missing or left:
        raise StepFailed(f"expected alarms {sorted(wanted)}, saw {sorted(seen)}")
