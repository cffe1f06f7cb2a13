"""``KioskCore``: one event queue, one worker thread, timers, the opener, snapshots.

Everything that changes the kiosk's state happens on the worker thread, one event at a
time, so no two flows race. Commands put an event on the queue and return at once.
Lock pulses run on a separate opener thread (one at a time, like the bus) so the worker
stays responsive while a door is watched; the outcome comes back as ``OpenFinished``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from hardware.eid.base import CardReader, EidEvent
from hardware.errors import HardwareError
from hardware.events import Subscribers
from hardware.locker.base import Locker, LockerEvent
from kiosk.core.clock import Clock, SystemClock
from kiosk.core.events import (
    CardGone,
    EnterText,
    IdentityPresented,
    OpenFinished,
    Scan,
    Screen,
    Snapshot,
    Tap,
    Tick,
)
from kiosk.core.flows import FlowMachine
from kiosk.core.identify import CardRules, translate
from kiosk.core.policy import CorePolicy
from kiosk.core.ports import Store, StoreError
from kiosk.core.startup import StartReport, reconcile

log = logging.getLogger("kiosk.core")

Checkpoint = Callable[[str], None]
DISK_CHECK_S = 60.0
_STOP = object()


class KioskCore:
    """The kiosk's brain. Build it in ``bootstrap``; ``start()``; send commands; ``stop()``."""

    def __init__(
        self,
        *,
        store: Store | None,
        locker: Locker,
        policy: CorePolicy | None = None,
        clock: Clock | None = None,
        pepper: bytes | None = None,
        card_rules: CardRules | None = None,
        checkpoint: Checkpoint | None = None,
        disk_path: str | Path | None = None,
        store_problem: str = "",
        on_sync_request: Callable[[], None] | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.locker = locker
        self.store = store
        self._pepper = pepper
        self._card_rules = card_rules or CardRules()
        self._checkpoint = checkpoint
        self._queue: queue.Queue[object] = queue.Queue()
        self._opens: queue.Queue[tuple[str, int] | object] = queue.Queue()
        self._timers: dict[str, float] = {}  # name -> deadline on clock.monotonic()
        self._subscribers: Subscribers[Snapshot] = Subscribers("core")
        self._snapshot = Snapshot(seq=0, screen=Screen.IDLE)
        self._seq = 0
        self._pending = 0  # events queued or being handled, openings in flight
        self._idle = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self.report = StartReport()
        self.machine = FlowMachine(
            store=store,
            locker=locker,
            clock=self.clock,
            policy=policy or CorePolicy(),
            request_open=self._request_open,
            set_timer=self._set_timer,
            cancel_timer=self._cancel_timer,
            on_sync_request=on_sync_request,
        )
        self.machine.disk_path = str(disk_path) if disk_path else None
        if store is None or store_problem:
            self.machine.fail_store(store_problem or "no database")

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> StartReport:
        """Reconcile store and cabinet (never pulsing a lock), then start the threads."""
        boot = self.store.boot if self.store is not None else 0
        if not self.machine.out_of_order:
            try:
                self.report = reconcile(self.machine, boot)
            except StoreError as exc:
                self.machine.fail_store(str(exc))
        if self.machine.out_of_order:
            self.report.refused = self.machine.out_of_order
        self._unsubscribe.append(self.locker.subscribe(self._on_locker))
        if self.machine.disk_path:
            self._set_timer("disk", 0.0)
        for name, target in (("kiosk-core", self._work), ("kiosk-opener", self._open_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._publish()
        return self.report

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads (an opening in progress finishes first); safe to call twice."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self._queue.put(_STOP)
        self._opens.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    # -- commands (any thread; never block) ------------------------------------------------------
    def post(self, event: object) -> None:
        """Queue any event for the worker."""
        with self._idle:
            self._pending += 1
        self._queue.put(event)

    def tap(self, action: str, value: str | None = None) -> None:
        """A button of the current screen."""
        self.post(Tap(action, value))

    def enter_text(self, text: str) -> None:
        """Text confirmed on the on-screen keypad."""
        self.post(EnterText(text))

    def scan(self, text: str) -> None:
        """A barcode scanner read."""
        self.post(Scan(text))

    def present(self, borrower_key: str, first_name: str = "") -> None:
        """An identity already turned into a borrower key (tests, scenarios)."""
        self.post(IdentityPresented(borrower_key, first_name))

    def card_removed(self) -> None:
        """The card left the reader."""
        self.post(CardGone())

    def tick(self) -> None:
        """Check timers now (after moving a ``ManualClock``)."""
        self.post(Tick())

    def attach_reader(self, reader: CardReader) -> Callable[[], None]:
        """Feed this reader's events to the core (the borrower key is made on its thread)."""
        unsubscribe = reader.subscribe(self._on_eid)
        self._unsubscribe.append(unsubscribe)
        return unsubscribe

    # -- output ---------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        """Call ``callback`` with every new snapshot (on the worker thread)."""
        return self._subscribers.subscribe(callback)

    def snapshot(self) -> Snapshot:
        """The latest snapshot."""
        return self._snapshot

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event is handled and no opening is in flight."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # -- adapters (driver threads) -----------------------------------------------------------------
    def _on_locker(self, event: LockerEvent) -> None:
        self.post(event)

    def _on_eid(self, event: EidEvent) -> None:
        if self._pepper is None:
            log.error("card read but no pepper configured: cannot identify anyone")
            return
        translated = translate(event, self._pepper, self._card_rules, self._today())
        if translated is not None:
            self.post(translated)

    def _today(self) -> dt.date:
        return self.clock.now().date()

    # -- worker ----------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            try:
                event = self._queue.get(timeout=self._wait_s())
            except queue.Empty:
                event = None
            if event is _STOP:
                return
            try:
                if event is not None:
                    self.machine.handle(event)
                self._fire_timers()
                self._publish()
            except Exception:  # a bug must not kill the only worker: log, keep serving
                log.exception("core failed on %r", type(event).__name__)
            finally:
                if event is not None:
                    self._done()

    def _wait_s(self) -> float:
        if not self._timers:
            return 0.5
        soonest = min(self._timers.values()) - self.clock.monotonic()
        return min(0.5, max(0.01, soonest))

    def _fire_timers(self) -> None:
        now = self.clock.monotonic()
        for name, deadline in sorted(self._timers.items(), key=lambda kv: kv[1]):
            if deadline <= now and self._timers.get(name) == deadline:
                del self._timers[name]
                self.machine.on_timer(name)
                if name == "disk":
                    self._set_timer("disk", DISK_CHECK_S)

    def _set_timer(self, name: str, seconds: float) -> None:
        self._timers[name] = self.clock.monotonic() + seconds

    def _cancel_timer(self, name: str) -> None:
        self._timers.pop(name, None)

    def _publish(self) -> None:
        self._seq += 1
        snapshot = self.machine.snapshot(self._seq)
        previous = self._snapshot
        if dataclasses.replace(snapshot, seq=previous.seq) == previous:
            self._seq -= 1
            return
        self._snapshot = snapshot
        self._subscribers.publish(snapshot)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    # -- opener ----------------------------------------------------------------------------------
    def _request_open(self, open_id: str, number: int) -> None:
        with self._idle:
            self._pending += 1  # settled only when the outcome has been handled
        self._opens.put((open_id, number))

    def _open_loop(self) -> None:
        while True:
            job = self._opens.get()
            if job is _STOP or not isinstance(job, tuple):
                return
            open_id, number = job
            self._mark("pulse:before")
            try:
                result = self.locker.open(number, open_id)
                finished = OpenFinished(open_id, number, result)
            except HardwareError as exc:
                finished = OpenFinished(open_id, number, None, f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # a driver bug: the flow must still end
                log.exception("locker.open failed")
                finished = OpenFinished(open_id, number, None, f"{type(exc).__name__}: {exc}")
            self._mark("pulse:after")
            # Hand over: the posted event counts as pending before the opening stops counting.
            self.post(finished)
            self._done()

    def _mark(self, name: str) -> None:
        if self._checkpoint is not None:
            self._checkpoint(name)
