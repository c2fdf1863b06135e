"""Events as columns (``EventColumns``): what a sender and the runner rely on when no object is made per event.

A sender written for objects must see the same events through the sequence interface; slices must stay columns
(TikTok's 40002 search halves them); joined bodies must be the bodies' bytes as prepared.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from offramp.core import (
    EventColumns,
    PreparedBatch,
    PreparedEvent,
    RejectedColumns,
    RejectedEvent,
    concat_events,
    event_ids_of,
    joined_bodies,
)

events_strategy = st.lists(
    st.builds(
        PreparedEvent,
        event_id=st.text(min_size=1, max_size=12).filter(lambda text: text.encode("utf-8", "ignore") == text.encode()),
        body=st.binary(max_size=20),
        rows=st.integers(min_value=1, max_value=9),
        warnings=st.lists(st.sampled_from(["invalid_phone", "other"]), max_size=3).map(
            lambda names: tuple(sorted(names))
        ),
    ),
    max_size=30,
)


@given(events_strategy)
def test_objects_and_columns_are_the_same_events(events: list[PreparedEvent]) -> None:
    columns = EventColumns.from_events(events)
    assert list(columns) == events and len(columns) == len(events)
    assert [columns[i] for i in range(len(events))] == events
    assert columns.total_rows == sum(event.rows for event in events)
    assert joined_bodies(columns) == joined_bodies(events) == b",".join(event.body for event in events)
    assert event_ids_of(columns) == [event.event_id for event in events]


@given(events_strategy, st.integers(min_value=0, max_value=30), st.integers(min_value=0, max_value=30))
def test_slices_stay_columns_and_hold_the_same_events(events: list[PreparedEvent], start: int, stop: int) -> None:
    columns = EventColumns.from_events(events)
    part = columns[start:stop]
    assert isinstance(part, EventColumns)
    assert list(part) == events[start:stop]
    halves = [columns[: len(columns) // 2], columns[len(columns) // 2 :]]
    rejoined = concat_events(halves)
    assert isinstance(rejoined, EventColumns) and list(rejoined) == events


def test_a_batch_of_objects_and_columns_gives_every_event_objects_first() -> None:
    first = PreparedEvent("a", b"{1}", 2, ("invalid_phone", "invalid_phone"))
    second = PreparedEvent("b", b"{2}", 1)
    rejected = RejectedColumns(
        pa.array(["c"]),
        pa.array(["missing_identifiers"]),
        pa.array(["no email"]),
        pa.array([3]),
        pa.array([None], pa.string()),
    )
    batch = PreparedBatch([first], [RejectedEvent("d", "x", "y", 1)], EventColumns.from_events([second]), rejected)
    assert list(batch.all_columns()) == [first, second]
    assert batch.all_rejected() == [
        RejectedEvent("d", "x", "y", 1),
        RejectedEvent("c", "missing_identifiers", "no email", 3),
    ]
    assert batch.rows == 2 + 1 + 1 + 3
    assert batch.all_columns().warnings["invalid_phone"].to_pylist() == [2, 0]


def test_arrays_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        EventColumns(pa.array(["a"]), pa.array([1, 2]), pa.array([b"{}"]))
    with pytest.raises(ValueError, match="one value per event"):
        EventColumns(pa.array(["a"]), pa.array([1]), pa.array([b"{}"]), {"invalid_phone": pa.array([1, 1])})
