"""The locker driver for RS485 lock boards: one ``SerialBus`` and one poller per bus.

``LockerBase`` carries out the open sequence, change detection and board health; this
module only turns board status frames into door/item readings (applying each bus's
feedback polarity) and unlock frames into pulses. Each bus has its own poll thread, so a
dead bus (unplugged adapter, every board silent) never slows the boards of another.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from hardware.errors import (
    ConfigurationError,
    DeviceBusy,
    DeviceUnavailable,
    HardwareError,
    ProtocolError,
)
from hardware.locker.base import BoardKey, DoorState, LockerState
from hardware.locker.bus import OpenPort, SerialBus
from hardware.locker.codecs import get_codec
from hardware.locker.codecs.base import BoardStatus, Codec, PulseTimeReply, UnlockAck
from hardware.locker.driver import LockerBase, PollThread
from hardware.locker.layout import BusSpec, CompartmentSpec, OpenTiming, PollTiming

log = logging.getLogger(__name__)

Reading = tuple[CompartmentSpec, DoorState, bool | None]


class SerialLocker(LockerBase):
    """A cabinet of RS485 lock boards on one or more buses.

    The wiring is checked at construction (``ConfigurationError``): every compartment
    names a configured bus, a board listed on that bus and a channel in 1..bus.channels,
    and no two compartments share a lock.
    """

    def __init__(
        self,
        compartments: Sequence[CompartmentSpec],
        buses: Sequence[BusSpec],
        open_timing: OpenTiming | None = None,
        poll: PollTiming | None = None,
        *,
        open_port: OpenPort | None = None,
    ) -> None:
        super().__init__(compartments, open_timing, poll)
        self._bus_specs: dict[str, BusSpec] = {}
        for bus in buses:
            if bus.name in self._bus_specs:
                raise ConfigurationError(f"bus {bus.name!r} is configured twice")
            self._bus_specs[bus.name] = bus
        codecs = {name: get_codec(spec.family) for name, spec in self._bus_specs.items()}
        self._check_wiring(codecs)
        self._buses = {
            name: SerialBus(spec, codecs[name], open_port=open_port)
            for name, spec in self._bus_specs.items()
        }
        # Frames are encoded once here, so a channel the codec cannot express fails now.
        self._board_specs: dict[BoardKey, list[CompartmentSpec]] = {}
        self._status_frames: dict[BoardKey, bytes] = {}
        self._pulse_time_frames: dict[BoardKey, bytes] = {}
        for name, spec in self._bus_specs.items():
            for address in spec.boards:
                key = (name, address)
                self._board_specs[key] = []
                self._status_frames[key] = codecs[name].status_request(address)
                frame = (
                    codecs[name].pulse_time_request(address, spec.pulse_ms)
                    if spec.pulse_ms is not None
                    else None
                )
                if frame is not None:
                    self._pulse_time_frames[key] = frame
        self._unlock_frames: dict[int, bytes] = {}
        for comp in self.compartments():
            self._board_specs[self._board_key(comp)].append(comp)
            codec = codecs[str(comp.bus)]
            self._unlock_frames[comp.number] = codec.unlock_request(
                int(comp.board or 0), int(comp.channel or 0)
            )
        self._pulse_time_pending: set[BoardKey] = set()
        self._pollers: list[PollThread] = []
        self._life = threading.Lock()  # start()/close() one at a time

    def _check_wiring(self, codecs: dict[str, Codec]) -> None:
        for name, bus in self._bus_specs.items():
            codec = codecs[name]
            for address in bus.boards:
                if address not in codec.addresses:
                    raise ConfigurationError(
                        f"bus {name}: board {address} is not a {codec.name} address "
                        f"({codec.addresses.start}..{codec.addresses.stop - 1})"
                    )
            if len(set(bus.boards)) != len(bus.boards):
                raise ConfigurationError(f"bus {name}: a board is listed twice")
        locks: dict[tuple[str, int, int], int] = {}
        for comp in self.compartments():
            where = f"compartment {comp.number}"
            if comp.bus is None or comp.board is None or comp.channel is None:
                raise ConfigurationError(f"{where}: bus, board and channel are all needed")
            bus = self._bus_specs.get(comp.bus)
            if bus is None:
                known = ", ".join(self._bus_specs) or "none"
                raise ConfigurationError(f"{where}: unknown bus {comp.bus!r} (buses: {known})")
            if comp.board not in bus.boards:
                raise ConfigurationError(
                    f"{where}: board {comp.board} is not listed on bus {bus.name} "
                    f"(boards: {', '.join(map(str, bus.boards))})"
                )
            if not 1 <= comp.channel <= bus.channels:
                raise ConfigurationError(
                    f"{where}: channel {comp.channel} is not in 1..{bus.channels} (bus {bus.name})"
                )
            lock = (comp.bus, comp.board, comp.channel)
            if lock in locks:
                raise ConfigurationError(
                    f"{where}: bus {comp.bus} board {comp.board} channel {comp.channel} "
                    f"is already compartment {locks[lock]}"
                )
            locks[lock] = comp.number

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Open every bus, set the pulse length where the family can, start the pollers.

        A bus whose port is missing is not fatal: it keeps retrying in the background and
        its boards go offline after the usual failed polls. A port held by another
        process raises DeviceBusy at once (everything opened so far is closed again).
        """
        with self._life:
            if self._pollers:
                return
            for bus in self._buses.values():
                try:
                    bus.open()
                except DeviceBusy:
                    for other in self._buses.values():
                        other.close()
                    raise
                except DeviceUnavailable as exc:
                    log.warning("bus %s: %s; retrying in the background", bus.name, exc)
                else:
                    log.info(
                        "bus %s on %s: %s boards %s, %d baud",
                        bus.name,
                        bus.spec.port,
                        bus.spec.family,
                        ",".join(map(str, bus.spec.boards)),
                        bus.spec.baud,
                    )
            self._register_boards(self._board_specs)
            self._pulse_time_pending = set(self._pulse_time_frames)
            for key in sorted(self._pulse_time_frames):
                if self._buses[key[0]].is_open:
                    self._send_pulse_time(key)
            for name in self._buses:
                poller = PollThread(
                    f"locker-poll-{name}", self._poll.interval_s, lambda n=name: self._poll_bus(n)
                )
                self._pollers.append(poller)
                poller.start()

    def close(self) -> None:
        """Stop the pollers and close every port; safe to call twice."""
        with self._life:
            pollers, self._pollers = self._pollers, []
            for poller in pollers:
                poller.stop()
            for bus in self._buses.values():
                bus.close()

    # -- LockerBase hooks -----------------------------------------------------------------

    def _board_key(self, spec: CompartmentSpec) -> BoardKey:
        return (str(spec.bus), int(spec.board or 0))

    def _board_port(self, key: BoardKey) -> str:
        bus = self._bus_specs.get(key[0])
        return bus.port if bus is not None else key[0]

    def _pulse(self, spec: CompartmentSpec) -> None:
        """Send the unlock frame; boards may not acknowledge it (the door read confirms)."""
        key = self._board_key(spec)
        self._buses[key[0]].request(
            self._unlock_frames[spec.number], address=key[1], want_reply=False, expect=UnlockAck
        )

    def _read(self, spec: CompartmentSpec) -> tuple[DoorState, bool | None]:
        """A fresh status read of the compartment's board (queued behind the poller)."""
        status = self._read_board(self._board_key(spec))
        return self._reading(spec, status)

    def refresh(self) -> LockerState:
        """Read every board once now (not once per compartment), then ``states()``."""
        for key in self._board_specs:
            self._poll_board(key, confirmed=True)
        return self.states()

    # -- polling ------------------------------------------------------------------------------

    def _poll_bus(self, name: str) -> None:
        """One poll round of one bus: each of its boards in turn, one status read each."""
        for key in self._board_specs:
            if key[0] == name:
                self._poll_board(key, confirmed=False)

    def _poll_board(self, key: BoardKey, *, confirmed: bool) -> None:
        try:
            status = self._read_board(key)
            readings = [(c, *self._reading(c, status)) for c in self._board_specs[key]]
        except HardwareError as exc:
            self._board_result(key, ok=False, reason=str(exc))
            with self._lock:
                if key in self._pulse_time_frames and self._board_online(key) is False:
                    self._pulse_time_pending.add(key)  # it may come back after a power cut
            return
        self._board_result(key, ok=True)
        for comp, door, item in readings:
            self._observe(comp.number, door, item, confirmed=confirmed)
        if key in self._pulse_time_pending:
            self._send_pulse_time(key)

    def _read_board(self, key: BoardKey) -> BoardStatus:
        reply = self._buses[key[0]].request(
            self._status_frames[key], address=key[1], expect=BoardStatus
        )
        if not isinstance(reply, BoardStatus):  # the bus filters; this guards the contract
            raise ProtocolError(f"{self._board_port(key)}: board {key[1]} sent no status")
        return reply

    def _reading(self, spec: CompartmentSpec, status: BoardStatus) -> tuple[DoorState, bool | None]:
        """Door and item of ``spec`` in a board status, with the bus's polarity applied."""
        bus = self._bus_specs[str(spec.bus)]
        index = int(spec.channel or 0) - 1
        if not 0 <= index < len(status.locks):
            raise ProtocolError(
                f"{bus.port}: board {status.address} reported {len(status.locks)} channels, "
                f"compartment {spec.number} is wired to channel {spec.channel}"
            )
        door = DoorState.CLOSED if bus.feedback.is_closed(status.locks[index]) else DoorState.OPEN
        item: bool | None = None
        if spec.item_sensor and status.items is not None and index < len(status.items):
            item = status.items[index]  # an IR bit that is set means "item present"
        return door, item

    def _send_pulse_time(self, key: BoardKey) -> None:
        bus = self._buses[key[0]]
        try:
            reply = bus.request(
                self._pulse_time_frames[key],
                address=key[1],
                want_reply=False,
                expect=PulseTimeReply,
            )
        except HardwareError as exc:
            log.warning("bus %s board %s: pulse length not set: %s", key[0], key[1], exc)
            return
        with self._lock:
            self._pulse_time_pending.discard(key)
        wanted = bus.spec.pulse_ms
        if isinstance(reply, PulseTimeReply) and reply.pulse_ms is not None:
            if abs(reply.pulse_ms - wanted) > 10:
                # The byte order of this command is unconfirmed on real boards: say so loudly.
                log.warning(
                    "bus %s board %s: asked for a %d ms pulse, the board reports %d ms",
                    key[0],
                    key[1],
                    wanted,
                    reply.pulse_ms,
                )
                return
            log.info("bus %s board %s: pulse length %d ms", key[0], key[1], reply.pulse_ms)
        else:
            log.info("bus %s board %s: pulse length %d ms sent (no answer)", key[0], key[1], wanted)
