"""The ``[locker]`` section of the configuration: the cabinet, its buses, pins and timings.

Every wiring mistake is reported with its key path (``locker.compartments[12].channel:
17 is out of range 1-16 for board 1``); ``config/kiosk.example.toml`` documents the keys.
"""

from __future__ import annotations

from typing import Any

from hardware.locker.codecs import families, get_codec
from hardware.locker.layout import (
    BusSpec,
    CabinetSpec,
    CompartmentSpec,
    Feedback,
    GpioSpec,
    OpenTiming,
    PollTiming,
    SimulationSpec,
)
from kiosk.tomlcheck import Table

DRIVERS = ("serial", "gpio", "simulated")
SIZES = ("S", "M", "L")
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
EMULATOR_PORT = "emulator"  # a bus port of this name runs the built-in board emulator


def ms(table: Table, key: str, default: float, low: float, high: float) -> float:
    """A ``*_ms`` key read as seconds."""
    return table.get(key, float, default, low=low, high=high) / 1000


def read_cabinet(t: Table) -> CabinetSpec:
    """``[locker]``: the driver, timings, buses or pins, and the compartments."""
    driver = t.get("driver", str, "simulated", choices=DRIVERS)
    o = t.table("open")
    open_timing = OpenTiming(
        watch_s=ms(o, "watch_ms", 4000, 100, 30000),
        retry=o.get("retry", bool, True),
        cooldown_s=ms(o, "cooldown_ms", 2000, 0, 60000),
        check_interval_s=ms(o, "check_interval_ms", 50, 5, 1000),
    )
    o.finish()
    p = t.table("poll")
    poll = PollTiming(
        interval_s=ms(p, "interval_ms", 250, 10, 60000),
        offline_after=p.get("offline_after", int, 3, low=1, high=100),
        stable_reads=p.get("stable_reads", int, 2, low=1, high=10),
        chatter_changes=p.get("chatter_changes", int, 6, low=2, high=1000),
        chatter_window_s=ms(p, "chatter_window_ms", 10000, 100, 3600000),
    )
    p.finish()
    buses = tuple(_bus(b) for b in t.tables("buses"))
    gpio = _gpio(t.table("gpio"))
    s = t.table("simulation")
    simulation = SimulationSpec(
        latency_s=ms(s, "latency_ms", 0, 0, 10000), auto_open=s.get("auto_open", bool, True)
    )
    s.finish()
    defaults = _compartment_defaults(t.table("compartment_defaults"))
    if t.has("compartments"):
        compartments = tuple(
            _compartment(c, driver, buses, defaults) for c in t.tables("compartments")
        )
    elif driver == "serial":
        compartments = auto_compartments(buses, defaults)
    else:
        t.check(False, "compartments", f"missing; a {driver} cabinet needs [[locker.compartments]]")
        compartments = ()
    _check_cabinet(t, driver, buses, compartments)
    t.finish()
    return CabinetSpec(driver, compartments, buses, gpio, simulation, open_timing, poll)


def _bus(t: Table) -> BusSpec:
    name = t.get("name", str, "main")
    family = t.get("family", str, "cu", choices=families())
    codec = get_codec(family) if family in families() else None
    baud = t.get("baud", int, codec.default_baud if codec else 19200, choices=BAUD_RATES)
    max_channels = codec.max_channels if codec else 64
    channels = t.get("channels", int, min(16, max_channels), low=1, high=max_channels)
    boards = tuple(t.get_list("boards", int, [codec.addresses.start if codec else 0]))
    for index, address in enumerate(boards):
        if codec and address not in codec.addresses:
            first, last = codec.addresses.start, codec.addresses.stop - 1
            t.errors.add(
                f"{t.key_path('boards')}[{index}]",
                f"{address} is out of range {first}-{last} for {family} boards",
            )
    t.check(len(set(boards)) == len(boards), "boards", f"a board is listed twice: {list(boards)}")
    t.check(bool(boards), "boards", "no boards listed")
    gap = t.get("gap_ms", float, -1.0)
    spec = BusSpec(
        name=name,
        port=t.get("port", str),
        family=family,
        boards=boards,
        baud=baud,
        channels=channels,
        feedback=Feedback(
            t.get("feedback", str, "closed_when_set", choices=[f.value for f in Feedback])
        ),
        pulse_ms=t.get("pulse_ms", int, 0, low=50, high=5000) if t.has("pulse_ms") else None,
        reply_timeout_s=ms(t, "reply_timeout_ms", 300, 20, 5000),
        gap_s=None if gap < 0 else gap / 1000,
        silence_s=ms(t, "silence_ms", 25, 1, 1000),
        exclusive=t.get("exclusive", bool, True),
        reconnect_max_s=ms(t, "reconnect_max_ms", 30000, 100, 600000),
    )
    t.finish()
    return spec


def _gpio(t: Table) -> GpioSpec:
    spec = GpioSpec(
        pin_factory=t.get("pin_factory", str, "") or None,
        relay_active_high=t.get("relay_active_high", bool, True),
        pulse_ms=t.get("pulse_ms", int, 500, low=50, high=5000),
        door_pull_up=t.get("door_pull_up", bool, True),
        door_closed_when_active=t.get("door_closed_when_active", bool, True),
        item_pull_up=t.get("item_pull_up", bool, True),
        item_present_when_active=t.get("item_present_when_active", bool, True),
        bounce_ms=t.get("bounce_ms", int, 50, low=0, high=1000),
    )
    t.finish()
    return spec


