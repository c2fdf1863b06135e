"""DuckDB sources: a database file opened read-only, or an in-memory database whose SQL reads files.

Rows come straight from DuckDB's Arrow export (``con.sql(q).to_arrow_reader(n)``), so the Arrow types are
DuckDB's: LIST -> list, STRUCT -> struct, DATE -> date32, TIMESTAMP -> timestamp[us],
TIMESTAMPTZ -> timestamp[us, tz=<the session TimeZone>], DECIMAL(p,s) -> decimal128(p,s), VARCHAR -> string.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import duckdb
import pyarrow as pa

from offramp.core.errors import ConfigError
from offramp.core.sources._base import Source
from offramp.core.sources._query import HINT, query_error


def _refused_by_parser(statements: list[duckdb.Statement]) -> ConfigError | None:
    """Second guard: DuckDB's own parser must see exactly one SELECT (VALUES, FROM-first and TABLE parse as one)."""
    if len(statements) != 1:
        return ConfigError(
            f"DuckDB reads {len(statements)} statements in the orchestration's SQL; it must be one SELECT",
            hint=HINT,
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        return ConfigError(
            f"DuckDB reads the orchestration's SQL as a {kind.name} statement; it must be one SELECT", hint=HINT
        )
    return None


class DuckDBSource(Source):
    """A DuckDB database: a file (read-only) or in memory."""

    def __init__(self, path: Path | None) -> None:
        super().__init__()
        if path is None:
            self._connection = duckdb.connect(":memory:")
            return
        if not path.exists():
            raise ConfigError(
                f"source: DuckDB file {path} does not exist (relative paths start at {os.getcwd()})",
                hint="check the orchestration's source path, or create the database first",
            )
        if not path.is_file():
            raise ConfigError(f"source: {path} is not a file", hint="point duckdb:PATH at a DuckDB database file")
        try:
            # Read-only: offramp never writes to a customer's database, and a reader does not block their
            # other readers.
            self._connection = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(
                f"source: cannot open DuckDB file {path}: {reason}",
                hint="check that it is a DuckDB database of this DuckDB version and that no program holds it open "
                "for writing",
            ) from None

    def _close_connection(self) -> None:
        self._connection.close()

    def _stream(self, query: str, fetch_rows: int, limit: int | None) -> Generator[pa.RecordBatch, None, None]:
        try:
            refusal = _refused_by_parser(duckdb.extract_statements(query))
        except duckdb.Error as exc:
            raise query_error(exc, query, "DuckDB") from None
        if refusal is not None:
            raise refusal
        # An open reader owns the connection it runs on: each stream gets its own cursor, so two streams (or a
        # stream and a side query) never collide.
        cursor = self._connection.cursor()
        try:
            # DuckDB draws a progress bar on stdout for long queries: it would corrupt `--json` output.
            cursor.execute("SET enable_progress_bar = false")
            try:
                relation = cursor.sql(query)
                if limit is not None and len(set(relation.columns)) == len(relation.columns):
                    # Let DuckDB stop early (and sort top-N instead of everything). Skipped when names repeat:
                    # limit() would rename the second `a` to `a_1`.
                    relation = relation.limit(limit)
                reader = relation.to_arrow_reader(fetch_rows)
            except duckdb.Error as exc:
                raise query_error(exc, query, "DuckDB") from None
            try:
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                    except (duckdb.Error, pa.ArrowException, OSError) as exc:
                        # A failure while rows stream (a cast that fails on row 50,000) surfaces through Arrow's
                        # C stream as an OSError holding DuckDB's message.
                        raise query_error(exc, query, "DuckDB") from None
                    yield batch
            finally:
                reader.close()
        finally:
            cursor.close()


__all__ = ["DuckDBSource"]
