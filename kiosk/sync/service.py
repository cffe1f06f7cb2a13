"""``SyncService``: the sync link's one background thread (relay, pull, heartbeat).

Use::

    service = SyncService(settings.sync, store, core, clock)  # core: anything with .post
    service.start()          # the thread; never blocks the core
    service.request_now()    # a pull (and everything else) as soon as possible
    service.stop(timeout)    # joins the thread within ``timeout``
    result = service.run_once()  # one full cycle, synchronous, no thread (tests, CLI)

Each step of the thread: relay the journal when rows are unsent (checked about every
second, or at once after ``wake()``), pull every ``pull_interval_s`` and on request (a
pull skipped for unsent rows is retried after the relay drained), heartbeat every
``heartbeat_interval_s``. A failure waits an exponential backoff with full jitter
(``backoff_initial_s`` doubling up to ``backoff_max_s``), reset by the next success.

The core hears ``ServerStatus``: reachable again after an outage (which clears the alarm),
and unreachable once the outage lasts ``unreachable_alarm_after_s`` (which raises it:
the threshold lives here, ``watch.server_status`` raises on the first such event). An
outage counts from the last success recorded in the store, across restarts.
Last success, last error and backlog are kept in store meta for ``digibank-kiosk sync
status`` (``kiosk.sync.status``).
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Protocol

from kiosk.core.clock import Clock
from kiosk.core.events import ServerStatus, SyncDone, SyncRefused
from kiosk.core.model import JournalEntry
from kiosk.core.ports import Store, StoreError
from kiosk.settings_sync import SyncSettings
from kiosk.sync import status
from kiosk.sync.client import ServerUnavailable, SyncClient
from kiosk.sync.heartbeat import Heartbeat
from kiosk.sync.pull import Puller, PullResult
from kiosk.sync.relay import backlog, relay

log = logging.getLogger("kiosk.sync")

POLL_S = 1.0  # longest sleep of the thread: new journal rows leave within about this


class Core(Protocol):
    """What the service needs of the core: its event queue."""

    def post(self, event: object) -> None: ...


class Backoff:
    """Exponential backoff with full jitter: a random wait in [0, min(max, initial * 2^n)]."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The wait after one more failure."""
        ceiling = min(self.max_s, self.initial_s * 2 ** min(self.failures, 60))
        self.failures += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        """The server answered: start small again."""
        self.failures = 0


@dataclass
class CycleResult:
    """What one cycle did; ``error`` non-empty: the server failed (the reason)."""

    sent: int = 0
    pull: PullResult | None = None
    commands: int = 0
    error: str = ""
    network: bool = False  # something was asked of the server
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.error


