"""Counters of what the emulator answered, for `GET /_emulator/stats` and for benchmarks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """Requests to TikTok's API paths (not the control API), events, and errors by code."""

    requests: int = 0
    requests_by_path: Counter[str] = field(default_factory=Counter)
    events_received: int = 0
    events_accepted: int = 0
    duplicates_dropped: int = 0
    test_events: int = 0
    errors: Counter[int] = field(default_factory=Counter)
    http_errors: Counter[int] = field(default_factory=Counter)

    def count_answer(self, path: str, code: int = 0, http_status: int | None = None) -> None:
        """Count one answered request: an envelope code, or an HTTP error status that had no envelope."""
        self.requests += 1
        self.requests_by_path[path] += 1
        if http_status is not None:
            self.http_errors[http_status] += 1
        elif code:
            self.errors[code] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "requests_by_path": dict(sorted(self.requests_by_path.items())),
            "events_received": self.events_received,
            "events_accepted": self.events_accepted,
            "duplicates_dropped": self.duplicates_dropped,
            "test_events": self.test_events,
            "errors": {str(code): n for code, n in sorted(self.errors.items())},
            "http_errors": {str(status): n for status, n in sorted(self.http_errors.items())},
        }


__all__ = ["Stats"]
