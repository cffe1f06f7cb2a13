"""Reading the ``[[step]]`` tables of a scenario: actions, pulse hooks, expectations."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from hardware.eid.privacy import borrower_key
from kiosk.core.model import AlarmKind
from kiosk.tomlcheck import Errors, Table, _hint

# Every scenario run uses this pepper: borrower keys are stable across runs and files.
PEPPER = b"digibank-scenario-pepper"

# World actions: what a person (or the cabinet) does, one compartment each.
WORLD = ("open_door", "close_door", "take_out", "put_in")
FAULTS = (
    "jam",
    "chatter",
    "board_offline",
    "board_garbled",
    "board_silent",
    "reader_unavailable",
    "card_not_an_eid",
    "card_mute",
    "server_unreachable",
)
ACTIONS = (
    "insert_card",
    "remove_card",
    "tap",
    "enter",
    "scan",
    *WORLD,
    "fault",
    "clear_fault",
    "wait",
    "restart",
)
TAP_KEYS = ("value", "choose", "alarm", "compartment")
EXPECTS = (
    "expect_screen",
    "expect_message",
    "expect_params",
    "expect_actions",
    "expect_choices",
    "expect_reminder",
    "expect_first_name",
    "expect_staff_name",
    "expect_compartment",
    "expect_alarms",
    "expect_journal",
    "expect_journal_contains",
    "expect_pulses",
)
COMPARTMENT_EXPECT_KEYS = ("number", "status", "shown", "door", "item", "asset_tag", "note")
_DURATION = re.compile(
    r"\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|min|mins|minutes?|h|hours?|d|days?)\s*",
    re.IGNORECASE,
)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Person:
    """Someone who can insert a card: by national number (a real simulated eID) or key."""

    name: str
    first_name: str
    national_number: str | None = field(default=None, repr=False)
    key: str = ""
    card_valid_until: dt.date | None = None  # None: valid for years after the start


def read_person(t: Table, name: str) -> Person:
    """A person from ``first_name`` and ``national_number`` (a card is made) or ``borrower_key``."""
    first_name = t.get("first_name", str, "")
    number = t.get("national_number", str, None)
    key = t.get("borrower_key", str, None)
    valid_until = t.get("card_valid_until", object, None)
    if valid_until is not None and (
        not isinstance(valid_until, dt.date) or isinstance(valid_until, dt.datetime)
    ):
        t.check(False, "card_valid_until", f"expected a date like 2026-01-31, got {valid_until!r}")
        valid_until = None
    if (number is None) == (key is None):
        t.errors.add(t.path, "give national_number or borrower_key (one of them)")
    if number is not None:
        try:
            key = borrower_key(PEPPER, number)
        except ValueError:
            t.check(False, "national_number", "expected 11 digits (dots and dashes allowed)")
            key = ""
    return Person(name, first_name, number, key or "", valid_until)


@dataclass(frozen=True)
class Action:
    """One thing done in a step: ``kind`` (one of ``ACTIONS``) and its arguments."""

    kind: str
    value: Any = None
    args: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """A short human line, e.g. ``tap open (R1)``."""
        extra = " ".join(f"{k}={v}" for k, v in self.args.items())
        value = "" if self.value is True or self.value is None else f" {self.value}"
        if not value.isprintable():  # a scanner's control characters: show them escaped
            value = f" {self.value!r}"
        return f"{self.kind}{value}" + (f" ({extra})" if extra else "")


@dataclass(frozen=True)
class Step:
    """One ``[[step]]``: at most one action, hooks around the next pulse, expectations."""

    number: int
    line: int | None
    action: Action | None
    expects: dict[str, Any]
    note: str = ""
    before_pulse: Action | None = None
    after_pulse: Action | None = None

    @property
    def where(self) -> str:
        """``step 3 (line 20)``."""
        return f"step {self.number}" + (f" (line {self.line})" if self.line else "")


def parse_duration(value: object) -> float | None:
    """Seconds from ``30``, ``2.5``, ``"90 s"``, ``"5 min"``, ``"2 h"``, ``"1 day"``; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match:
            return float(match.group(1)) * _UNIT_S[match.group(2)[0].lower()]
    return None


STEP_KEYS = (*ACTIONS, *TAP_KEYS, *EXPECTS, "note", "before_pulse", "after_pulse")


class StepTable(Table):
    """A ``[[step]]``: a misspelt key is compared with every key a step may have."""

    def key_path(self, key: str) -> str:
        """``step 3 (line 20): tap``."""
        return f"{self.path}: {key}"

    def finish(self) -> None:
        """Unknown keys get a did-you-mean among all step keys; known ones out of place too."""
        for key in self.data:
            if key not in STEP_KEYS:
                self.errors.add(self.key_path(key), f"unknown key{_hint(key, list(STEP_KEYS))}")
            elif key not in self._used:
                self.errors.add(self.key_path(key), "does not go with this step's action")


