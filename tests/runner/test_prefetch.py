"""Reading the source ahead of preparation: the same batches in the same order, errors raised where they were,
and a stop that leaves no thread reading the source."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from offramp.core.runner.prefetch import Prefetch


def numbers(count: int, closed: list[bool], fail_at: int | None = None) -> Iterator[int]:
    try:
        for number in range(count):
            if number == fail_at:
                raise RuntimeError(f"the query failed at {number}")
            yield number
    finally:
        closed.append(True)


def test_every_item_comes_in_order_and_the_source_is_closed() -> None:
    closed: list[bool] = []
    with Prefetch(numbers(100, closed), depth=2) as items:
        assert list(items) == list(range(100))
    assert closed == [True]


def test_an_error_of_the_source_is_raised_in_the_callers_thread_after_the_items_before_it() -> None:
    closed: list[bool] = []
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="failed at 7"), Prefetch(numbers(100, closed, fail_at=7)) as items:
        seen.extend(items)
    assert seen == list(range(7)) and closed == [True]


def test_stopping_early_stops_the_thread_and_closes_the_source() -> None:
    closed: list[bool] = []
    before = threading.active_count()
    with Prefetch(numbers(10**9, closed)) as items:
        for number in items:
            if number == 3:
                break
    assert closed == [True]
    assert threading.active_count() == before  # no thread left reading
