"""JSON written a column at a time with Arrow string kernels: the bytes ``orjson`` writes, without an object per value.

``payload.event_json`` (orjson) is the specification. What it does that matters here:

- a string is quoted; ``"``, ``\\`` and control characters below U+0020 are escaped, everything else (DEL,
  non-ASCII, U+2028) is written as UTF-8 as it is. Values that need an escape are rare: only those are written by
  orjson itself, once per distinct value; the rest are quoted by a kernel.
- a float is its shortest round-trip form, with ``.0`` when it is whole, and an exponent below 1e-5 or from 1e16
  (``3e-6``, not ``0.000003``). Arrow's cast to text writes the same digits between 1e-5 and 1e11 when it writes
  no exponent (but ``2`` for ``2.0``); orjson writes the (rare) others.

NULL means "absent": templates propagate it (``concat``), and ``members`` leaves absent members out. pyarrow's
``binary_join_element_wise(null_handling="skip")`` is not used: in pyarrow 26 it drops rows whose inputs are all NULL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import orjson
import pyarrow as pa
import pyarrow.compute as pc

_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
# Every byte but those JSON escapes: ``bytes.translate`` deleting them leaves only the ones that need escaping, in one
# pass of C (some eight times faster than a regular expression's search over the same bytes).
_PLAIN_BYTES = bytes(byte for byte in range(256) if byte >= 0x20 and byte not in (0x22, 0x5C))
# Where Arrow's shortest form of a double has orjson's digits and notation (whole numbers aside).
_PLAIN_FROM = 1e-5
_PLAIN_BELOW = 1e11
_TEXT = pa.string()

Part: TypeAlias = "pa.Array | str"  # a piece of a template: a column, or the same text on every row


@dataclass(frozen=True)
class Value:
    """A column of JSON values (NULL: absent). ``quote``: ``text`` is raw text that needs no escape, to be written
    between quotes (the quotes then go into the template's constant text, which costs no pass over the column).
    ``around``: constant text written before and after every value (``["`` and ``"]`` around joined hashes), in the
    template too, for the same reason."""

    text: pa.Array
    quote: bool = False
    around: tuple[str, str] = ("", "")

    @property
    def opening(self) -> str:
        """The constant text before each value's ``text``."""
        return self.around[0] + ('"' if self.quote else "")

    @property
    def closing(self) -> str:
        """The constant text after each value's ``text``."""
        return ('"' if self.quote else "") + self.around[1]

    @property
    def always(self) -> bool:
        """Whether every row has a value."""
        return bool(self.text.null_count == 0)

    @property
    def present(self) -> bool:
        """Whether any row has a value (members no row has are left out of a template altogether)."""
        return bool(self.text.null_count < len(self.text))

    def written(self) -> pa.Array:
        """The JSON text of each value."""
        opening, closing = self.opening, self.closing
        return concat(opening, self.text, closing) if opening or closing else self.text


def _replaced(written: pa.Array, mask: pa.Array, values: pa.Array) -> pa.Array:
    """``written`` with the values under ``mask`` written by orjson (once per distinct value)."""
    encoded = pc.dictionary_encode(values.filter(mask))
    dumped = pa.array([orjson.dumps(value).decode() for value in encoded.dictionary.to_pylist()], _TEXT)
    return pc.replace_with_mask(written, mask, pc.take(dumped, encoded.indices))


def single(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` as one array: a chunked array's only chunk as it is (``combine_chunks`` would copy it)."""
    if not isinstance(values, pa.ChunkedArray):
        return values
    return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()


_array = single


def text_bytes(values: pa.Array) -> memoryview | None:
    """The UTF-8 text of a ``string`` array's values, all rows' end to end, without a copy (NULL rows hold none);
    None for another type."""
    if not pa.types.is_string(values.type):
        return None
    _, offsets, data = values.buffers()
    if data is None or len(values) == 0:
        return memoryview(b"")
    # A slice shares its parent's buffers: only the bytes between its first and last offset are its own.
    bounds = memoryview(offsets).cast("i")
    return memoryview(data)[bounds[values.offset] : bounds[values.offset + len(values)]]


def _may_need_escape(values: pa.Array) -> bool:
    """Whether any byte of the values' text is one that JSON escapes: one scan of the text, no pass per value."""
    text = text_bytes(values)
    return text is None or bool(bytes(text).translate(None, _PLAIN_BYTES))


def strings(values: pa.Array | pa.ChunkedArray) -> Value:
    """Text values as JSON strings."""
    values = _array(values)
    if not _may_need_escape(values):
        return Value(values, quote=True)
    needs = pc.fill_null(pc.match_substring_regex(values, _NEEDS_ESCAPE), False)
    if not pc.any(needs).as_py():
        return Value(values, quote=True)
    return Value(_replaced(concat('"', values, '"'), needs, values))


def _per_distinct(values: pa.Array, write: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``write(values)``, computed once per distinct value when values repeat (prices, quantities)."""
    encoded = pc.dictionary_encode(values)
    if len(encoded.dictionary) * 2 > len(values):
        return write(values)
    return pc.take(write(encoded.dictionary), encoded.indices)


def floats(values: pa.Array | pa.ChunkedArray, *, repeat: bool = True) -> Value:
    """Doubles as orjson writes them (no NaN or infinity reaches here: they are refused). ``repeat``: whether values
    may repeat enough to be written once per distinct value (an event's total nearly never repeats: no hash table)."""
    doubles = pc.cast(_array(values), pa.float64())
    return Value(_per_distinct(doubles, _floats) if repeat else _floats(doubles))


def _floats(values: pa.Array) -> pa.Array:
    written = pc.cast(values, _TEXT)
    whole = pc.fill_null(pc.equal(values, pc.floor(values)), False)
    if pc.any(whole).as_py():
        written = pc.replace_with_mask(written, whole, concat(written.filter(whole), ".0"))
    size = pc.abs(values)
    plain = pc.or_(pc.and_(pc.greater_equal(size, _PLAIN_FROM), pc.less(size, _PLAIN_BELOW)), pc.equal(size, 0.0))
    # Arrow writes some whole numbers in range with an exponent (``1e+10``): orjson writes those too.
    odd = pc.fill_null(pc.or_(pc.invert(plain), pc.match_substring(written, "e")), False)
    if pc.any(odd).as_py():
        written = _replaced(written, odd, values)
    return written


def quantities(values: pa.Array | pa.ChunkedArray) -> Value:
    """Quantities as ``payload.content_item`` writes them: an integer when whole, else as ``floats``."""
    return Value(_per_distinct(pc.cast(_array(values), pa.float64()), _quantities))


def _quantities(values: pa.Array) -> pa.Array:
    whole = pc.fill_null(pc.equal(values, pc.floor(values)), False)
    # Quantities are below 1e15 (larger ones are refused), so the integer is exact.
    integers = pc.cast(pc.cast(pc.if_else(whole, values, pa.scalar(0.0)), pa.int64()), _TEXT)
    integers = pc.if_else(values.is_valid(), integers, pa.scalar(None, _TEXT))
    fractional = pc.and_(pc.invert(whole), values.is_valid())
    if not pc.any(fractional).as_py():
        return integers
    return pc.replace_with_mask(integers, fractional, _floats(values.filter(fractional)))


def _merged(parts: Sequence[Part]) -> list[Part]:
    """``parts`` with adjacent constant texts joined (each part costs a pass of the kernel)."""
    result: list[Part] = []
    for part in parts:
        if isinstance(part, str) and result and isinstance(result[-1], str):
            result[-1] = result[-1] + part
        elif not (isinstance(part, str) and part == ""):
            result.append(part)
    return result


def concat(*parts: Part) -> pa.Array:
    """The parts joined with nothing between them, per row; NULL where any column part is NULL."""
    merged = _merged(parts)
    if not any(isinstance(part, pa.Array) for part in merged):
        raise ValueError("a template needs at least one column")
    return pc.binary_join_element_wise(*merged, "")


def _member(key: str, value: Value, *, before: str, after: str) -> list[Part]:
    return [f'{before}"{key}":{value.opening}', value.text, f"{value.closing}{after}"]


def object_parts(pairs: Sequence[tuple[str, Value]], size: int) -> tuple[list[Part], bool]:
    """The insides of a JSON object, ``"key":value`` for each present value joined by commas, as template parts;
    and whether it has a member on every row (else it may be ``''``).

    Members no row has are left out. When some member is on every row, the members before it are written with a
    comma after them and those after it with a comma before, so that no comma is ever left over; optional members
    are written into a column of their own each (``''`` where absent).
    """
    pairs = [(key, value) for key, value in pairs if value.present]
    anchor = next((index for index, (_, value) in enumerate(pairs) if value.always), None)
    parts: list[Part] = []
    for index, (key, value) in enumerate(pairs):
        if anchor is None:
            before, after = ",", ""
        else:
            before, after = ("", ",") if index < anchor else ("," if index > anchor else "", "")
        member = _member(key, value, before=before, after=after)
        parts += member if value.always else [pc.fill_null(concat(*member), "")]
    if anchor is not None:
        return parts, True
    if not parts:
        return [], False
    # No member on every row: each wrote a leading comma, and the first one is cut.
    joined = parts[0] if len(parts) == 1 else concat(*parts)
    return [pc.utf8_slice_codeunits(joined, 1)], False


def wrapped(key: str, pairs: Sequence[tuple[str, Value]], size: int) -> list[Part]:
    """Template parts for ``,"key":{...}``, or nothing on rows where the object would be empty."""
    parts, always = object_parts(pairs, size)
    if not parts:
        return []
    if always:
        return [f',"{key}":{{', *parts, "}"]
    inner = parts[0]
    assert isinstance(inner, pa.Array)
    return [pc.if_else(pc.equal(inner, ""), "", concat(f',"{key}":{{', inner, "}"))]


def present(values: pa.Array) -> bool:
    """Whether any value is not NULL."""
    return bool(values.null_count < len(values))


__all__ = [
    "Part",
    "Value",
    "concat",
    "floats",
    "object_parts",
    "present",
    "quantities",
    "single",
    "strings",
    "text_bytes",
    "wrapped",
]
