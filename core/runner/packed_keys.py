"""Ledger keys packed into one blob: how a settled batch (``ledger_batches.keys``) holds its events' keys.

zlib (level 1: fast, and hex ids still shrink by half) of the keys' UTF-8, NUL-separated: a ledger key never holds
a NUL (offramp.core.runner.ledger.key gives such an id a stand-in). A leading format byte lets a later version read
what an earlier one wrote, and refuse what it does not know.
"""

from __future__ import annotations

import sys
import zlib
from array import array
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from offramp.core.errors import StateError

# The format: the count (4 bytes, big-endian), then zlib of the rows (int32 each, little-endian) and the keys,
# NUL-separated.
_PACKED = b"\x01"


def pack_keys(stored: pa.Array | Sequence[str], rows: pa.Array | Sequence[int]) -> bytes:
    """Ledger keys and each event's source rows as one compact blob (a settled batch's); :func:`unpack_keys`
    reads it back. Joined by Arrow, without a Python string per key."""
    keys = _array(stored, pa.string())
    counts = _array(rows, pa.int64())
    if len(counts) != len(keys):
        raise ValueError("one row count per key")
    if len(keys) == 0:
        return _PACKED + (0).to_bytes(4, "big") + zlib.compress(b"", 1)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(keys)], pa.int32()), keys), "\x00")
    body = _little_endian(pc.cast(counts, pa.int32())) + joined.cast(pa.binary())[0].as_py()
    # The count tells no keys from one empty key.
    return _PACKED + len(keys).to_bytes(4, "big") + zlib.compress(body, 1)


def _array(values: pa.Array | pa.ChunkedArray | Sequence[object], kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().cast(kind)
    return values.cast(kind) if isinstance(values, pa.Array) else pa.array(list(values), kind)


def _little_endian(counts: pa.Array) -> bytes:
    """int32 values as little-endian bytes, whatever the machine (several hosts may share one store)."""
    data = pa.concat_arrays([counts]).buffers()[1]  # concatenated: a slice's offset is not in the way
    return _swapped_on_big_endian(b"" if data is None else data.to_pybytes()[: 4 * len(counts)])


def _swapped_on_big_endian(data: bytes) -> bytes:
    """Native int32 bytes to little-endian ones, and back: the same bytes on a little-endian machine."""
    if sys.byteorder == "little":
        return data
    values = array("i", data)
    values.byteswap()
    return values.tobytes()


def unpack_keys(blob: bytes) -> tuple[pa.Array, pa.Array]:
    """The keys (a string array) and their rows (``int32``) of a blob :func:`pack_keys` wrote."""
    if not blob.startswith(_PACKED):
        raise StateError("a ledger batch holds keys in a format this version of offramp cannot read",
                         hint="upgrade offramp to the version that wrote this run")  # fmt: skip
    start = len(_PACKED) + 4
    count = int.from_bytes(blob[len(_PACKED) : start], "big")
    if count == 0:
        return pa.array([], pa.string()), pa.array([], pa.int32())
    body = zlib.decompress(blob[start:])
    rows = _swapped_on_big_endian(body[: 4 * count])
    text = body[4 * count :].decode("utf-8")
    keys = pc.list_flatten(pc.split_pattern(pa.array([text], pa.string()), "\x00"))
    return keys, pa.Array.from_buffers(pa.int32(), count, [None, pa.py_buffer(rows)])


__all__ = ["pack_keys", "unpack_keys"]
