"""Deciding, per request, which fault (if any) disturbs it: delay, gateway error, rate limit, error code.

Every random draw comes from one `random.Random(faults.random_seed)`, restarted whenever the faults are set, so
a test that sends the same requests in the same order sees the same answers.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import NamedTuple

from offramp.plugins.tiktok.emulator.config import Faults
from offramp.plugins.tiktok.emulator.envelope import RATE_LIMITED


class Disturbance(NamedTuple):
    """What to do to one request: wait `delay` seconds, then answer `http_status` (no envelope) or `code`."""

    delay: float = 0.0
    http_status: int | None = None
    code: int | None = None


NO_DISTURBANCE = Disturbance()


class FaultInjector:
    """Holds the current `Faults`, their random generator and the rate limiter's window."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._random = random.Random(faults.random_seed)
        # Times (monotonic) of the requests let through during the last second.
        self._window: deque[float] = deque()
        # Cumulative fractions, so one draw picks at most one code.
        self._fail_table = self._cumulative(faults)

    @staticmethod
    def _cumulative(faults: Faults) -> list[tuple[float, int]]:
        table: list[tuple[float, int]] = []
        total = 0.0
        for code, fraction in sorted(faults.fail.items()):
            total += fraction
            table.append((total, code))
        return table

    def draw(self, monotonic: float | None = None) -> Disturbance:
        """The disturbance for the next request (call once per request, in arrival order)."""
        faults = self.faults
        if not faults.disturbs_requests:
            return NO_DISTURBANCE
        rng = self._random
        delay_ms = float(faults.latency_ms)
        if faults.jitter_ms:
            delay_ms += rng.uniform(0, faults.jitter_ms)
        if faults.slow_fraction and rng.random() < faults.slow_fraction:
            delay_ms += faults.slow_ms
        delay = delay_ms / 1000
        if faults.http_502 or faults.http_503:
            roll = rng.random()
            if roll < faults.http_502:
                return Disturbance(delay, http_status=502)
            if roll < faults.http_502 + faults.http_503:
                return Disturbance(delay, http_status=503)
        if faults.qps is not None and not self._admit(time.monotonic() if monotonic is None else monotonic):
            return Disturbance(delay, code=RATE_LIMITED)
        if self._fail_table:
            roll = rng.random()
            for threshold, code in self._fail_table:
                if roll < threshold:
                    return Disturbance(delay, code=code)
        return Disturbance(delay)

    def _admit(self, now: float) -> bool:
        """Sliding one-second window: at most `qps` requests are let through in any second."""
        window = self._window
        while window and window[0] <= now - 1.0:
            window.popleft()
        assert self.faults.qps is not None
        if len(window) >= self.faults.qps:
            return False
        window.append(now)
        return True


__all__ = ["Disturbance", "FaultInjector", "NO_DISTURBANCE"]
