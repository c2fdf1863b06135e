"""Events the emulator received: kept for inspection, deduplicated the way TikTok does (docs/tiktok-api-facts.md,
"Deduplication").

TikTok deduplicates on (event source id, event name, event_id) within 48 hours of the first event and keeps the
first; the request is still answered OK. Test events (with a `test_event_code`) are recorded but take no part in
deduplication, since they are not conversions.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import orjson

Status = Literal["accepted", "duplicate"]


@dataclass(frozen=True, slots=True)
class ReceivedBatch:
    """One accepted `event/track/` request, kept as the bytes received (parsed again only when inspected: keeping
    millions of parsed objects alive would slow every garbage collection of the server)."""

    request_id: str
    received_at: float
    event_source: str
    event_source_id: str
    test_event_code: str | None
    raw: bytes
    count: int
    # Indices of the events that were dropped as duplicates.
    duplicates: frozenset[int]

    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = orjson.loads(self.raw)["data"]
        return events


class EventLog:
    """Received events (the newest `keep` of them) and the first-seen time of every deduplication key."""

    def __init__(self, keep: int, dedup_window: float) -> None:
        self.keep = keep
        self.dedup_window = dedup_window
        self._batches: deque[ReceivedBatch] = deque()
        self._stored = 0
        # event_source_id -> (event name, event_id) -> when it was first accepted.
        self._first_seen: dict[str, dict[tuple[str, str | None], float]] = {}

    def record(
        self,
        raw: bytes,
        event_source: str,
        event_source_id: str,
        test_event_code: str | None,
        keys: list[tuple[str, str | None]],
        request_id: str,
        now: float,
    ) -> int:
        """Store a valid request's events (`keys`: name and event_id of each); returns how many were duplicates."""
        duplicates: list[int] = []
        if test_event_code is None:
            first_seen = self._first_seen.setdefault(event_source_id, {})
            window = self.dedup_window
            for index, key in enumerate(keys):
                if key[1] is None:
                    continue
                first = first_seen.get(key)
                if first is not None and now - first < window:
                    duplicates.append(index)
                else:
                    first_seen[key] = now
        if self.keep:
            batch = ReceivedBatch(
                request_id, now, event_source, event_source_id, test_event_code, raw, len(keys), frozenset(duplicates)
            )
            self._batches.append(batch)
            self._stored += batch.count
            while self._stored > self.keep and self._batches:
                self._stored -= self._batches.popleft().count
        return len(duplicates)

    def query(
        self,
        *,
        event_set_id: str | None = None,
        event: str | None = None,
        event_id: str | None = None,
        status: Status | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Stored events, oldest first, that match every filter given."""
        found: list[dict[str, Any]] = []
        for batch in self._batches:
            if event_set_id is not None and batch.event_source_id != event_set_id:
                continue
            for index, payload in enumerate(batch.events()):
                if event is not None and payload.get("event") != event:
                    continue
                if event_id is not None and payload.get("event_id") != event_id:
                    continue
                state: Status = "duplicate" if index in batch.duplicates else "accepted"
                if status is not None and state != status:
                    continue
                found.append(
                    {
                        "request_id": batch.request_id,
                        "received_at": batch.received_at,
                        "event_source": batch.event_source,
                        "event_source_id": batch.event_source_id,
                        "test_event_code": batch.test_event_code,
                        "status": state,
                        "payload": payload,
                    }
                )
                if limit is not None and len(found) >= limit:
                    return found
        return found

    @property
    def stored(self) -> int:
        return self._stored


__all__ = ["EventLog", "ReceivedBatch", "Status"]
