"""Ledger keys packed into one blob: how a settled batch (``ledger_batches.keys``) holds its events' keys.

zlib (level 1: fast, and hex ids still shrink by half) of the keys' UTF-8, NUL-separated: a ledger key never holds
a NUL (offramp.core.runner.ledger.key gives such an id a stand-in). A leading format byte lets a later version read
what an earlier one wrote, and refuse what it does not know.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from offramp.core.errors import StateError

_PACKED = b"\x01"  # the format: the count (4 bytes), then zlib of the rows (int32 each) and the keys, NUL-separated


def pack_keys(stored: pa.Array | Sequence[str], rows: pa.Array | Sequence[int]) -> bytes:
    """Ledger keys and each event's source rows as one compact blob (a settled batch's); :func:`unpack_keys`
    reads it back."""
    values = stored.to_pylist() if isinstance(stored, (pa.Array, pa.ChunkedArray)) else list(stored)
    counts = rows if isinstance(rows, (pa.Array, pa.ChunkedArray)) else pa.array(list(rows), pa.int64())
    if len(counts) != len(values):
        raise ValueError("one row count per key")
    # Arrow's own buffer (native byte order: the blob is read back on the machines that write it, all little-endian
    # in practice); concatenated first, so that a slice's offset is not in the way.
    narrow = pa.concat_arrays([pc.cast(counts, pa.int32())]) if len(counts) else pa.array([], pa.int32())
    data = narrow.buffers()[1]
    packed_rows = b"" if data is None else data.to_pybytes()[: 4 * len(values)]
    # The count tells no keys from one empty key.
    body = packed_rows + "\x00".join(values).encode("utf-8")
    return _PACKED + len(values).to_bytes(4, "big") + zlib.compress(body, 1)


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
    rows = pa.py_buffer(body[: 4 * count])
    text = body[4 * count :].decode("utf-8")
    keys = pc.list_flatten(pc.split_pattern(pa.array([text], pa.string()), "\x00"))
    return keys, pa.Array.from_buffers(pa.int32(), count, [None, rows])


__all__ = ["pack_keys", "unpack_keys"]
