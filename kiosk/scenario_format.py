"""Reading a scenario file (TOML) into plain values; every mistake is reported at once.

The format is described in ``docs/scenarios.md``. Reading never runs anything: a file
with an unknown step, an unknown key or a bad value is refused as a whole (exit code 2),
each error naming its step, the step's line in the file and, for a misspelt key, the key
that was probably meant (``kiosk.tomlcheck``).
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hardware.locker.layout import CompartmentSpec
from kiosk.core.codes import hash_code
from kiosk.core.model import (
    Compartment,
    CompartmentStatus,
    Loan,
    Reservation,
    ReservationStatus,
    StaffMember,
)
from kiosk.core.policy import CorePolicy
from kiosk.scenario_steps import (
    PEPPER,
    Action,
    Person,
    Step,
    StepReader,
    StepTable,
    parse_duration,
    read_person,
)
from kiosk.settings_core import read_flows
from kiosk.tomlcheck import Errors, Table

__all__ = [
    "PEPPER",
    "Action",
    "Person",
    "Scenario",
    "ScenarioError",
    "Step",
    "load_scenario",
    "parse_duration",
]

DEFAULT_START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
SIZES = ("S", "M", "L")


class ScenarioError(Exception):
    """The file is not a valid scenario; ``errors`` lists every problem (one line each)."""

    def __init__(self, source: str, errors: list[str]) -> None:
        super().__init__(f"{source}: {len(errors)} error(s)")
        self.source = source
        self.errors = errors


@dataclass
class Scenario:
    """A whole scenario file, read and checked."""

    source: str
    title: str
    start: dt.datetime
    specs: list[CompartmentSpec]
    watch_s: float
    policy: CorePolicy
    persons: dict[str, Person]
    reservations: list[Reservation]
    loans: list[Loan]
    staff: list[StaffMember]
    compartments: dict[int, Compartment]
    items: dict[int, bool]  # compartments that physically hold a device at the start
    open_doors: list[int]
    steps: list[Step]


def load_scenario(path: str | Path) -> Scenario:
    """Read and check ``path``; raises ``ScenarioError`` listing every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(source, [f"cannot read the file: {exc.strerror}"]) from None
    return parse_scenario(text, source)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Check ``text`` (TOML) and build the ``Scenario``; raises ``ScenarioError``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, [f"not valid TOML: {exc}"]) from None
    errors = Errors()
    root = Table(data, "", errors)
    title = root.get("title", str, Path(source).stem)
    start = _when(root, "start") or DEFAULT_START
    cabinet = root.table("cabinet")
    specs, watch_s = _cabinet(cabinet)
    numbers = {s.number for s in specs}
    policy = read_flows(root.table("flows"))
    persons = _persons(root.tables("person"))
    reader = _Reader(errors, persons, numbers)
    reservations = [reader.reservation(t) for t in root.tables("reservation")]
    loans = [reader.loan(t) for t in root.tables("loan")]
    staff = [reader.staff(t) for t in root.tables("staff")]
    compartments, items, open_doors = reader.contents(root.tables("compartment"), reservations)
    lines = _step_lines(text)
    steps = []
    raw_steps = data.get("step", [])
    root.tables("step")  # marks the key as known; the steps are read with their lines below
    if isinstance(raw_steps, list):
        for index, raw in enumerate(raw_steps):
            line = lines[index] if index < len(lines) else None
            where = f"step {index + 1}" + (f" (line {line})" if line else "")
            steps.append(reader.step(StepTable(raw, where, errors), index + 1, line))
    if not steps and not errors:
        errors.add("step", "no [[step]] in the file: a scenario needs at least one step")
    root.finish()
    if errors:
        raise ScenarioError(source, errors.items)
    return Scenario(
        source=source,
        title=title,
        start=start,
        specs=specs,
        watch_s=watch_s,
        policy=policy,
        persons=persons,
        reservations=reservations,
        loans=loans,
        staff=staff,
        compartments=compartments,
        items=items,
        open_doors=open_doors,
        steps=steps,
    )


# -- the setup ------------------------------------------------------------------------------
def _step_lines(text: str) -> list[int]:
    """The line number of every ``[[step]]`` header, in order (tomllib gives no positions)."""
    header = re.compile(r"^\s*\[\[\s*step\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), start=1) if header.match(line)]


def _when(t: Table, key: str) -> dt.datetime | None:
    """A TOML date or date-time as aware UTC (a bare date is midnight UTC)."""
    value = t.get(key, object, None)
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(0, 0), tzinfo=dt.UTC)
    t.check(False, key, f"expected a date or date-time like 2026-11-02T09:00:00Z, got {value!r}")
    return None


