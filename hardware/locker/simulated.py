"""An in-memory cabinet for the demo and fast tests.

``SimulatedLocker`` is a real ``LockerBase`` driver whose "hardware" is a small world
model: doors, items, locks that pop a spring-loaded door open when pulsed. A poller
watches that world exactly as the serial poller watches a board, so events go through
the same change detection, chatter filter and board-health counting. Faults (jammed
locks, a silent or garbled board, chatter, latency) can be switched on and off at run
time from any thread, which is what the contract tests and the demo's fault panel use.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from hardware.errors import (
    ConfigurationError,
    DeviceTimeout,
    DeviceUnavailable,
    HardwareError,
    ProtocolError,
    UnknownCompartment,
)
from hardware.locker.base import BoardKey, DoorState, LockerState
from hardware.locker.driver import LockerBase, PollThread
from hardware.locker.layout import CompartmentSpec, OpenTiming, PollTiming, SimulationSpec

log = logging.getLogger(__name__)

SIM_BOARD: BoardKey = ("sim", 0)
PULSE_HISTORY = 256


@dataclass
class _SimCompartment:
    """The physical truth of one simulated compartment."""

    door_open: bool = False
    item: bool = False
    jammed: bool = False
    chatter: float = 0.0  # probability that one read reports the door the wrong way
    # The last pulse times only (a demo runs for days); the count is kept in full.
    pulse_times: deque[float] = field(default_factory=lambda: deque(maxlen=PULSE_HISTORY))
    pulse_count: int = 0


class _World:
    """Doors, items and board faults, guarded by one lock (tests poke it from any thread)."""

    def __init__(self, numbers: Sequence[int], spec: SimulationSpec, rng: random.Random) -> None:
        self.lock = threading.Lock()
        self.compartments = {n: _SimCompartment() for n in numbers}
        self.auto_open = spec.auto_open
        self.latency_s = spec.latency_s
        self.offline = False
        self.silent = False
        self.garbled = False
        self.rng = rng

    def get(self, number: int) -> _SimCompartment:
        """The compartment ``number``; callers hold ``lock``."""
        try:
            return self.compartments[number]
        except KeyError:
            raise UnknownCompartment(f"simulated cabinet has no compartment {number!r}") from None

    def wait_latency(self) -> None:
        """Take as long as one exchange with the board takes (the only real sleep here)."""
        with self.lock:
            latency = self.latency_s
        if latency > 0:
            time.sleep(latency)

    def check_answers(self, *, reading: bool) -> None:
        """Raise what a board with the current faults would make the driver raise."""
        if self.offline:
            raise DeviceUnavailable("simulated board sim/0 is offline")
        if self.silent:
            raise DeviceTimeout("simulated board sim/0 did not answer")
        if reading and self.garbled:
            raise ProtocolError("simulated board sim/0 sent a garbled status frame")


class SimulatedFaults:
    """Fault injection for a ``SimulatedLocker``; every switch is thread-safe."""

    def __init__(self, world: _World) -> None:
        self._world = world

    def jam(self, number: int, on: bool = True) -> None:
        """A jammed lock takes pulses but the door does not move."""
        with self._world.lock:
            self._world.get(number).jammed = on

    def no_answer(self, on: bool = True) -> None:
        """The board stays silent: reads and pulses raise DeviceTimeout."""
        with self._world.lock:
            self._world.silent = on

    def garbled(self, on: bool = True) -> None:
        """The board answers rubbish: reads raise ProtocolError (pulses still work)."""
        with self._world.lock:
            self._world.garbled = on

    def board_offline(self, on: bool = True) -> None:
        """The board is gone (unplugged adapter): reads and pulses raise DeviceUnavailable."""
        with self._world.lock:
            self._world.offline = on

    def forced_open(self, number: int) -> None:
        """Someone opens door ``number`` without a command (same as ``open_by_hand``)."""
        with self._world.lock:
            self._world.get(number).door_open = True

    def chatter(self, number: int, on: bool = True, probability: float = 0.3) -> None:
        """The door reading of ``number`` flips at random (a loose reed switch)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"chatter probability must be within 0..1, not {probability}")
        with self._world.lock:
            self._world.get(number).chatter = probability if on else 0.0

    @property
    def latency_s(self) -> float:
        """How long every read and pulse takes, in seconds."""
        with self._world.lock:
            return self._world.latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"latency must not be negative, not {value}")
        with self._world.lock:
            self._world.latency_s = value

    def clear(self) -> None:
        """Switch every fault off (latency back to zero)."""
        with self._world.lock:
            self._world.offline = self._world.silent = self._world.garbled = False
            self._world.latency_s = 0.0
            for compartment in self._world.compartments.values():
                compartment.jammed = False
                compartment.chatter = 0.0


