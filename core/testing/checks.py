"""Helpers of the conformance suite that a plugin's own tests may use too."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from offramp.core.destination_api import PreparedBatch, Preparer

# Odd sizes, with an empty batch, so line items of one event straddle batch boundaries in every possible way.
ODD_BATCH_SIZES: tuple[int, ...] = (1, 2, 0, 3, 5, 7, 11, 13)


def record_batches(table: pa.Table, sizes: Sequence[int] = ODD_BATCH_SIZES) -> list[pa.RecordBatch]:
    """``table`` cut into record batches of ``sizes`` rows, cycling through them until every row is in one."""
    if not sizes or not any(sizes) or min(sizes) < 0:
        raise ValueError("sizes must be whole numbers, at least one of them above 0")
    batches: list[pa.RecordBatch] = []
    offset = 0
    for size in itertools.cycle(sizes):
        if offset >= table.num_rows:
            break
        batches.append(one_batch(table.slice(offset, size)))
        offset += size
    return batches


def one_batch(table: pa.Table) -> pa.RecordBatch:
    """All of ``table``'s rows as a single record batch (possibly empty), with its schema."""
    combined = table.combine_chunks().to_batches()
    if not combined:
        return pa.RecordBatch.from_pylist([], schema=table.schema)
    if len(combined) != 1:
        raise AssertionError(f"expected one record batch after combine_chunks, got {len(combined)}")
    return combined[0]


def prepare_all(preparer: Preparer, batches: Iterable[pa.RecordBatch]) -> PreparedBatch:
    """What ``preparer`` makes of all ``batches``, ``finish()`` included, as one :class:`PreparedBatch`.

    Events a preparer returned as columns (:class:`~offramp.core.destination_api.EventColumns`) are turned into
    objects, in order, so the result's ``events`` hold them all.
    """
    result = PreparedBatch()
    for part in [*(preparer.prepare(batch) for batch in batches), preparer.finish()]:
        result.events.extend(part.all_events())
        result.rejected.extend(part.all_rejected())
    return result


def assert_no_secrets(secrets: Iterable[str], texts: Iterable[str | bytes], where: str) -> None:
    """Fail if any secret occurs in any text; the failure names the secret's position, never its value.

    Raises:
        AssertionError: A secret was found, or a secret is empty (it would match everything).
    """
    values = list(secrets)
    if any(not value for value in values):
        raise AssertionError("the harness lists an empty secret")
    encoded = [value.encode() for value in values]
    for number, text in enumerate(texts):
        for index, (value, raw) in enumerate(zip(values, encoded, strict=True)):
            found = raw in text if isinstance(text, bytes) else value in text
            if found:
                # Printing the text would print the secret into CI logs: say where it is instead.
                raise AssertionError(f"secret #{index} of the harness appears in {where} (text #{number})")


def log_texts(records: Iterable[logging.LogRecord]) -> Iterator[str]:
    """Each record as a handler would write it, with its traceback, plus its raw message and arguments."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        yield formatter.format(record)
        yield str(record.msg)
        yield repr(record.args)


def error_texts(error: BaseException) -> list[str]:
    """Everything a caller may print of an exception: ``str``, ``repr``, an offramp error's hint and fields."""
    texts = [str(error), repr(error), *(str(arg) for arg in error.args)]
    hint = getattr(error, "hint", None)
    if hint is not None:
        texts.append(str(hint))
    fields: Any = getattr(error, "fields", None)
    if fields:
        texts.append(repr(fields))
    if error.__cause__ is not None:
        texts.extend(error_texts(error.__cause__))
    return texts


def leaf_values(value: Any) -> Iterator[Any]:
    """The scalars inside a Python value made from an Arrow cell (lists and structs are walked)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaf_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from leaf_values(item)
    elif value is not None:
        yield value


__all__ = [
    "ODD_BATCH_SIZES",
    "assert_no_secrets",
    "error_texts",
    "leaf_values",
    "log_texts",
    "one_batch",
    "prepare_all",
    "record_batches",
]
