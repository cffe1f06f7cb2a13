"""Subscriber bookkeeping shared by every device that reports events (lockers, card readers)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")


class Subscribers(Generic[E]):
    """Callbacks for one device's events; publishing never lets one callback stop another."""

    def __init__(self, device: str) -> None:
        self._device = device  # named in the log line of a failing subscriber
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[E], None]] = []

    def subscribe(self, callback: Callable[[E], None]) -> Callable[[], None]:
        """Call ``callback`` for every event from now on; returns the unsubscribe function."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def publish(self, event: E) -> None:
        """Deliver ``event`` to every subscriber, on the caller's thread."""
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:  # a faulty subscriber must not stop the device's thread
                # The event type only: eID events carry personal data.
                log.exception("%s subscriber failed on %s", self._device, type(event).__name__)
