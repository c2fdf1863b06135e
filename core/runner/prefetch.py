"""Reading the source one record batch ahead, on a thread of its own, while the main thread prepares.

A source's engine (DuckDB's sort and scan, a warehouse's cursor) works outside the GIL, so fetching the next batch
overlaps with preparing this one instead of following it (docs/benchmarks.md). At most ``depth`` batches wait,
so memory stays bounded whatever the size of the result. What the source raises (a failed query) is raised by the
iteration, in the caller's thread, where it would have been raised without the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch(Generic[T]):
    """Iterates ``items`` on a thread of its own, ``depth`` items ahead of the caller.

    Use it as a context manager: leaving the block (a ``break``, an error) stops the thread and waits for it, so
    that nothing touches the source after the block, and closes ``items`` when it is a generator.
    """

    def __init__(self, items: Iterator[T], depth: int = 1) -> None:
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fetch, name="source", daemon=True)
        self._started = False

    def __enter__(self) -> Prefetch[T]:
        self._thread.start()
        self._started = True
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        # Ctrl-C: do not wait long for a fetch in progress (a warehouse query may take minutes to give a batch).
        self.close(wait=5.0 if isinstance(error, KeyboardInterrupt) else None)

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]  # what items yields

    def _put(self, item: object) -> bool:
        """Hand one item over; False when the caller stopped first."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _fetch(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            self._put(_Raised(error))
            return
        self._put(_END)

    def close(self, wait: float | None = None) -> None:
        """Stop fetching, wait for the thread (at most ``wait`` seconds when given), close the source's iterator.
        Safe to call twice."""
        self._stop.set()
        if self._started:
            self._thread.join(wait)
            if self._thread.is_alive():
                return  # still in the engine: the source is closed under it as the run ends
        close = getattr(self._items, "close", None)
        if close is not None:
            close()  # a generator: its finally (the source's cursor) runs now, in this thread


__all__ = ["Prefetch"]
