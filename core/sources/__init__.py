"""Where an orchestration's rows come from: DuckDB (a file, read-only, or in-memory over Parquet/CSV/JSON) or any
SQLAlchemy URL, streamed as Arrow record batches of bounded size.

Only a single read query runs; anything else is refused before it reaches the engine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa

from offramp.core.config import ENV_PREFIX
from offramp.core.errors import ConfigError
from offramp.core.orchestration_options import DUCKDB_MEMORY, DUCKDB_PREFIX

_COMMENTS_AND_STRINGS = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", re.S)
_READ_STARTS = ("select", "with", "from", "values", "(")  # DuckDB's FROM-first and VALUES are reads too


class SourceQueryError(ConfigError):
    """The engine refused the orchestration's SQL."""


def check_read_only_query(sql: str) -> str:
    """``sql`` if it is one read query (SELECT, WITH ... SELECT, DuckDB's FROM-first, VALUES); else ConfigError."""
    bare = _COMMENTS_AND_STRINGS.sub(" ", sql).strip().rstrip(";").strip()
    if not bare:
        raise ConfigError("the orchestration's SQL is empty", hint="write one SELECT")
    if ";" in bare:
        raise ConfigError("the orchestration's SQL holds more than one statement", hint="keep one SELECT")
    first = bare.split(None, 1)[0].lower()
    if not first.startswith(_READ_STARTS):
        raise ConfigError(
            f"the orchestration's SQL is a {first.upper()} statement; only a read query runs",
            hint="write one SELECT (or WITH ... SELECT) that returns the rows to send",
        )
    if first == "with" and re.search(r"\b(insert|update|delete|merge)\b", bare, re.I):
        raise ConfigError("the orchestration's WITH query writes data; only a read query runs", hint="write a SELECT")
    return sql


def _query_error(exc: Exception, sql: str) -> SourceQueryError:
    """The engine's message, and the query line it points at: by its ``LINE n`` (DuckDB's parser, PostgreSQL),
    else the first line naming the identifier the message quotes (DuckDB's binder gives no position)."""
    text = str(exc).strip()
    lines_of_message = [line for line in text.splitlines() if line.strip()]
    message = lines_of_message[0] if lines_of_message else type(exc).__name__
    candidates = [line for line in lines_of_message[1:] if line.startswith("Candidate")]
    if candidates:
        message = f"{message} ({candidates[0]})"
    lines = sql.splitlines()
    number = None
    match = re.search(r"LINE (\d+):", text)
    if match:
        number = int(match.group(1))
    else:
        quoted = re.search(r'"([^"]+)"', message)
        if quoted:
            number = next((i for i, line in enumerate(lines, 1) if quoted.group(1) in line), None)
    where = f" at line {number}: {lines[number - 1].strip()!r}" if number and 0 < number <= len(lines) else ""
    return SourceQueryError(f"the query failed: {message}{where}", hint="fix the orchestration's SQL")


class Source:
    """An open source; ``batches`` streams a query's result."""

    def __init__(self, reference: str) -> None:
        self._reference = reference
        self._duckdb: duckdb.DuckDBPyConnection | None = None
        self._engine: Any = None
        target = reference
        if target.startswith(ENV_PREFIX):
            name = target[len(ENV_PREFIX) :]
            target = os.environ.get(name, "")
            if not target:
                raise ConfigError(f"source: environment variable {name} is not set", hint=f"export {name}=...")
        if target == DUCKDB_MEMORY:
            self._duckdb = duckdb.connect()
        elif target.startswith(DUCKDB_PREFIX) and not target.startswith("duckdb://"):
            path = Path(target[len(DUCKDB_PREFIX) :])
            if not path.exists():
                raise ConfigError(f"source: DuckDB file {path} does not exist", hint="check the orchestration's source")
            self._duckdb = duckdb.connect(str(path), read_only=True)
        if self._duckdb is not None:
            # DuckDB draws a progress bar on stdout for queries over two seconds: it would corrupt `--json`.
            self._duckdb.execute("SET enable_progress_bar = false")
        else:
            from sqlalchemy import create_engine

            self._engine = create_engine(target)

    def __enter__(self) -> Source:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._duckdb is not None:
            self._duckdb.close()
        if self._engine is not None:
            self._engine.dispose()

    def batches(self, sql: str, batch_rows: int, limit: int | None = None) -> Iterator[pa.RecordBatch]:
        """The result as record batches of at most ``batch_rows`` rows; at most ``limit`` rows in all."""
        check_read_only_query(sql)
        left = limit
        for batch in self._stream(sql, batch_rows):
            if left is not None:
                if left <= 0:
                    return
                batch = batch.slice(0, left)
                left -= batch.num_rows
            if batch.num_rows:
                yield batch

    def _stream(self, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        if self._duckdb is not None:
            try:
                reader = self._duckdb.sql(sql.strip().rstrip(";")).to_arrow_reader(batch_rows)
            except duckdb.Error as exc:
                raise _query_error(exc, sql) from None
            yield from reader
            return
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError, OperationalError

        try:
            connection_context = self._engine.connect()
        except OperationalError as exc:
            # The driver's message names the host and the problem, never the password.
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise ConfigError(
                f"source: cannot connect to the database: {reason}",
                hint="check the source URL (or the environment variable holding it) and that the database is up",
            ) from None
        with connection_context as connection:
            try:
                result = connection.execution_options(stream_results=True).execute(text(sql))
            except DBAPIError as exc:
                raise _query_error(exc.orig or exc, sql) from None
            names = list(result.keys())
            schema: pa.Schema | None = None
            for rows in result.partitions(batch_rows):
                columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
                table = pa.table(columns) if schema is None else pa.table(columns, schema=schema)
                if schema is None and all(not pa.types.is_null(t) for t in table.schema.types):
                    schema = table.schema
                yield from table.to_batches()


def open_source(reference: str) -> Source:
    """Open an orchestration's source (see ``orchestration_options.check_source`` for the forms)."""
    return Source(reference)


__all__ = ["Source", "SourceQueryError", "check_read_only_query", "open_source"]
