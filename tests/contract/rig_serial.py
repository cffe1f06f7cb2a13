"""Contract rigs for ``SerialLocker``: the real driver on a board emulator behind a pty.

One rig per board family. Compartments 1-2 sit on the first board (channels 1 and 2),
3-4 on the second (channels 1 and 16, so the high status group is exercised too);
compartment 1 has an item sensor where the family reports one (CU).
"""

from __future__ import annotations

from collections.abc import Callable

from hardware.locker.layout import BusSpec, CompartmentSpec
from tests.contract.rig import FAST_OPEN, FAST_POLL, Rig

# family -> (baud, board addresses)
FAMILIES: dict[str, tuple[int, tuple[int, int]]] = {"cu": (19200, (0, 1)), "8a": (9600, (1, 2))}


class SerialRig:
    """A started ``SerialLocker`` on a ``BoardEmulator`` of one family."""

    def __init__(self, family: str) -> None:
        # Imported here: a missing emulator or driver shows as a failing rig, not at import.
        from hardware.locker.emulator import BoardEmulator
        from hardware.locker.serial_locker import SerialLocker

        baud, boards = FAMILIES[family]
        self.name = f"serial-{family}"
        self.wiring = {1: (boards[0], 1), 2: (boards[0], 2), 3: (boards[1], 1), 4: (boards[1], 16)}
        self.numbers = tuple(self.wiring)
        self.emulator = BoardEmulator(family, boards, baud=baud)
        port = self.emulator.start_pty()
        try:
            bus = BusSpec(
                name="bus1", port=port, family=family, boards=boards, baud=baud, reply_timeout_s=0.1
            )
            specs = [
                CompartmentSpec(
                    n, bus="bus1", board=a, channel=ch, item_sensor=(n == 1 and family == "cu")
                )
                for n, (a, ch) in self.wiring.items()
            ]
            self.locker = SerialLocker(specs, [bus], FAST_OPEN, FAST_POLL)
            self.locker.start()
        except BaseException:
            self.emulator.stop()
            raise

    def close_door(self, n: int) -> None:
        """The resident closes the door."""
        self.emulator.close_door(*self.wiring[n])

    def open_by_hand(self, n: int) -> None:
        """Someone opens the door without a command."""
        self.emulator.open_door(*self.wiring[n])

    def set_item(self, n: int, present: bool) -> None:
        """Put an item in or take it out."""
        self.emulator.set_item(*self.wiring[n], present)

    def jam(self, n: int, on: bool = True) -> None:
        """The lock of ``n`` takes pulses but the door stays shut."""
        self.emulator.jam(*self.wiring[n], on)

    def board_offline(self, on: bool = True) -> None:
        """The board of compartment 1 stops answering."""
        self.emulator.set_offline(self.wiring[1][0], on)

    def pulses(self, n: int) -> int:
        """Pulses the emulated lock ``n`` received on the wire."""
        return self.emulator.pulses(*self.wiring[n])

    def close(self) -> None:
        """Close the locker, then the emulator (both idempotent)."""
        try:
            self.locker.close()
        finally:
            self.emulator.stop()


def _factory(family: str) -> Callable[[], Rig]:
    def factory() -> Rig:
        return SerialRig(family)

    factory.__name__ = f"serial-{family}"
    factory.name = f"serial-{family}"  # type: ignore[attr-defined]
    return factory


RIGS: list[Callable[[], Rig]] = [_factory(family) for family in FAMILIES]
