"""The cabinet behind an emulated bus: boards, locks, doors, item sensors and faults.

No I/O here: ``Boards.answer`` turns one request frame into the reply frames the boards
would put on the wire (none, one, or one per board for a broadcast). The transports in
``hardware.locker.emulator`` pace those bytes and move them over a pty or TCP.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from hardware.errors import ConfigurationError, ProtocolError
from hardware.locker.codecs.base import (
    BoardStatus,
    Codec,
    PulseTimeRequest,
    StatusRequest,
    UnlockRequest,
)
from hardware.locker.layout import Feedback

logger = logging.getLogger(__name__)

FACTORY_PULSE_MS = 500  # what an emulated board reports before a driver sets its pulse


@dataclass
class _Lock:
    """One channel: the solenoid, the door it holds and the compartment's item sensor."""

    open: bool = False
    item: bool = False
    jammed: bool = False
    chatter: bool = False
    opens_at: float | None = None  # a released spring-loaded door pops open at this time
    pulse_times: list[float] = field(default_factory=list)


@dataclass
class _Board:
    """One board on the bus with its fault switches."""

    address: int
    locks: list[_Lock]
    offline: bool = False
    garbled: bool = False
    wrong_address: bool = False
    short_reply: bool = False
    pulse_ms: int | None = None  # set by a pulse-time command (CU 37)