class SyncService:
    """The sync link (see module docstring)."""

    def __init__(
        self,
        settings: SyncSettings,
        store: Store,
        core: Core | None,
        clock: Clock,
        *,
        client: SyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.core = core
        self.clock = clock
        self.client = client or SyncClient(settings)
        self.puller = Puller(store, self.client)
        self.heartbeat = Heartbeat(store, self.client, core.post if core is not None else None)
        self.backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s, rng)
        self.retry_at = 0.0  # monotonic: no call to the server before this
        self.down_since: float | None = None
        self._alarm_posted = False
        self._reported_up = False
        self._pull_wanted = True  # the first cycle pulls
        self._next_pull = 0.0
        self._next_beat = 0.0
        self._busy = threading.Lock()  # one cycle at a time (the HTTP session is not shared)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="kiosk-sync", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread within ``timeout`` (a call in flight ends by its own timeouts)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the sync thread did not stop within %.0f s", timeout)
            self._thread = None
        self.client.close()

    def request_now(self) -> None:
        """Pull (and relay, heartbeat) as soon as possible, even during a backoff."""
        self._pull_wanted = True
        self.retry_at = 0.0
        self._wake.set()

    def wake(self) -> None:
        """Look for unsent journal rows now instead of within a second."""
        self._wake.set()

    # -- work ---------------------------------------------------------------------------------
    def run_once(self, *, heartbeat: bool = True) -> CycleResult:
        """One full cycle now, on the caller's thread: relay, pull, heartbeat.

        If the thread is in a cycle, this waits for it (bounded by the calls' timeouts).
        """
        self._pull_wanted = True
        if not self._busy.acquire(timeout=self._cycle_bound_s()):
            return CycleResult(error="another sync cycle is still running")
        try:
            return self._cycle(force=True, heartbeat=heartbeat)
        finally:
            self._busy.release()

    def _cycle_bound_s(self) -> float:
        """Longest a cycle can take: a few calls, each bounded by connect + read timeout."""
        per_call = self.settings.connect_timeout_s + self.settings.read_timeout_s
        return 10 * per_call

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the cycle: a wake during it makes the next one prompt
            # run_once on another thread holds the lock for one cycle at most (bounded).
            if self._busy.acquire(timeout=self._cycle_bound_s()):
                try:
                    self._cycle(force=False, heartbeat=True)
                except StoreError as exc:  # the core puts the kiosk out of order; keep trying
                    log.error("sync: the store failed: %s", exc)
                except Exception:  # a bug must not end the link for good
                    log.exception("sync cycle failed")
                finally:
                    self._busy.release()
            self._wake.wait(self._sleep_s())

    def _sleep_s(self) -> float:
        wait = self.retry_at - self.clock.monotonic()
        return min(POLL_S, max(0.01, wait)) if wait > 0 else POLL_S

    def _cycle(self, *, force: bool, heartbeat: bool) -> CycleResult:
        result = CycleResult()
        now = self.clock.monotonic()
        if not force and now < self.retry_at:
            return result
        try:
            if backlog(self.store):
                result.network = True
                batch = self.settings.batch_size
                sent = relay(
                    self.store, self.client, self.clock, batch, self._running, self._refused
                )
                self.puller.seen(sent.last_seq)  # the pull's fence starts from there
                result.sent = sent.sent
                result.steps.append("relay")
            if force or self._pull_wanted or now >= self._next_pull:
                result.network = True
                result.pull = self._pull()
                result.steps.append("pull")
            if heartbeat and (force or now >= self._next_beat):
                result.network = True
                result.commands = len(self.heartbeat.beat())
                self._next_beat = now + self.settings.heartbeat_interval_s
                result.steps.append("heartbeat")
        except ServerUnavailable as exc:
            result.error = exc.reason
            self._failed(exc.reason)
        else:
            if result.network:
                self._succeeded()
        if result.network:
            status.record(self.store, self.clock, result.error)
        return result

    def _refused(self, row: JournalEntry, reason: str) -> None:
        self._post(SyncRefused(seq=row.seq, kind=row.kind, reason=reason[:200]))

    def _running(self) -> bool:
        return not self._stop.is_set()

    def _pull(self) -> PullResult:
        pulled = self.puller.pull()
        if pulled.applied:
            self._pull_wanted = False
            self._next_pull = self.clock.monotonic() + self.settings.pull_interval_s
            if self.core is not None:
                self.core.post(SyncDone())
        return pulled

    def _succeeded(self) -> None:
        self.backoff.reset()
        self.retry_at = 0.0
        if self.down_since is not None or not self._reported_up:
            if self.down_since is not None:
                log.info("loan server reachable again")
            self._post(ServerStatus(reachable=True))
        self.down_since = None
        self._alarm_posted = False
        self._reported_up = True

    def _failed(self, reason: str) -> None:
        now = self.clock.monotonic()
        if self.down_since is None:
            # Counted from the last success ever (store meta), so restarts during an
            # outage do not postpone the alarm for ever; a wall clock that went back
            # counts as no time.
            self.down_since = now - status.seconds_since_success(self.store, self.clock)
            log.warning("loan server unavailable: %s", reason)
        delay = self.backoff.next_delay()
        self.retry_at = now + delay
        down_for = now - self.down_since
        if down_for >= self.settings.unreachable_alarm_after_s and not self._alarm_posted:
            self._alarm_posted = True
            self._post(ServerStatus(reachable=False, down_for_s=down_for, detail=reason[:200]))
        log.debug("sync retry in %.1f s", delay)

    def _post(self, event: object) -> None:
        if self.core is not None:
            self.core.post(event)
