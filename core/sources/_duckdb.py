"""DuckDB sources: a database file opened read-only, or an in-memory database whose SQL reads files.

Rows come straight from DuckDB's Arrow export (``con.sql(q).to_arrow_reader(n)``), so the Arrow types are
DuckDB's: LIST -> list, STRUCT -> struct, DATE -> date32, TIMESTAMP -> timestamp[us],
TIMESTAMPTZ -> timestamp[us, tz=<the session TimeZone>], DECIMAL(p,s) -> decimal128(p,s), VARCHAR -> string.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Generator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from offramp.core.errors import ConfigError
from offramp.core.sources._allowed import FLAG, OPTION, check_allowed_paths
from offramp.core.sources._base import Source
from offramp.core.sources._query import HINT, SourceQueryError, query_error


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


def _connect(database: str, *, read_only: bool, allowed: Sequence[Path]) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """A connection that reads only ``database`` and the ``allowed`` paths, and the private directory DuckDB spills
    to (removed on close).

    External access is off (``enable_external_access``) but for DuckDB's ``allowed_directories`` and
    ``allowed_paths``; no extension is installed or loaded on a query's behalf; the configuration is then locked
    (``lock_configuration``), so the query cannot switch any of this back. DuckDB itself allows the database file
    and its temporary directory.
    """
    config: dict[str, str | bool | int | float | list[str]] = {
        **_memory_config(),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    # A directory of our own: DuckDB's default (.tmp in the working directory, or next to a read-only database
    # file) would be readable by the query, and next to a read-only file it may not write.
    spill = Path(tempfile.mkdtemp(prefix="offramp-duckdb-"))
    config["temp_directory"] = str(spill)
    # A path that does not exist (yet) may become either: allowed as both.
    directories = [str(path) for path in allowed if path.is_dir() or not path.exists()]
    files = [str(path) for path in allowed if not path.is_dir()]
    try:
        connection = duckdb.connect(database, read_only=read_only, config=config)
        try:
            connection.execute("SET allowed_directories = $1", [directories])
            connection.execute("SET allowed_paths = $1", [files])
            # Each stream's cursor turns DuckDB's progress bar off (it would corrupt --json output on stdout).
            connection.execute("SET allowed_configs = ['enable_progress_bar']")
            connection.execute("SET enable_external_access = false")
            connection.execute("SET lock_configuration = true")
        except BaseException:
            connection.close()
            raise
        return connection, spill
    except BaseException:
        shutil.rmtree(spill, ignore_errors=True)
        raise


_REFUSED_PATH = re.compile(r'Cannot access (?:file|directory) "([^"]*)" - file system operations are disabled')
_EXTENSION = re.compile(r"(?s)with name \"?(\w+)\"? is not in the catalog, but it exists in the (\w+) extension")
_NETWORK = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def _sandbox_error(text: str) -> SourceQueryError | None:
    """One clear message for what the sandbox refused: a path outside the allowed set, a URL, an extension."""
    refused = _REFUSED_PATH.search(text)
    if refused:
        target = refused.group(1)
        if _NETWORK.match(target):
            message = f"the orchestration's SQL reads {target}: DuckDB sources read no network URL"
            hint = f"download the file, then name its directory in the orchestration's {OPTION} ({FLAG} DIR)"
        else:
            message = (
                f"the orchestration's SQL reads {target}, which this DuckDB source may not read: it reads its "
                f"database file and the paths in the orchestration's {OPTION} option ({FLAG} DIR) only"
            )
            hint = (
                f"name the file or its directory in {OPTION} (offramp orchestrations add ... {FLAG} DIR, or "
                f"options: {{{OPTION}: [DIR]}} in the config file); offramp's home, key, store and /proc are never "
                "allowed"
            )
        return SourceQueryError(message, hint=hint, engine_message=f"Permission Error: {target}", line=None,
                                line_text=None)  # fmt: skip
    extension = _EXTENSION.search(text)
    if extension:
        function, name = extension.groups()
        return SourceQueryError(
            f"the orchestration's SQL calls {function}, from DuckDB's {name} extension: DuckDB sources install and "
            "load no extension",
            hint="read the data from a DuckDB file or from Parquet, CSV or JSON files (read_parquet, read_csv, "
            f"read_json) in the orchestration's {OPTION}",
            engine_message=f"Catalog Error: extension {name}",
            line=None,
            line_text=None,
        )
    return None


def _failure(exc: BaseException, query: str) -> SourceQueryError:
    # From an Arrow stream DuckDB's message arrives inside an OSError: read the text, whatever the type.
    refused = _sandbox_error(str(exc))
    return refused if refused is not None else query_error(exc, query, "DuckDB")


class DuckDBSource(Source):
    """A DuckDB database: a file (read-only) or in memory, reading no other file than ``allowed_paths``."""

    def __init__(self, path: Path | None, allowed_paths: Sequence[str] = ()) -> None:
        super().__init__()
        self._spill: Path | None = None
        # Checked again now, not only when the orchestration was stored: OFFRAMP_HOME may differ.
        allowed = check_allowed_paths(allowed_paths)
        self._database, self._allowed = path, allowed
        if path is None:
            self._connection, self._spill = _connect(":memory:", read_only=False, allowed=allowed)
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
            self._connection, self._spill = _connect(str(path), read_only=True, allowed=allowed)
        except duckdb.Error as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(
                f"source: cannot open DuckDB file {path}: {reason}",
                hint="check that it is a DuckDB database of this DuckDB version and that no program holds it open "
                "for writing",
            ) from None

    def describe_access(self) -> str:
        """What this source's SQL may read, in a sentence (for `offramp sources check`)."""
        database = "an in-memory database" if self._database is None else f"the database file {self._database}"
        if not self._allowed:
            return (
                f"reads {database} and no other file, no URL and no extension (name files or directories the SQL "
                f"reads with the orchestration's {OPTION}: {FLAG} DIR)"
            )
        named = ", ".join(
            f"{path}{'/' if path.is_dir() else ''}{'' if path.exists() else ' (does not exist yet)'}"
            for path in self._allowed
        )
        return f"reads {database} and, in {OPTION}, {named}; no other file, no URL and no extension"

    def _close_connection(self) -> None:
        self._connection.close()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)

    def _stream(self, query: str, fetch_rows: int, limit: int | None) -> Generator[pa.RecordBatch, None, None]:
        try:
            refusal = _refused_by_parser(duckdb.extract_statements(query))
        except duckdb.Error as exc:
            raise _failure(exc, query) from None
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
                raise _failure(exc, query) from None
            try:
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                    except (duckdb.Error, pa.ArrowException, OSError) as exc:
                        # A failure while rows stream (a cast that fails on row 50,000) surfaces through Arrow's
                        # C stream as an OSError holding DuckDB's message.
                        raise _failure(exc, query) from None
                    yield batch
            finally:
                reader.close()
        finally:
            cursor.close()


__all__ = ["DuckDBSource"]