def _compartment_defaults(t: Table) -> dict[str, Any]:
    defaults = {
        "size": t.get("size", str, "M", choices=SIZES),
        "charging": t.get("charging", bool, False),
        "door_sensor": t.get("door_sensor", bool, True),
        "item_sensor": t.get("item_sensor", bool, False),
    }
    t.finish()
    return defaults


def _pin(t: Table, key: str) -> int | str | None:
    if not t.has(key):
        return None
    value = t.data[key]
    if isinstance(value, bool) or not isinstance(value, int | str):
        t.get(key, int)  # records "expected a whole number"
        return None
    t.get(key, type(value))
    return value


def _compartment(
    t: Table, driver: str, buses: tuple[BusSpec, ...], defaults: dict[str, Any]
) -> CompartmentSpec:
    number = t.get("number", int, low=1, high=9999)
    bus_name: str | None = None
    if driver == "serial" or t.has("bus") or t.has("board") or t.has("channel"):
        only = buses[0].name if len(buses) == 1 else None
        bus_name = t.get("bus", str, only) if only else t.get("bus", str)
        bus_names = [b.name for b in buses]
        if bus_name and buses and bus_name not in bus_names:
            t.check(False, "bus", f"{bus_name!r} is not a bus; buses: {', '.join(bus_names)}")
    spec = CompartmentSpec(
        number=number,
        size=t.get("size", str, defaults["size"], choices=SIZES),
        charging=t.get("charging", bool, defaults["charging"]),
        door_sensor=t.get("door_sensor", bool, defaults["door_sensor"]),
        item_sensor=t.get("item_sensor", bool, defaults["item_sensor"]),
        bus=bus_name,
        board=t.get("board", int) if driver == "serial" or t.has("board") else None,
        channel=t.get("channel", int) if driver == "serial" or t.has("channel") else None,
        relay_pin=_pin(t, "relay_pin"),
        door_pin=_pin(t, "door_pin"),
        item_pin=_pin(t, "item_pin"),
    )
    if driver == "serial" and spec.bus in [b.name for b in buses]:
        bus = next(b for b in buses if b.name == spec.bus)
        board_ok = spec.board in bus.boards
        listed = ", ".join(map(str, bus.boards))
        t.check(board_ok, "board", f"{spec.board} is not on bus {bus.name!r} (boards: {listed})")
        if board_ok and spec.channel is not None and not 1 <= spec.channel <= bus.channels:
            t.check(
                False,
                "channel",
                f"{spec.channel} is out of range 1-{bus.channels} for board {spec.board}",
            )
    if driver == "gpio":
        t.check(
            spec.relay_pin is not None, "relay_pin", "missing; every GPIO lock needs a relay pin"
        )
        if spec.door_sensor:
            t.check(
                spec.door_pin is not None,
                "door_pin",
                "missing; set door_sensor = false for a door without a switch",
            )
        if spec.item_sensor:
            t.check(
                spec.item_pin is not None,
                "item_pin",
                "missing; set item_sensor = false where there is no item sensor",
            )
    t.finish()
    return spec


def auto_compartments(
    buses: tuple[BusSpec, ...], defaults: dict[str, Any] | None = None
) -> tuple[CompartmentSpec, ...]:
    """Number compartments 1..N across buses and boards in the order given, channel 1 first."""
    defaults = defaults or {}
    result: list[CompartmentSpec] = []
    for bus in buses:
        for board in bus.boards:
            for channel in range(1, bus.channels + 1):
                number = len(result) + 1
                result.append(
                    CompartmentSpec(number, bus=bus.name, board=board, channel=channel, **defaults)
                )
    return tuple(result)


def _check_cabinet(
    t: Table, driver: str, buses: tuple[BusSpec, ...], compartments: tuple[CompartmentSpec, ...]
) -> None:
    names = [b.name for b in buses]
    for name in sorted({n for n in names if names.count(n) > 1}):
        t.check(False, "buses", f"two buses are called {name!r}")
    if driver == "serial":
        t.check(
            bool(buses), "buses", "missing; a serial cabinet needs at least one [[locker.buses]]"
        )
        ports = [b.port for b in buses if b.port != EMULATOR_PORT]
        for port in sorted({p for p in ports if ports.count(p) > 1}):
            t.check(False, "buses", f"two buses use port {port!r}")
    numbers = [c.number for c in compartments]
    for number in sorted({n for n in numbers if numbers.count(n) > 1}):
        t.check(False, "compartments", f"compartment {number} is defined twice")
    if numbers and len(set(numbers)) == len(numbers):
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        t.check(
            not missing,
            "compartments",
            f"compartments must be numbered 1-{max(numbers)} without gaps; missing {missing}",
        )
    wired: dict[tuple[object, ...], int] = {}
    for c in compartments:
        keys: list[tuple[object, ...]] = []
        if driver == "serial":
            keys.append(("channel", c.bus, c.board, c.channel))
        elif driver == "gpio":
            keys += [("pin", p) for p in (c.relay_pin, c.door_pin, c.item_pin) if p is not None]
        for key in keys:
            if key in wired:
                what = (
                    f"bus {c.bus!r} board {c.board} channel {c.channel}"
                    if key[0] == "channel"
                    else f"pin {key[1]}"
                )
                t.check(
                    False,
                    "compartments",
                    f"compartments {wired[key]} and {c.number} both use {what}",
                )
            else:
                wired[key] = c.number
