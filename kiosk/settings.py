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
from hardware.locker.layout import CabinetSpec
from kiosk.core.policy import CorePolicy
from kiosk.settings_cabinet import EMULATOR_PORT as EMULATOR_PORT  # re-exported
from kiosk.settings_cabinet import ms as _ms
from kiosk.settings_cabinet import read_cabinet
from kiosk.settings_core import StoreSettings, read_flows, read_store
from kiosk.settings_sync import SyncSettings, read_sync
from kiosk.tomlcheck import Errors, Table

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.toml"
LANGUAGES = ("nl", "fr", "en")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EID_DRIVERS = ("pcsc", "simulated")


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
    sync: SyncSettings = field(default_factory=SyncSettings)


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
    locker = read_cabinet(root.table("locker"))
    eid = _eid(root.table("eid"))
    store = read_store(root.table("store"))
    flows = read_flows(root.table("flows"))
    sync = read_sync(root.table("sync"))
    root.finish()
    if errors:
        raise ConfigError(source, errors.items)
    return Settings(kiosk, LoggingSettings(level.upper()), locker, source, eid, store, flows, sync)


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
