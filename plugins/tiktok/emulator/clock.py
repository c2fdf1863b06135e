"""The emulator's notion of "now", injectable so tests check expiry without sleeping."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock seconds since the epoch, as the emulator sees them."""

    def now(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


class SystemClock:
    """Real time plus an offset that `POST /_emulator/clock` moves forward (for tests of a subprocess)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


class ManualClock:
    """A clock that moves only when told to: ``clock.advance(3601)`` makes an auth code expire at once."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


__all__ = ["Clock", "ManualClock", "SystemClock"]