class SimulatedLocker(LockerBase):
    """A cabinet that lives in memory: one pseudo-board ("sim", 0), no real I/O.

    All doors start closed and empty. ``faults`` switches failures on and off.
    """

    def __init__(
        self,
        compartments: Sequence[CompartmentSpec],
        open_timing: OpenTiming | None = None,
        poll: PollTiming | None = None,
        simulation: SimulationSpec | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        numbers = [spec.number for spec in compartments]
        if not numbers:
            raise ConfigurationError("simulated cabinet: no compartments configured")
        if len(set(numbers)) != len(numbers):
            raise ConfigurationError(f"simulated cabinet: duplicate compartment numbers {numbers}")
        super().__init__(compartments, open_timing, poll)
        self._world = _World(numbers, simulation or SimulationSpec(), rng or random.Random())
        self.faults = SimulatedFaults(self._world)
        self._poller: PollThread | None = None
        self._state_lock = threading.Lock()  # guards _poller against start/close races

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching the simulated world (idempotent; may start again after close)."""
        with self._state_lock:
            if self._poller is not None:
                return
            self._register_boards([SIM_BOARD])
            self._poller = PollThread("sim-locker-poll", self._poll.interval_s, self._poll_board)
            self._poller.start()
        log.info("simulated locker started with %d compartments", len(self._specs))

    def close(self) -> None:
        """Stop the poller; safe to call twice."""
        with self._state_lock:
            poller, self._poller = self._poller, None
        if poller is not None:
            poller.stop()

    def refresh(self) -> LockerState:
        """Read the board once now (one batch read, like the poller) and return states()."""
        self._poll_board(confirmed=True)
        return self.states()

    # -- the world, as tests and the demo see it ----------------------------------------------

    def close_door(self, number: int) -> None:
        """The resident pushes door ``number`` shut."""
        with self._world.lock:
            self._world.get(number).door_open = False

    def open_by_hand(self, number: int) -> None:
        """Door ``number`` opens without a command (forced, or a lock that let go)."""
        self.faults.forced_open(number)

    def set_item(self, number: int, present: bool) -> None:
        """Put an item into compartment ``number`` or take it out."""
        with self._world.lock:
            self._world.get(number).item = present

    def door_is_open(self, number: int) -> bool:
        """The physical truth of door ``number`` (not what the sensor reports)."""
        with self._world.lock:
            return self._world.get(number).door_open

    def item(self, number: int) -> bool:
        """Whether an item is physically in compartment ``number``."""
        with self._world.lock:
            return self._world.get(number).item

    def pulses(self, number: int) -> int:
        """How many pulses the lock of ``number`` received."""
        with self._world.lock:
            return self._world.get(number).pulse_count

    def pulse_times(self, number: int) -> list[float]:
        """When (``time.monotonic()``) the lock of ``number`` was pulsed (the last 256)."""
        with self._world.lock:
            return list(self._world.get(number).pulse_times)

    # -- LockerBase -----------------------------------------------------------------------------

    def _board_key(self, spec: CompartmentSpec) -> BoardKey:
        return SIM_BOARD

    def _board_port(self, key: BoardKey) -> str:
        return "memory"

    def _pulse(self, spec: CompartmentSpec) -> None:
        self._world.wait_latency()
        with self._world.lock:
            self._world.check_answers(reading=False)
            compartment = self._world.get(spec.number)
            compartment.pulse_times.append(time.monotonic())
            compartment.pulse_count += 1
            if self._world.auto_open and not compartment.jammed:
                compartment.door_open = True  # the spring pushes the released door open
        log.debug("simulated pulse on compartment %s", spec.number)

    def _read(self, spec: CompartmentSpec) -> tuple[DoorState, bool | None]:
        self._world.wait_latency()
        with self._world.lock:
            self._world.check_answers(reading=True)
            return self._sense(spec)

    def _sense(self, spec: CompartmentSpec) -> tuple[DoorState, bool | None]:
        """What the sensors of ``spec`` report now; the caller holds the world lock."""
        compartment = self._world.get(spec.number)
        door: DoorState = DoorState.UNKNOWN
        if spec.door_sensor:
            is_open = compartment.door_open
            if compartment.chatter and self._world.rng.random() < compartment.chatter:
                is_open = not is_open
            door = DoorState.OPEN if is_open else DoorState.CLOSED
        item = compartment.item if spec.item_sensor else None
        return door, item

    def _poll_board(self, confirmed: bool = False) -> None:
        """One batch status read of the pseudo-board, as a real board poll would do.

        Board health counts one result per poll (not per compartment), so "offline after
        N failed polls" means N polls whatever the number of compartments.
        """
        self._world.wait_latency()
        try:
            with self._world.lock:
                self._world.check_answers(reading=True)
                readings = {n: self._sense(spec) for n, spec in self._specs.items()}
        except HardwareError as exc:
            self._board_result(SIM_BOARD, ok=False, reason=str(exc))
            return
        self._board_result(SIM_BOARD, ok=True)
        for number, (door, item) in readings.items():
            self._observe(number, door, item, confirmed=confirmed)
