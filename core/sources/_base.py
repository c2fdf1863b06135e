"""The interface every source implements, and the parts of ``batches`` that do not depend on the engine."""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Self

import pyarrow as pa

from offramp.core.errors import ConfigError
from offramp.core.sources._query import check_read_only_query


class Source(ABC):
    """An open data source. Use it as a context manager, or call :meth:`close`.

    ``batches`` may be called more than once (one query after the other, or interleaved: each call reads through
    its own cursor).
    """

    def __init__(self) -> None:
        # The streams handed out and not finished yet, so that close() can end them.
        self._streams: weakref.WeakSet[Generator[pa.RecordBatch, None, None]] = weakref.WeakSet()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def batches(self, sql: str, batch_rows: int, limit: int | None = None) -> Iterator[pa.RecordBatch]:
        """Stream the result of ``sql`` as Arrow record batches.

        Every batch has the same schema and at most ``batch_rows`` rows (never zero); only a few batches are
        in memory at a time, whatever the size of the result. The SQL is checked before it runs
        (:func:`check_read_only_query`); ``sql``, ``batch_rows`` and ``limit`` are checked when this is called,
        the query runs at the first ``next()``.

        Args:
            sql: One read query.
            batch_rows: The most rows in one batch (at least 1).
            limit: The most rows in all (``None``: every row). Reading stops there: the engine is asked for no
                more than ``limit`` rows where it can be (DuckDB), and the cursor is closed otherwise.

        Raises:
            ConfigError: the SQL is not one read query, or ``batch_rows``/``limit`` are out of range.
            SourceQueryError: (while iterating) the engine refused or failed the SQL.
        """
        query = check_read_only_query(sql)
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise ConfigError(f"batch size {batch_rows!r} is not a positive whole number", hint="use 1000, say")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ConfigError(f"limit {limit!r} is not a whole number of rows", hint="use 0 or more, or no limit")
        stream = self._deliver(query, batch_rows, limit)
        self._streams.add(stream)
        return stream

    def close(self) -> None:
        """Close every stream still open (they end: the next ``next()`` raises StopIteration), then the
        connection. Safe to call twice."""
        for stream in list(self._streams):
            stream.close()
        self._close_connection()

    def _deliver(self, query: str, batch_rows: int, limit: int | None) -> Generator[pa.RecordBatch, None, None]:
        if limit == 0:
            return
        left = limit
        stream = self._stream(query, batch_rows if limit is None else min(batch_rows, limit), limit)
        try:
            for batch in stream:
                # Engines promise batches of *at most* the size asked (DuckDB) or exactly it; cut anything larger
                # so the promise holds whatever a driver does.
                for start in range(0, batch.num_rows, batch_rows):
                    piece = batch if batch.num_rows <= batch_rows else batch.slice(start, batch_rows)
                    if left is not None:
                        piece = piece.slice(0, left)
                        left -= piece.num_rows
                    if piece.num_rows:
                        yield piece
                    if left == 0:
                        return
        finally:
            # Now, not at garbage collection: an open DuckDB reader holds its cursor, a server-side cursor its
            # transaction.
            stream.close()

    @abstractmethod
    def _stream(self, query: str, fetch_rows: int, limit: int | None) -> Generator[pa.RecordBatch, None, None]:
        """The result of a checked query in batches of at most about ``fetch_rows`` rows."""

    @abstractmethod
    def _close_connection(self) -> None:
        """Release the engine's connection. Safe to call twice."""


__all__ = ["Source"]
