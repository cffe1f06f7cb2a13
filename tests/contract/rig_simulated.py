"""Contract rig for the in-memory ``SimulatedLocker``."""

from __future__ import annotations

from collections.abc import Callable

from hardware.locker.layout import CompartmentSpec, SimulationSpec
from hardware.locker.simulated import SimulatedLocker
from tests.contract.rig import FAST_OPEN, FAST_POLL, Rig


class SimulatedRig:
    """Four compartments; compartment 1 has an item sensor."""

    name = "simulated"

    def __init__(self) -> None:
        specs = [CompartmentSpec(1, item_sensor=True)] + [CompartmentSpec(n) for n in (2, 3, 4)]
        self.sim = SimulatedLocker(specs, FAST_OPEN, FAST_POLL, SimulationSpec(auto_open=True))
        self.locker = self.sim
        self.numbers = (1, 2, 3, 4)
        self.sim.start()

    def close_door(self, n: int) -> None:
        """The resident closes the door."""
        self.sim.close_door(n)

    def open_by_hand(self, n: int) -> None:
        """Someone opens the door without a command."""
        self.sim.open_by_hand(n)

    def set_item(self, n: int, present: bool) -> None:
        """Put an item in or take it out."""
        self.sim.set_item(n, present)

    def jam(self, n: int, on: bool = True) -> None:
        """Jam the lock of ``n``."""
        self.sim.faults.jam(n, on)

    def board_offline(self, on: bool = True) -> None:
        """The (only) board stops answering."""
        self.sim.faults.board_offline(on)

    def pulses(self, n: int) -> int:
        """Pulses lock ``n`` got."""
        return self.sim.pulses(n)

    def close(self) -> None:
        """Close the locker (idempotent)."""
        self.sim.close()


def simulated() -> Rig:
    """A simulated cabinet with the short contract timings."""
    return SimulatedRig()


RIGS: list[Callable[[], Rig]] = [simulated]
