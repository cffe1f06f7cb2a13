"""Typed kiosk settings, read from TOML and validated once, with every error at once.

``load_settings(path)`` returns frozen ``Settings`` or raises ``ConfigError`` whose
``errors`` list names each problem with its key path and the expected form.
``config/kiosk.example.toml`` documents every key; ``config/demo.toml`` is the default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.eid.identity import DOCUMENT_TYPES
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
from kiosk.core.policy import CorePolicy
from kiosk.settings_core import StoreSettings, read_flows, read_store
from kiosk.tomlcheck import Errors, Table

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.toml"
DRIVERS = ("serial", "gpio", "simulated")
LANGUAGES = ("nl", "fr", "en")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EID_DRIVERS = ("pcsc", "simulated")
SIZES = ("S", "M", "L")
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
EMULATOR_PORT = "emulator"  # a bus port of this name runs the built-in board emulator


class ConfigError(Exception):
    """The configuration cannot be used; ``errors`` holds one line per problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} error(s): " + "; ".join(errors))


@dataclass(frozen=True)
class KioskSettings:
    """Who this kiosk is."""

    name: str = "digibank-kiosk"
    language: str = "nl"


@dataclass(frozen=True)
class LoggingSettings:
    """Where and how much to log."""

    level: str = "INFO"


@dataclass(frozen=True)
class EidSettings:
    """The Belgian eID reader (``[eid]``); without the section: the simulated reader.

    The pepper file is only named here; ``bootstrap`` reads it at start-up
    (``hardware.eid.privacy.load_pepper``), so a missing file stops the kiosk there.
    """

    driver: str = "simulated"  # "pcsc" | "simulated"
    reader: str = ""  # PC/SC reader name; "" = the first reader found
    trust_dir: str = ""  # directory of trusted root certificates; "" = none
    accept_unverified: bool = False  # accept cards whose files are not proven authentic
    read_photo: bool = False  # read the photo (~3 KB) to check its hash
    pepper_file: str = ""  # secret for borrower keys; required for the pcsc driver
    grace_days: int = 0  # an expired card is still accepted this many days
    accepted_document_types: tuple[str, ...] | None = None  # None: every document type
    read_timeout_s: float = 10.0  # longest a whole card read may take


