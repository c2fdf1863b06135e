"""Runs of equal adjacent keys over the rows of a table, and reductions over them, without a Python object per run.

The vectorized preparer's events are runs of equal adjacent ``event_id`` s (after ``ordered_by_first_appearance``
where a batch's rows of one event are not adjacent). A run is found by one comparison of each row with the one before
it; per-run reductions are prefix sums read at the run boundaries (counts, ``any``), or ``take`` at the run starts
(the first row's value). Reductions that must follow row order exactly (the first present value, a float sum in row
order from 0.0) use pyarrow's hash aggregation on the run number with one thread, which visits rows in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


def ordered_by_first_appearance(keys: pa.Array) -> pa.Array | None:
    """Row positions that bring equal ``keys`` together, runs in order of each key's first row and rows in their
    order within a run; None when equal keys are adjacent already (nothing to move).

    ``dictionary_encode`` numbers the distinct keys in order of first appearance, and ``sort_indices`` is stable.
    """
    if len(keys) < 3:  # two rows are adjacent whatever they hold
        return None
    opens = pc.indices_nonzero(pa.concat_arrays([pa.array([True]), pc.not_equal(keys[1:], keys[:-1])]))
    firsts = pc.take(keys, opens)
    # Runs in increasing order (a query that sorts by the id) cannot repeat a key: no hash table needed.
    if len(firsts) < 2 or pc.all(pc.greater(firsts[1:], firsts[:-1])).as_py():
        return None
    encoded = pc.dictionary_encode(keys)
    if len(encoded.dictionary) == len(firsts):
        return None
    return pc.sort_indices(encoded.indices)


def _all(size: int, value: bool) -> pa.Array:
    """``size`` booleans, all ``value``."""
    return pc.fill_null(pa.nulls(size, pa.bool_()), value)


@dataclass(frozen=True)
class Segments:
    """The runs of equal adjacent values of a key column.

    Attributes:
        starts: ``int64``, the first row of each run.
        ends: ``int64``, one past the last row of each run.
        run: ``int32`` per row, the number of its run (0, 1, ...).
        opens: ``bool`` per row, whether it starts a run.
    """

    starts: pa.Array
    ends: pa.Array
    run: pa.Array
    opens: pa.Array

    @classmethod
    def of(cls, keys: pa.Array) -> Segments:
        """The runs of ``keys`` (no NULLs)."""
        size = len(keys)
        if size == 0:
            empty = pa.array([], pa.int64())
            return cls(empty, empty, pa.array([], pa.int32()), pa.array([], pa.bool_()))
        changed = pc.not_equal(keys[1:], keys[:-1])
        flags = pa.concat_arrays([pa.array([True]), changed])
        starts = pc.cast(pc.indices_nonzero(flags), pa.int64())
        ends = pa.concat_arrays([starts[1:], pa.array([size], pa.int64())])
        run = pc.subtract(pc.cumulative_sum(pc.cast(flags, pa.int32())), pa.scalar(1, pa.int32()))
        return cls(starts, ends, run, flags)

    def __len__(self) -> int:
        return len(self.starts)

    def counts(self) -> pa.Array:
        """Rows per run (``int64``)."""
        return pc.subtract(self.ends, self.starts)

    def sums(self, values: pa.Array) -> pa.Array:
        """Per run, the sum of integer (or boolean) ``values`` (``int64``; NULL counts 0), from prefix sums."""
        numbers = pc.fill_null(pc.cast(values, pa.int64()), 0)
        prefix = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(numbers)])
        return pc.subtract(pc.take(prefix, self.ends), pc.take(prefix, self.starts))

    def any(self, mask: pa.Array) -> pa.Array:
        """Per run, whether ``mask`` (boolean, NULL false) holds on any of its rows."""
        # A mask that is the same on every row (no row has a reason, every row has an identifier: nearly always) has
        # the same answer for every run: no prefix sums.
        if not pc.any(mask).as_py():
            return _all(len(self), False)
        if pc.all(pc.fill_null(mask, False)).as_py():
            return _all(len(self), True)
        return pc.greater(self.sums(mask), 0)

    def first(self, values: pa.Array) -> pa.Array:
        """Per run, the value of its first row."""
        return pc.take(values, self.starts)

    def broadcast(self, per_run: pa.Array) -> pa.Array:
        """Per row, the value of its run."""
        return pc.take(per_run, self.run)

    def agree(self, values: pa.Array) -> pa.Array:
        """Per run, whether every row has the value of its first row (NULL equals NULL).

        Each row is compared with the row before it (equality is transitive): no value is moved.
        """
        if len(values) < 2:
            return pa.array([True] * len(self), pa.bool_())
        later, earlier = values[1:], values[:-1]
        same = pc.fill_null(pc.equal(later, earlier), False)
        if values.null_count:
            same = pc.or_(same, pc.and_(later.is_null(), earlier.is_null()))
        # A row that opens a run is compared with nothing.
        differs = pc.and_(pc.invert(same), pc.invert(self.opens[1:]))
        if not pc.any(differs).as_py():
            return _all(len(self), True)  # nearly always (the line items of an order agree): no prefix sums
        return pc.invert(self.any(pa.concat_arrays([pa.array([False]), differs])))


__all__ = ["Segments", "ordered_by_first_appearance"]