class Boards:
    """Every emulated board of one bus; thread-safe (the world and the bus both use it)."""

    def __init__(
        self,
        codec: Codec,
        addresses: Sequence[int],
        *,
        channels: int,
        feedback: Feedback,
        item_sensors: bool,
        auto_open: bool,
        open_delay_s: float,
        rng: random.Random | None = None,
    ) -> None:
        if not addresses:
            raise ConfigurationError("an emulated bus needs at least one board")
        if len(set(addresses)) != len(addresses):
            raise ConfigurationError(f"board addresses repeat: {list(addresses)}")
        bad = [a for a in addresses if a not in codec.addresses]
        if bad:
            raise ConfigurationError(
                f"{codec.name} boards cannot have address {bad[0]}: choose from "
                f"{codec.addresses.start}..{codec.addresses.stop - 1}"
            )
        if not 1 <= channels <= codec.max_channels:
            raise ConfigurationError(
                f"{codec.name} boards have 1..{codec.max_channels} channels, not {channels}"
            )
        if open_delay_s < 0:
            raise ConfigurationError(f"open_delay_s must be >= 0, not {open_delay_s}")
        self.codec = codec
        self.addresses = tuple(addresses)
        self.channels = channels
        self.feedback = Feedback(feedback)
        self.item_sensors = item_sensors
        self.auto_open = auto_open
        self.open_delay_s = open_delay_s
        self._rng = rng or random.Random()
        self._lock = threading.RLock()
        self._boards = {a: _Board(a, [_Lock() for _ in range(channels)]) for a in self.addresses}
        self._requests = 0

    # --- lookups ---------------------------------------------------------------------------
    def _board(self, address: int) -> _Board:
        try:
            return self._boards[address]
        except KeyError:
            raise ConfigurationError(
                f"no emulated board {address} (boards: {', '.join(map(str, self.addresses))})"
            ) from None

    def _channel(self, address: int, channel: int) -> _Lock:
        board = self._board(address)
        if not 1 <= channel <= self.channels:
            raise ConfigurationError(f"board {address} has channels 1..{self.channels}")
        return board.locks[channel - 1]

    def _settle(self, lock: _Lock, now: float) -> None:
        """Let a released door that is due pop open (lazily: no timer threads)."""
        if lock.opens_at is not None and now >= lock.opens_at:
            lock.open = True
            lock.opens_at = None

    # --- the world -------------------------------------------------------------------------
    def door_open(self, address: int, channel: int) -> bool:
        """True when the door of that lock stands open."""
        with self._lock:
            lock = self._channel(address, channel)
            self._settle(lock, time.monotonic())
            return lock.open

    def set_door(self, address: int, channel: int, is_open: bool) -> None:
        """Open (by hand) or close a door; cancels a pending spring-open."""
        with self._lock:
            lock = self._channel(address, channel)
            lock.open = is_open
            lock.opens_at = None

    def set_item(self, address: int, channel: int, present: bool) -> None:
        """Put an item into the compartment or take it out."""
        with self._lock:
            self._channel(address, channel).item = present

    def item(self, address: int, channel: int) -> bool:
        """True when an item lies in the compartment."""
        with self._lock:
            return self._channel(address, channel).item

    def pulse_times(self, address: int, channel: int) -> list[float]:
        """``time.monotonic()`` of every pulse this lock got."""
        with self._lock:
            return list(self._channel(address, channel).pulse_times)

    def pulse_ms(self, address: int) -> int | None:
        """The pulse length a driver set on this board (None: never set)."""
        with self._lock:
            return self._board(address).pulse_ms

    def requests_seen(self) -> int:
        """Frames the boards received (any address)."""
        with self._lock:
            return self._requests

    def set_lock_fault(self, address: int, channel: int, fault: str, on: bool) -> None:
        """Switch ``jammed`` or ``chatter`` of one lock."""
        with self._lock:
            setattr(self._channel(address, channel), fault, on)

    def set_board_fault(self, address: int, fault: str, on: bool) -> None:
        """Switch ``offline``, ``garbled``, ``wrong_address`` or ``short_reply`` of a board."""
        with self._lock:
            setattr(self._board(address), fault, on)
        logger.debug("board %s: %s %s", address, fault, "on" if on else "off")

    # --- the bus ---------------------------------------------------------------------------
    def answer(self, frame: bytes) -> list[bytes]:
        """The reply frames to one request frame, faults applied, in bus order.

        A frame the boards cannot read (a reply, an unknown command) gets no answer, as
        on a real bus; so does a request for an address no emulated board has.
        """
        with self._lock:
            self._requests += 1
            try:
                request = self.codec.decode_request(frame)
            except ProtocolError as exc:
                logger.debug("ignored frame %s: %s", frame.hex(" "), exc)
                return []
            if isinstance(request, StatusRequest) and request.address is None:
                # "All boards": every online board answers in turn, in address order.
                replies = [
                    self._reply(b, partial(self._status_frame, b, broadcast=True))
                    for b in self._boards.values()
                    if not b.offline
                ]
                return [r for r in replies if r]
            board = self._boards.get(request.address)
            if board is None or board.offline:
                return []
            reply: bytes | None = None
            if isinstance(request, StatusRequest):
                reply = self._reply(board, partial(self._status_frame, board, broadcast=False))
            elif isinstance(request, UnlockRequest):
                if self._unlock(board, request.channel):
                    reply = self._reply(
                        board, lambda a: self.codec.unlock_reply(a, request.channel)
                    )
            elif isinstance(request, PulseTimeRequest):
                if request.pulse_ms is not None:
                    board.pulse_ms = request.pulse_ms
                pulse_ms = board.pulse_ms or FACTORY_PULSE_MS
                reply = self._reply(board, lambda a: self.codec.pulse_time_reply(a, pulse_ms))
            else:
                logger.debug("no handler for %r", request)
            return [reply] if reply else []

    def _unlock(self, board: _Board, channel: int) -> bool:
        """Pulse one lock (or all: channel 0); False when the board has no such channel."""
        if channel == 0:
            targets = board.locks
        elif 1 <= channel <= self.channels:
            targets = [board.locks[channel - 1]]
        else:
            logger.debug("board %s has no channel %s: ignored", board.address, channel)
            return False
        now = time.monotonic()
        for lock in targets:
            self._settle(lock, now)
            lock.pulse_times.append(now)
            if lock.jammed or lock.open or not self.auto_open:
                continue  # a jammed hook holds; without a spring the door just sits there
            lock.opens_at = now + self.open_delay_s
            self._settle(lock, now)
        return True

    def _status_frame(self, board: _Board, address: int, *, broadcast: bool) -> bytes:
        """The status frame of ``board`` as it reads now, sent under ``address``."""
        now = time.monotonic()
        locks: list[bool] = []
        for lock in board.locks:
            self._settle(lock, now)
            closed = not lock.open
            bit = closed if self.feedback is Feedback.CLOSED_WHEN_SET else not closed
            if lock.chatter and self._rng.random() < 0.5:
                bit = not bit  # a bouncing switch: each read is a coin toss
            locks.append(bit)
        items = tuple(lock.item for lock in board.locks) if self.item_sensors else None
        status = BoardStatus(address=address, locks=tuple(locks), items=items)
        return self.codec.status_reply(status, broadcast=broadcast)

    def _reply(self, board: _Board, encode: Callable[[int], bytes | None]) -> bytes | None:
        """Encode one reply of ``board``, then apply its faults (wrong address, garbled, cut)."""
        address = self._other_address(board.address) if board.wrong_address else board.address
        frame = encode(address)
        if not frame:
            return None
        if board.garbled:
            frame = self._garble(frame)
        if board.short_reply:
            frame = frame[: max(1, len(frame) // 2)]
        return frame

    def _other_address(self, address: int) -> int:
        """An address the family can express that is not this board's (nor, if possible,
        another emulated board's, so the reply cannot pass for a neighbour's)."""
        space = list(self.codec.addresses)
        start = space.index(address)
        ring = space[start + 1 :] + space[:start]
        free = [a for a in ring if a not in self._boards]
        return (free or ring)[0]

    def _garble(self, frame: bytes) -> bytes:
        """Flip one bit after the first byte: neither a sum nor an XOR check can pass."""
        data = bytearray(frame)
        index = self._rng.randrange(1, len(data)) if len(data) > 1 else 0
        data[index] ^= 1 << self._rng.randrange(8)
        return bytes(data)