class StepReader:
    """Reads steps; knows the persons and compartment numbers a step may name."""

    def __init__(self, errors: Errors, persons: dict[str, Any], numbers: set[int]) -> None:
        self.errors = errors
        self.persons = persons
        self.numbers = numbers

    def person_key(self, t: Table, key: str) -> str | None:
        name = t.get(key, str, None)
        if name is None:
            return None
        if name not in self.persons:
            t.check(False, key, f"no [[person]] named {name!r}{_hint(name, list(self.persons))}")
            return None
        return self.persons[name].key

    def number(self, t: Table, key: str, *, required: bool = False) -> int | None:
        """A compartment number of this cabinet (None when optional and not given)."""
        if required and not t.has(key):
            t.get(key, int)  # reports it missing
            return None
        number = t.get(key, int, None)
        if number is not None:
            t.check(number in self.numbers, key, f"the cabinet has no compartment {number}")
        return number

    # -- steps --------------------------------------------------------------------------------
    def step(self, t: Table, number: int, line: int | None) -> Step:
        """One ``[[step]]`` table: its action, tap arguments, pulse hooks and expectations."""
        present = [key for key in ACTIONS if t.has(key)]
        if len(present) > 1:
            t.errors.add(t.path, f"{' and '.join(present)}: one action per step")
        action = self.action(t, present[0]) if present else None
        if action is not None and action.kind == "tap":
            args = {k: t.get(k, object) for k in TAP_KEYS if t.has(k)}
            action = Action("tap", action.value, args)
            if "alarm" in args:
                t.get("alarm", str, choices=[k.value for k in AlarmKind])
        expects = {key: self.expectation(t, key) for key in EXPECTS if t.has(key)}
        hooks = {key: self.hook(t, key) for key in ("before_pulse", "after_pulse")}
        step = Step(number, line, action, expects, t.get("note", str, ""), **hooks)
        t.finish()
        return step

    def action(self, t: Table, kind: str) -> Action:
        """The action ``kind`` (a key of ``t``) with its value checked."""
        if kind == "insert_card" and isinstance(t.data.get(kind), dict):
            # A card given right in the step: { national_number = ..., first_name = ... }
            card = t.table(kind)
            name = f"card of {t.path}"
            self.persons[name] = read_person(card, name)
            card.finish()
            return Action(kind, name)
        if kind == "insert_card":
            name = t.get(kind, str)
            t.check(
                name in self.persons,
                kind,
                f"no [[person]] named {name!r}{_hint(name, list(self.persons))}",
            )
            return Action(kind, name)
        if kind in ("remove_card", "restart"):
            t.check(t.get(kind, bool, True), kind, "write true (or leave the key out)")
            return Action(kind, True)
        if kind in ("tap", "enter", "scan"):
            return Action(kind, t.get(kind, str))
        if kind in WORLD:
            return Action(kind, self.number(t, kind, required=True))
        if kind == "wait":
            seconds = parse_duration(t.get(kind, object))
            t.check(seconds is not None, kind, 'expected seconds or a duration like "5 min"')
            return Action(kind, seconds or 0.0)
        choices = FAULTS if kind == "fault" else (*FAULTS, "all")
        fault = t.get(kind, str, choices=choices)
        args: dict[str, Any] = {}
        if fault in ("jam", "chatter"):
            args["compartment"] = self.number(t, "compartment", required=True)
        return Action(kind, fault, args)

    def hook(self, t: Table, key: str) -> Action | None:
        """``before_pulse`` / ``after_pulse``: one world action or fault, on the next pulse."""
        if not t.has(key):
            return None
        sub = t.table(key)
        present = [k for k in (*WORLD, "fault", "clear_fault") if sub.has(k)]
        if len(present) != 1:
            sub.errors.add(sub.path, "one of " + ", ".join((*WORLD, "fault", "clear_fault")))
        action = self.action(sub, present[0]) if len(present) == 1 else None
        sub.finish()
        return action

    def expectation(self, t: Table, key: str) -> Any:
        """The checked value of expectation ``key`` (lists, tables or text)."""
        lists = ("expect_actions", "expect_choices", "expect_alarms", "expect_journal")
        if key in (*lists, "expect_journal_contains"):
            return t.get_list(key, str)
        if key == "expect_params":
            params = t.table(key)
            values = {k: params.get(k, object) for k in list(params.data)}
            params.finish()
            return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}
        if key == "expect_pulses":
            pulses = t.table(key)
            counts = {}
            for name in list(pulses.data):
                pulses.check(
                    name.isdigit() and int(name) in self.numbers, name, "not a compartment"
                )
                counts[int(name) if name.isdigit() else 0] = pulses.get(name, int, 0, low=0)
            pulses.finish()
            return counts
        if key == "expect_compartment":
            raw = t.data[key]
            subs = (
                [Table(r, f"{t.key_path(key)}[{i}]", t.errors) for i, r in enumerate(raw)]
                if isinstance(raw, list)
                else [t.table(key)]
            )
            t.get(key, object)
            return [self.compartment_expect(sub) for sub in subs]
        return t.get(key, str)

    def compartment_expect(self, t: Table) -> dict[str, Any]:
        """``{ number = 2, status = ..., door = ... }``: the fields to compare."""
        wanted: dict[str, Any] = {"number": self.number(t, "number", required=True)}
        for name in COMPARTMENT_EXPECT_KEYS[1:]:
            if t.has(name):
                wanted[name] = t.get(name, bool if name == "item" else str)
        t.finish()
        return wanted