@dataclass(frozen=True)
class Settings:
    """Everything the kiosk is configured with."""

    kiosk: KioskSettings
    logging: LoggingSettings
    locker: CabinetSpec
    source: str = "<defaults>"
    eid: EidSettings = field(default_factory=EidSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    flows: CorePolicy = field(default_factory=CorePolicy)


def load_settings(path: str | Path) -> Settings:
    """Read and validate the TOML file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), ["the file is not UTF-8 text"]) from None
    return parse_settings_text(text, str(path))


def parse_settings_text(text: str, source: str = "<text>") -> Settings:
    """Validate TOML ``text``; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    return parse_settings(data, source)


def parse_settings(data: dict[str, Any], source: str = "<dict>") -> Settings:
    """Validate already-parsed TOML data; raises ``ConfigError`` listing every error."""
    errors = Errors()
    root = Table(data, "", errors)
    kiosk_t = root.table("kiosk")
    kiosk = KioskSettings(
        name=kiosk_t.get("name", str, "digibank-kiosk"),
        language=kiosk_t.get("language", str, "nl", choices=LANGUAGES),
    )
    kiosk_t.finish()
    log_t = root.table("logging")
    level = log_t.get("level", str, "INFO")
    log_t.check(
        level.upper() in LOG_LEVELS, "level", f"{level!r} is not one of {', '.join(LOG_LEVELS)}"
    )
    log_t.finish()
    locker = _cabinet(root.table("locker"))
    eid = _eid(root.table("eid"))
    store = read_store(root.table("store"))
    flows = read_flows(root.table("flows"))
    root.finish()
    if errors:
        raise ConfigError(source, errors.items)
    return Settings(kiosk, LoggingSettings(level.upper()), locker, source, eid, store, flows)


# --- the eID reader ---------------------------------------------------------------------


def _eid(t: Table) -> EidSettings:
    driver = t.get("driver", str, "simulated", choices=EID_DRIVERS)
    trust_dir = t.get("trust_dir", str, "")
    accept_unverified = t.get("accept_unverified", bool, False)
    pepper_file = t.get("pepper_file", str, "")
    types: tuple[str, ...] | None = None
    if t.has("accepted_document_types"):
        types = tuple(_document_types(t))
    settings = EidSettings(
        driver=driver,
        reader=t.get("reader", str, ""),
        trust_dir=trust_dir,
        accept_unverified=accept_unverified,
        read_photo=t.get("read_photo", bool, False),
        pepper_file=pepper_file,
        grace_days=t.get("grace_days", int, 0, low=0, high=3650),
        accepted_document_types=types,
        read_timeout_s=_ms(t, "read_timeout_ms", 10000, 500, 120000),
    )
    if driver == "pcsc":
        # Checked here so `config check` catches it; the file itself is read at start-up.
        t.check(
            bool(pepper_file.strip()),
            "pepper_file",
            "missing; the pcsc reader needs the secret pepper file that borrower keys are "
            "derived from (e.g. /etc/digibank-kiosk/pepper, readable by the kiosk only)",
        )
        t.check(
            bool(trust_dir.strip()) or accept_unverified,
            "trust_dir",
            "missing; without trusted root certificates no card can be verified and every "
            "card is refused: set trust_dir, or accept_unverified = true",
        )
    t.finish()
    return settings


def _document_types(t: Table) -> list[str]:
    key = "accepted_document_types"
    codes = t.get_list(key, str)  # reports items that are not text
    raw = t.data[key] if isinstance(t.data[key], list) else []
    for index, code in enumerate(raw):
        if not isinstance(code, str):
            continue
        if not (code.isascii() and code.isdigit()) or int(code) not in DOCUMENT_TYPES:
            t.errors.add(
                f"{t.key_path(key)}[{index}]",
                f"{code!r} is not a document type code; known codes: "
                + _ranges(sorted(DOCUMENT_TYPES)),
            )
    t.check(
        t.data[key] != [],
        key,
        "empty: no card would be accepted; leave the key out to accept every document type",
    )
    return codes


def _ranges(numbers: list[int]) -> str:
    """``[1, 6, 7, 8, 11]`` -> ``"1, 6-8, 11"``."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


# --- the cabinet --------------------------------------------------------------------------


def _ms(table: Table, key: str, default: float, low: float, high: float) -> float:
    return table.get(key, float, default, low=low, high=high) / 1000


def _cabinet(t: Table) -> CabinetSpec:
    driver = t.get("driver", str, "simulated", choices=DRIVERS)
    o = t.table("open")
    open_timing = OpenTiming(
        watch_s=_ms(o, "watch_ms", 4000, 100, 30000),
        retry=o.get("retry", bool, True),
        cooldown_s=_ms(o, "cooldown_ms", 2000, 0, 60000),
        check_interval_s=_ms(o, "check_interval_ms", 50, 5, 1000),
    )
    o.finish()
    p = t.table("poll")
    poll = PollTiming(
        interval_s=_ms(p, "interval_ms", 250, 10, 60000),
        offline_after=p.get("offline_after", int, 3, low=1, high=100),
        stable_reads=p.get("stable_reads", int, 2, low=1, high=10),
        chatter_changes=p.get("chatter_changes", int, 6, low=2, high=1000),
        chatter_window_s=_ms(p, "chatter_window_ms", 10000, 100, 3600000),
    )
    p.finish()
    buses = tuple(_bus(b) for b in t.tables("buses"))
    gpio = _gpio(t.table("gpio"))
    s = t.table("simulation")
    simulation = SimulationSpec(
        latency_s=_ms(s, "latency_ms", 0, 0, 10000), auto_open=s.get("auto_open", bool, True)
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
        reply_timeout_s=_ms(t, "reply_timeout_ms", 300, 20, 5000),
        gap_s=None if gap < 0 else gap / 1000,
        silence_s=_ms(t, "silence_ms", 25, 1, 1000),
        exclusive=t.get("exclusive", bool, True),
        reconnect_max_s=_ms(t, "reconnect_max_ms", 30000, 100, 600000),
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
