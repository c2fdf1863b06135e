"""DuckDB sources: a database file opened read-only, or an in-memory database whose SQL reads files.

Rows come straight from DuckDB's Arrow export (``con.sql(q).to_arrow_reader(n)``), so the Arrow types are
DuckDB's: LIST -> list, STRUCT -> struct, DATE -> date32, TIMESTAMP -> timestamp[us],
TIMESTAMPTZ -> timestamp[us, tz=<the session TimeZone>], DECIMAL(p,s) -> decimal128(p,s), VARCHAR -> string.
"""

from __future__ import annotations

import os
import shutil
import tempfile
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


MEMORY_LIMIT_VARIABLE = "OFFRAMP_DUCKDB_MEMORY_LIMIT"


def _memory_config() -> dict[str, str | bool | int | float | list[str]]:
    """DuckDB's memory limit from ``OFFRAMP_DUCKDB_MEMORY_LIMIT`` (e.g. ``512MB``); empty when it is unset (DuckDB's
    default: 80% of the machine's memory).

    DuckDB runs in offramp's process, so a query's ORDER BY over millions of rows is sorted in offramp's memory;
    with a limit DuckDB sorts within it and spills the rest to disk.
    """
    limit = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip()
    if not limit:
        return {}
    try:
        duckdb.connect(":memory:", config={"memory_limit": limit}).close()
    except duckdb.Error as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(
            f"{MEMORY_LIMIT_VARIABLE}={limit!r} is not a memory size DuckDB takes ({reason})",
            hint=f"set {MEMORY_LIMIT_VARIABLE} to a size such as 512MB or 2GB, or unset it",
        ) from None
    return {"memory_limit": limit}


def _connect(database: str, *, read_only: bool) -> tuple[duckdb.DuckDBPyConnection, Path | None]:
    """A connection, and the private directory DuckDB spills to when a memory limit is set (removed on close)."""
    config = _memory_config()
    spill = None
    if config:
        # Next to a read-only database file DuckDB may not write; a directory of our own it may.
        spill = Path(tempfile.mkdtemp(prefix="offramp-duckdb-"))
        config["temp_directory"] = str(spill)
    try:
        return duckdb.connect(database, read_only=read_only, config=config), spill
    except BaseException:
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)
        raise


class DuckDBSource(Source):
    """A DuckDB database: a file (read-only) or in memory."""

    def __init__(self, path: Path | None) -> None:
        super().__init__()
        self._spill: Path | None = None
        if path is None:
            self._connection, self._spill = _connect(":memory:", read_only=False)
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
            self._connection, self._spill = _connect(str(path), read_only=True)
        except duckdb.Error as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(
                f"source: cannot open DuckDB file {path}: {reason}",
                hint="check that it is a DuckDB database of this DuckDB version and that no program holds it open "
                "for writing",
            ) from None

    def _close_connection(self) -> None:
        self._connection.close()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)

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
