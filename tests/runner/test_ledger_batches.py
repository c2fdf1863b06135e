"""The ledger's batch shape: keys computed a column at a time are the keys computed one by one, and a packed
batch reads back exactly (keys and rows), whatever the ids hold."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from offramp.core.runner import ledger
from offramp.core.runner.packed_keys import pack_keys, unpack_keys

# Ids as Arrow holds them (valid UTF-8): short and long, with NULs, the made-up keys' mark and non-ASCII.
ids = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
        st.text(alphabet="ab\x00\uffff\u00e9", min_size=250, max_size=300),
    ),
    max_size=20,
)


@given(ids)
def test_keys_of_a_column_are_the_keys_of_each_id(values: list[str]) -> None:
    assert ledger.keys(pa.array(values, pa.string())).to_pylist() == [ledger.key(value) for value in values]


@given(ids, st.data())
def test_packed_keys_and_rows_read_back_as_written(values: list[str], data: st.DataObject) -> None:
    stored = [ledger.key(value) for value in values]
    rows = data.draw(
        st.lists(st.integers(min_value=0, max_value=2**31 - 1), min_size=len(stored), max_size=len(stored))
    )
    keys, counts = unpack_keys(pack_keys(stored, rows))
    assert keys.to_pylist() == stored and counts.to_pylist() == rows


def test_one_empty_key_is_not_no_key() -> None:
    assert unpack_keys(pack_keys([""], [1]))[0].to_pylist() == [""]
    assert unpack_keys(pack_keys([], []))[0].to_pylist() == []
