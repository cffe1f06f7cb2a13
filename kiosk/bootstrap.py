"""The one place that picks drivers by name and wires them together.

Frontends (CLI, the UI) ask for a started device or core here and never import a driver
module themselves; swapping real hardware for an emulator or a simulator is a config
value. ``build_core`` opens the store and wires the core over a locker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from hardware.eid.base import CardReader
from hardware.errors import ConfigurationError
from hardware.locker.base import Locker
from hardware.locker.layout import BusSpec, CabinetSpec
from kiosk.core.clock import Clock, SystemClock
from kiosk.settings import EMULATOR_PORT, EidSettings, Settings

if TYPE_CHECKING:
    from hardware.locker.emulator import BoardEmulator
    from kiosk.core.engine import KioskCore
    from kiosk.sync.service import SyncService

log = logging.getLogger(__name__)


def build_locker(
    cabinet: CabinetSpec, stack: ExitStack, emulators: dict[str, BoardEmulator] | None = None
) -> Locker:
    """Build the locker named by ``cabinet.driver``, not yet started.

    Anything it starts on the side (a built-in board emulator, recorded by bus name in
    ``emulators`` when given) is registered on ``stack`` so closing the stack releases it.
    """
    if cabinet.driver == "serial":
        from hardware.locker.serial_locker import SerialLocker

        found = emulators if emulators is not None else {}
        buses = tuple(_with_emulator(bus, stack, found) for bus in cabinet.buses)
        return SerialLocker(cabinet.compartments, buses, cabinet.open_timing, cabinet.poll)
    if cabinet.driver == "gpio":
        from hardware.locker.gpio_locker import GpioLocker

        return GpioLocker(cabinet.compartments, cabinet.gpio, cabinet.open_timing, cabinet.poll)
    if cabinet.driver == "simulated":
        from hardware.locker.simulated import SimulatedLocker

        return SimulatedLocker(
            cabinet.compartments, cabinet.open_timing, cabinet.poll, cabinet.simulation
        )
    raise ValueError(f"unknown locker driver {cabinet.driver!r}")  # settings rule this out


def start_locker(
    cabinet: CabinetSpec, stack: ExitStack, emulators: dict[str, BoardEmulator] | None = None
) -> Locker:
    """Build and start the locker; ``stack`` closes it (and its emulator) at the end."""
    locker = build_locker(cabinet, stack, emulators)
    locker.start()
    stack.callback(locker.close)
    return locker


def _with_emulator(bus: BusSpec, stack: ExitStack, emulators: dict[str, BoardEmulator]) -> BusSpec:
    """Start the built-in board emulator for a bus whose port is "emulator"."""
    if bus.port != EMULATOR_PORT:
        return bus
    from hardware.locker.emulator import BoardEmulator

    emulator = BoardEmulator(
        bus.family, bus.boards, channels=bus.channels, feedback=bus.feedback, baud=bus.baud
    )
    port = emulator.start_pty()
    stack.callback(emulator.stop)
    emulators[bus.name] = emulator
    log.info("bus %s: built-in %s board emulator on %s", bus.name, bus.family, port)
    return replace(bus, port=port)


@dataclass(frozen=True)
class CardReaderSetup:
    """A card reader, not yet started, with the secret and rules the core needs with it."""

    reader: CardReader
    pepper: bytes  # HMAC key for borrower keys; never logged
    settings: EidSettings


def build_card_reader(eid: EidSettings) -> CardReaderSetup:
    """Build the card reader named by ``eid.driver`` (not started).

    Reads the pepper file and the trust directory now, so a missing pepper or an
    unreadable certificate stops the kiosk at start-up with a clear message.
    """
    from hardware.eid.privacy import load_pepper
    from hardware.eid.verify import load_trusted_roots

    # The simulated reader (demo, tests) may run without a pepper: it gets a fixed one.
    pepper = load_pepper(eid.pepper_file) if eid.pepper_file else b"demo-pepper-not-secret"
    if eid.driver == "pcsc" and not eid.pepper_file:
        raise ConfigurationError("eid.pepper_file: missing; the pcsc reader needs the site pepper")
    roots = load_trusted_roots(eid.trust_dir) if eid.trust_dir else []
    reader: CardReader
    if eid.driver == "pcsc":
        from hardware.eid.pcsc import PcscReader

        reader = PcscReader(
            reader_name=eid.reader or None, trusted_roots=roots, read_photo=eid.read_photo
        )
    else:
        from hardware.eid.simulated import SimulatedReader

        reader = SimulatedReader(trusted_roots=roots, read_photo=eid.read_photo)
    log.info("card reader: %s, %d trusted root(s)", eid.driver, len(roots))
    return CardReaderSetup(reader, pepper, eid)


def build_core(
    settings: Settings,
    locker: Locker,
    stack: ExitStack,
    *,
    pepper: bytes | None = None,
    clock: Clock | None = None,
    checkpoint: Callable[[str], None] | None = None,
    database: str | None = None,
) -> KioskCore:
    """Open the store and build the core over ``locker`` (not started).

    A database that cannot be opened (damaged, unwritable, a newer schema) does not stop
    the program: the core starts out of order with an alarm, so the screen says so and
    staff see why, and the file is left untouched for rescue.
    """
    from kiosk.core.engine import KioskCore
    from kiosk.core.identify import CardRules
    from kiosk.core.ports import StoreError
    from kiosk.store import open_store

    clock = clock or SystemClock()
    path = Path(database or settings.store.path)
    store = None
    problem = ""
    try:
        store = open_store(path, clock, checkpoint=checkpoint)
        stack.callback(store.close)
    except StoreError as exc:
        problem = str(exc)
        log.error("the kiosk database cannot be used, refusing service: %s", exc)
    eid = settings.eid
    core = KioskCore(
        store=store,
        locker=locker,
        policy=settings.flows,
        clock=clock,
        pepper=pepper,
        card_rules=CardRules(
            accept_unverified=eid.accept_unverified,
            grace_days=eid.grace_days,
            accepted_document_types=eid.accepted_document_types,
        ),
        checkpoint=checkpoint,
        disk_path=path.parent if path.parent.is_dir() else None,
        store_problem=problem,
    )
    stack.callback(core.stop)
    return core


def build_sync(
    settings: Settings, core: KioskCore, stack: ExitStack, *, clock: Clock | None = None
) -> SyncService | None:
    """The sync link of ``core`` (not started), or None without ``[sync] url`` or store.

    Staff "sync" and the remote "refresh" command reach it through the core's
    ``on_sync_request``; ``stack`` stops it (before the core: callbacks run in reverse).
    Reads the token file now: a missing one raises ``ConfigError`` with the key path.
    """
    from kiosk.sync.service import SyncService

    if not settings.sync.enabled or core.store is None:
        log.info("no loan server configured: the kiosk runs standalone")
        return None
    service = SyncService(settings.sync, core.store, core, clock or core.clock)
    core.machine.connect_sync(service.request_now)
    stack.callback(service.stop)
    log.info("sync link to %s", settings.sync.url)
    return service