def _cabinet(t: Table) -> tuple[list[CompartmentSpec], float]:
    count = t.get("compartments", int, 4, low=1, high=64)
    size = t.get("size", str, "M", choices=SIZES)
    charging = t.get("charging", bool, False)
    door_sensor = t.get("door_sensor", bool, True)
    item_sensor = t.get("item_sensor", bool, True)
    watch_s = t.get("watch_ms", float, 100.0, low=10, high=2000) / 1000
    specs = {
        n: CompartmentSpec(n, size, charging, door_sensor, item_sensor) for n in range(1, count + 1)
    }
    for c in t.tables("compartment"):
        number = c.get("number", int, 0)
        c.check(number in specs, "number", f"{number} is not a compartment 1-{count}")
        base = specs.get(number, CompartmentSpec(number))
        if number in specs:
            specs[number] = CompartmentSpec(
                number,
                c.get("size", str, base.size, choices=SIZES),
                c.get("charging", bool, base.charging),
                c.get("door_sensor", bool, base.door_sensor),
                c.get("item_sensor", bool, base.item_sensor),
            )
        c.finish()
    t.finish()
    return list(specs.values()), watch_s


def _persons(tables: list[Table]) -> dict[str, Person]:
    persons: dict[str, Person] = {}
    for t in tables:
        name = t.get("name", str, "")
        t.check(name not in persons, "name", f"{name!r} is defined twice")
        persons[name] = read_person(t, name)
        t.finish()
    return persons


class _Reader(StepReader):
    """Reads the setup tables that refer to persons and compartments, and the steps."""

    def reservation(self, t: Table) -> Reservation:
        compartment = self.number(t, "compartment")
        status = t.get(
            "status",
            str,
            "loaded" if compartment is not None else "requested",
            choices=[s.value for s in ReservationStatus],
        )
        code = t.get("code", str, None)
        reservation = Reservation(
            id=t.get("id", str),
            asset_tag=t.get("asset_tag", str),
            status=ReservationStatus(status),
            borrower_key=self.person_key(t, "borrower"),
            code_hash=hash_code(code, iterations=1000) if code else None,
            device_type=t.get("device_type", str, "laptop"),
            size=t.get("size", str, "M", choices=SIZES),
            charging=t.get("charging", bool, False),
            compartment=compartment,
            ready_by=_when(t, "ready_by"),
            expires_at=_when(t, "expires_at"),
            loan_days=t.get("loan_days", int, 14, low=1, high=365),
        )
        t.finish()
        return reservation

    def loan(self, t: Table) -> Loan:
        due = _when(t, "due")
        loan = Loan(
            id=t.get("id", str),
            asset_tag=t.get("asset_tag", str),
            borrower_key=self.person_key(t, "borrower"),
            device_type=t.get("device_type", str, "laptop"),
            size=t.get("size", str, "M", choices=SIZES),
            charging=t.get("charging", bool, False),
            started_at=_when(t, "started") or DEFAULT_START - dt.timedelta(days=7),
            due_at=due.replace(hour=23, minute=59) if due else None,
        )
        t.finish()
        return loan

    def staff(self, t: Table) -> StaffMember:
        code = t.get("code", str, None)
        member = StaffMember(
            id=t.get("id", str),
            name=t.get("name", str),
            pin_hash=hash_code(t.get("pin", str), iterations=1000),
            role=t.get("role", str, "staff"),
            borrower_key=self.person_key(t, "person"),
            code_hash=hash_code(code, iterations=1000) if code else None,
        )
        t.finish()
        return member

    def contents(
        self, tables: list[Table], reservations: list[Reservation]
    ) -> tuple[dict[int, Compartment], dict[int, bool], list[int]]:
        """Compartment contents: loaded reservations first, then ``[[compartment]]`` rows."""
        compartments: dict[int, Compartment] = {}
        items: dict[int, bool] = {}
        for r in reservations:
            if r.status is ReservationStatus.LOADED and r.compartment is not None:
                compartments[r.compartment] = Compartment(
                    r.compartment,
                    status=CompartmentStatus.LOADED,
                    asset_tag=r.asset_tag,
                    reservation_id=r.id,
                )
                items[r.compartment] = True
        open_doors = []
        for t in tables:
            number = self.number(t, "number", required=True) or 0
            status = CompartmentStatus(
                t.get("status", str, "empty", choices=[s.value for s in CompartmentStatus])
            )
            compartments[number] = Compartment(
                number,
                status=status,
                asset_tag=t.get("asset_tag", str, None),
                reservation_id=t.get("reservation", str, None),
                note=t.get("note", str, ""),
                opened_count=t.get("opened_count", int, 0, low=0),
                status_before=CompartmentStatus.EMPTY
                if status is CompartmentStatus.OUT_OF_SERVICE
                else None,
            )
            holds = status in (CompartmentStatus.LOADED, CompartmentStatus.RETURNED)
            items[number] = t.get("item", bool, holds)
            if t.get("door_open", bool, False):
                open_doors.append(number)
            t.finish()
        return compartments, items, open_doors
