"""The behaviour every locker driver shares: ``LockerBase`` and ``PollThread``.

A driver (serial boards, GPIO, simulator) only says how to pulse one lock and how to
read one compartment; ``LockerBase`` does the rest the same way for all of them:
the open sequence (read, pulse, watch, one retry, cool-down; decision 0001), change
detection (``tracking.py``), board health (offline only after N failed polls in a row)
and event delivery to subscribers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from hardware.errors import HardwareError, UnknownCompartment
from hardware.events import Subscribers
from hardware.locker.base import (
    BoardKey,
    BoardOffline,
    BoardOnline,
    BoardState,
    CompartmentState,
    DoorState,
    LockerEvent,
    LockerState,
    OpenOutcome,
    OpenResult,
    Subscriber,
)
from hardware.locker.layout import CompartmentSpec, OpenTiming, PollTiming
from hardware.locker.tracking import BoardHealth, CompartmentTracker

log = logging.getLogger(__name__)


class LockerBase:
    """Open sequence, change detection, board health and events for every driver.

    Subclasses implement ``_pulse``, ``_read`` and ``_board_key``/``_board_port`` and call
    ``_observe`` and ``_board_result`` from their pollers.
    """

    _RESULT_MEMORY = 256  # txn ids remembered for de-duplication

    def __init__(
        self,
        compartments: Sequence[CompartmentSpec],
        open_timing: OpenTiming | None = None,
        poll: PollTiming | None = None,
    ) -> None:
        self._specs = {spec.number: spec for spec in sorted(compartments, key=lambda c: c.number)}
        self._timing = open_timing or OpenTiming()
        self._poll = poll or PollTiming()
        self._lock = threading.RLock()  # guards trackers, health, pulse times, results
        self._trackers = {n: CompartmentTracker(n, self._poll) for n in self._specs}
        self._health: dict[BoardKey, BoardHealth] = {}
        self._last_pulse: dict[int, float] = {}  # when the last pulse started (forced-door test)
        self._pulse_done: dict[int, float] = {}  # when the last pulse ended (cool-down)
        self._results: OrderedDict[str, OpenResult] = OrderedDict()
        self._open_locks = {n: threading.Lock() for n in self._specs}
        self._subscribers: Subscribers[LockerEvent] = Subscribers("locker")

    # -- to implement ---------------------------------------------------------------------

    def _pulse(self, spec: CompartmentSpec) -> None:
        """Energise the lock of ``spec`` once. Raise HardwareError when it cannot."""
        raise NotImplementedError

    def _read(self, spec: CompartmentSpec) -> tuple[DoorState, bool | None]:
        """Read door and item of ``spec`` now. Raise HardwareError when it cannot."""
        raise NotImplementedError

    def _board_key(self, spec: CompartmentSpec) -> BoardKey:
        """The board that ``spec`` is wired to."""
        return ("local", 0)

    def _board_port(self, key: BoardKey) -> str:
        """The port the board ``key`` hangs on, for diagnostics."""
        return key[0]

    # -- the public protocol -----------------------------------------------------------------

    def compartments(self) -> tuple[CompartmentSpec, ...]:
        """The compartments of this cabinet, in number order."""
        return tuple(self._specs.values())

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Deliver every event to ``callback``; returns a function that unsubscribes."""
        return self._subscribers.subscribe(callback)

    def states(self) -> LockerState:
        """The cabinet as last seen; doors of offline boards are unknown."""
        with self._lock:
            compartments = []
            for number, spec in self._specs.items():
                tracker = self._trackers[number]
                online = self._board_online(self._board_key(spec))
                door = tracker.shown_door if spec.door_sensor and online is not False else None
                item = tracker.item if spec.item_sensor and online is not False else None
                compartments.append(CompartmentState(number, door or DoorState.UNKNOWN, item))
            boards = tuple(
                BoardState(key[0], self._board_port(key), key[1], bool(health.online))
                for key, health in sorted(self._health.items())
            )
        return LockerState(tuple(compartments), boards)

    def refresh(self) -> LockerState:
        """Read every compartment once now; a board that fails is not asked again.

        Drivers that can read a whole board in one request override this.
        """
        failed: set[BoardKey] = set()
        for spec in self._specs.values():
            key = self._board_key(spec)
            if key in failed:
                continue  # one failed poll per refresh, not one per compartment
            try:
                self._read_and_observe(spec, confirmed=True, raise_errors=True)
            except HardwareError:
                failed.add(key)
        return self.states()

    def open(self, compartment: int, txn_id: str) -> OpenResult:
        """Read the door, pulse, watch, retry once, report; see ``OpenOutcome``.

        The same ``txn_id`` never pulses twice: a repeat returns the first result.
        """
        spec = self._spec(compartment)
        with self._lock:
            if txn_id in self._results:
                log.info(
                    "open %s: txn %s already carried out, not pulsing again", compartment, txn_id
                )
                return self._results[txn_id]
        timing = self._timing
        bound = (timing.watch_s + timing.cooldown_s) * 2 + 5.0
        if not self._open_locks[compartment].acquire(timeout=bound):
            return OpenResult(compartment, txn_id, OpenOutcome.BOARD_OFFLINE, detail="busy")
        try:
            result = self._open_locked(spec, txn_id)
        finally:
            self._open_locks[compartment].release()
        with self._lock:
            self._results[txn_id] = result
            while len(self._results) > self._RESULT_MEMORY:
                self._results.popitem(last=False)
        log.info(
            "open %s txn=%s: %s after %d pulse(s), %.0f ms",
            compartment,
            txn_id,
            result.outcome.value,
            result.pulses,
            result.total_ms,
        )
        return result

    # -- the open sequence ------------------------------------------------------------------

    def _open_locked(self, spec: CompartmentSpec, txn_id: str) -> OpenResult:
        timing = self._timing
        start = time.monotonic()

        def done(outcome: OpenOutcome, **kw: object) -> OpenResult:
            total = (time.monotonic() - start) * 1000
            return OpenResult(spec.number, txn_id, outcome, total_ms=total, **kw)  # type: ignore[arg-type]

        try:
            before = self._read_and_observe(spec, confirmed=True, raise_errors=True)
        except HardwareError as exc:
            return done(OpenOutcome.BOARD_OFFLINE, detail=str(exc))
        pulses = 0
        first_pulse: float | None = None
        why_jammed = "door never read open"
        attempts = 2 if timing.retry else 1
        for _ in range(attempts):
            self._wait_cooldown(spec.number)
            now = time.monotonic()
            with self._lock:
                # Marked before the pulse: a spring door may pop while _pulse still runs
                # (waiting for an ack, holding a relay), and a poller that sees it open
                # must take it for this opening, not for a forced door.
                earlier = self._last_pulse.get(spec.number)
                self._last_pulse[spec.number] = now
            try:
                self._pulse(spec)
            except HardwareError as exc:
                self._note_pulse_done(spec.number)  # part of a frame may have gone out
                if pulses == 0:
                    with self._lock:  # nothing went out: a door that opens now is forced
                        if earlier is None:
                            self._last_pulse.pop(spec.number, None)
                        else:
                            self._last_pulse[spec.number] = earlier
                    return done(OpenOutcome.BOARD_OFFLINE, door_before=before, detail=str(exc))
                why_jammed = f"door never read open; the retry pulse failed: {exc}"
                break  # the first pulse went out: report jammed, with the reason
            self._note_pulse_done(spec.number)
            pulses += 1
            first_pulse = first_pulse if first_pulse is not None else now
            common = {
                "pulses": pulses,
                "door_before": before,
                "first_pulse_ms": (first_pulse - start) * 1000,
            }
            if not spec.door_sensor:
                return done(OpenOutcome.UNCONFIRMED, **common)
            if before is DoorState.OPEN:
                # A cut sensor cable reads open: we pulsed anyway, and say what we saw.
                return done(OpenOutcome.ALREADY_OPEN, **common)
            seen_at = self._watch(spec, now + timing.watch_s)
            if seen_at is not None:
                return done(OpenOutcome.OPENED, opened_ms=(seen_at - first_pulse) * 1000, **common)
        return done(
            OpenOutcome.JAMMED,
            pulses=pulses,
            door_before=before,
            first_pulse_ms=None if first_pulse is None else (first_pulse - start) * 1000,
            detail=why_jammed,
        )

    def _watch(self, spec: CompartmentSpec, deadline: float) -> float | None:
        """Re-read the door until it reads open or ``deadline``; when it opened, or None."""
        while True:
            try:
                door = self._read_and_observe(spec, confirmed=True, raise_errors=True)
            except HardwareError as exc:
                log.debug("compartment %s: read failed while watching: %s", spec.number, exc)
                door = DoorState.UNKNOWN
            now = time.monotonic()
            if door is DoorState.OPEN:
                return now
            if now >= deadline:
                return None
            time.sleep(min(self._timing.check_interval_s, max(0.0, deadline - now)))

    def _note_pulse_done(self, number: int) -> None:
        with self._lock:
            self._pulse_done[number] = time.monotonic()

    def _wait_cooldown(self, number: int) -> None:
        """Sleep until ``cooldown_s`` has passed since the end of this lock's last pulse.

        Measured from the end: a pulse may wait for the bus or hold a relay for a while.
        """
        with self._lock:
            last = self._pulse_done.get(number)
        if last is not None:
            remaining = self._timing.cooldown_s - (time.monotonic() - last)
            if remaining > 0:
                time.sleep(min(remaining, self._timing.cooldown_s))

    # -- observation ------------------------------------------------------------------------

    def _read_and_observe(
        self, spec: CompartmentSpec, *, confirmed: bool, raise_errors: bool = False
    ) -> DoorState:
        """Read one compartment, feed change detection and board health; the door read."""
        key = self._board_key(spec)
        try:
            door, item = self._read(spec)
        except HardwareError as exc:
            self._board_result(key, ok=False, reason=str(exc))
            if raise_errors:
                raise
            return DoorState.UNKNOWN
        self._board_result(key, ok=True)
        self._observe(spec.number, door, item, confirmed=confirmed)
        return door if spec.door_sensor else DoorState.UNKNOWN

    def _observe(
        self, number: int, door: DoorState, item: bool | None, *, confirmed: bool = False
    ) -> None:
        """Feed one reading; emit events for changes that are stable (or ``confirmed``)."""
        spec = self._specs[number]
        events: list[LockerEvent] = []
        with self._lock:
            tracker = self._trackers[number]
            if spec.door_sensor:
                commanded = self._recently_pulsed(number)
                now = time.monotonic()
                events += tracker.door_reading(door, now, confirmed=confirmed, commanded=commanded)
            if spec.item_sensor:
                events += tracker.item_reading(item)
        self._publish_all(events)

    def _recently_pulsed(self, number: int) -> bool:
        last = self._last_pulse.get(number)
        window = self._timing.watch_s * 2 + self._timing.cooldown_s + 2.0
        return last is not None and time.monotonic() - last <= window

    def _board_result(self, key: BoardKey, *, ok: bool, reason: str = "") -> None:
        """Count a board's answer or silence; emit BoardOnline/BoardOffline on changes."""
        event: LockerEvent | None = None
        with self._lock:
            health = self._health.setdefault(key, BoardHealth(self._poll.offline_after))
            if ok and health.answered():
                event = BoardOnline(bus=key[0], address=key[1])
            elif not ok and health.failed():
                self._forget_doors_of(key)
                event = BoardOffline(bus=key[0], address=key[1], reason=reason)
        if event is not None:
            log.log(
                logging.WARNING if isinstance(event, BoardOffline) else logging.INFO,
                "board %s/%s %s%s",
                key[0],
                key[1],
                "offline" if isinstance(event, BoardOffline) else "online",
                f": {reason}" if reason else "",
            )
            self._publish(event)

    def _register_boards(self, keys: Iterable[BoardKey]) -> None:
        """Make boards known (as "not yet answered") so ``states()`` lists them."""
        with self._lock:
            for key in keys:
                self._health.setdefault(key, BoardHealth(self._poll.offline_after))

    def _board_online(self, key: BoardKey) -> bool | None:
        """True/False once the board answered/went offline; None before it was asked."""
        with self._lock:
            health = self._health.get(key)
            return None if health is None else health.online

    def _forget_doors_of(self, key: BoardKey) -> None:
        for number, spec in self._specs.items():
            if self._board_key(spec) == key:
                self._trackers[number].forget()

    # -- events -------------------------------------------------------------------------------

    def _publish_all(self, events: Iterable[LockerEvent]) -> None:
        for event in events:
            self._publish(event)

    def _publish(self, event: LockerEvent) -> None:
        self._subscribers.publish(event)

    def _spec(self, number: int) -> CompartmentSpec:
        try:
            return self._specs[number]
        except (KeyError, TypeError):
            raise UnknownCompartment(
                f"no compartment {number!r}: this cabinet has 1-{max(self._specs, default=0)}"
            ) from None


class PollThread:
    """A daemon thread calling ``poll()`` every ``interval_s`` until stopped."""

    def __init__(self, name: str, interval_s: float, poll: Callable[[], None]) -> None:
        self._interval = interval_s
        self._poll = poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait for it (bounded)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self._poll()
            except Exception:  # keep watching the cabinet whatever one poll did
                log.exception("poll %s failed", self._thread.name)
            next_at += self._interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (slow bus): do not try to catch up in a burst
                next_at, delay = time.monotonic(), 0.0
            self._stop.wait(delay)
