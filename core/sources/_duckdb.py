"""DuckDB sources: a database file opened read-only, or an in-memory database whose SQL reads files.

DuckDB runs in offramp's process, so what it holds is offramp's memory: a source gets a small ``memory_limit`` sized
from the machine (:func:`default_memory_limit`; ``OFFRAMP_DUCKDB_MEMORY_LIMIT`` overrides it), half the cores as
``threads``, and a private ``temp_directory`` (mode 0700, removed when the source closes) that sorts, joins and
aggregations spill to. A query that runs out of the default before its first row runs again with twice the limit,
up to half the machine's memory (:func:`retry_memory_limit`). Order is DuckDB's as ever: ``preserve_insertion_order``
stays on, so a query without ORDER BY still returns a table's rows in their stored order.

Rows come straight from DuckDB's Arrow export (``con.sql(q).to_arrow_reader(n)``), so the Arrow types are
DuckDB's: LIST -> list, STRUCT -> struct, DATE -> date32, TIMESTAMP -> timestamp[us],
TIMESTAMPTZ -> timestamp[us, tz=<the session TimeZone>], DECIMAL(p,s) -> decimal128(p,s), VARCHAR -> string.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import weakref
from collections.abc import Generator, Sequence
from contextlib import closing
from pathlib import Path

import duckdb
import pyarrow as pa

from offramp.core.errors import ConfigError
from offramp.core.scratch import private_directory
from offramp.core.sources._allowed import FLAG, OPTION, check_allowed_paths
from offramp.core.sources._base import Source
from offramp.core.sources._query import HINT, SourceQueryError, query_error

logger = logging.getLogger(__name__)


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
_MIB = 1024 * 1024
# Why DuckDB gets little memory by default: it runs in offramp's process, so what it holds (its cache of the
# database file's blocks, a sort's runs) is offramp's memory, and under DuckDB's own default (80% of the machine) a
# 5,000,000-row ORDER BY took 1 GB of it. offramp reads a result at 50,000-400,000 rows/s while DuckDB sorts and
# scans at millions of rows/s even when it spills, so more memory than a query needs buys a run no speed.
# A sort needs about 40 MiB a thread (measured: 1 thread sorted 5M rows at 48 MiB, 2 threads needed 80 MiB) and
# more as the table grows (96 MiB failed at 20M rows on 2 threads, 128 MiB sorted them): a query that runs out of
# the default limit before its first row is run again with twice the limit, up to half the machine.
_PER_THREAD = 48 * _MIB
_MACHINE_SHARE = 512  # the start grows with large machines: 1/512 of memory (128 MiB at 64 GiB)
_START_CEILING = 1024 * _MIB
_RETRY_SHARE = 2  # the most a default limit grows to: half the machine's memory
_UNKNOWN_MEMORY = 4096 * _MIB  # what to assume of a machine that does not say


def machine_memory() -> int | None:
    """The bytes of memory this process can have: the machine's physical memory, or a container's (cgroup) limit
    when that is smaller. ``None`` when the platform does not say (Windows)."""
    try:
        total: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = None
    # cgroup v2, then v1: a container's limit, which physical memory does not show.
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0:
            total = int(text) if total is None else min(total, int(text))
        break
    return total if total is not None and total > 0 else None


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(cores: int | None = None) -> int:
    """DuckDB's threads for a source: half the cores this process may use, at least one.

    The rows DuckDB streams are prepared by offramp on the other cores at the same time, and each DuckDB thread
    holds sort runs and scan buffers of its own (about 40 MiB a thread for a sort): DuckDB's own default, a thread
    per core, would double the memory a sort needs on a two-core machine for a run that is no faster.
    """
    return max(1, (_cores() if cores is None else cores) // 2)


def default_memory_limit(memory: int | None = None, threads: int | None = None) -> int:
    """The memory limit, in bytes, DuckDB sources start with when ``OFFRAMP_DUCKDB_MEMORY_LIMIT`` is unset:
    48 MiB a DuckDB thread, or 1/512 of ``memory`` (default: :func:`machine_memory`) when that is more, at most
    1 GiB; whole MiB."""
    memory = machine_memory() if memory is None else memory
    threads = default_threads() if threads is None else threads
    share = (_UNKNOWN_MEMORY if memory is None else memory) // _MACHINE_SHARE
    return max(threads * _PER_THREAD, min(share, _START_CEILING)) // _MIB * _MIB


def retry_memory_limit(memory: int | None = None) -> int:
    """The most a default limit grows to when a query runs out of it: half of ``memory`` (the machine's), whole MiB."""
    memory = machine_memory() if memory is None else memory
    return (_UNKNOWN_MEMORY if memory is None else memory) // _RETRY_SHARE // _MIB * _MIB


def memory_limit() -> tuple[str, bool]:
    """DuckDB's ``memory_limit`` for a source, and whether it came from ``OFFRAMP_DUCKDB_MEMORY_LIMIT`` (else the
    default, :func:`default_memory_limit`).

    DuckDB runs in offramp's process: what it holds (its cache of the database file's blocks, a sort's runs) is
    offramp's memory. Within the limit DuckDB evicts cached blocks and spills sorts, joins and aggregations to the
    source's private temporary directory, so a run's memory stays flat however many rows it reads.

    Raises:
        ConfigError: the variable holds a value DuckDB does not take as a memory size.
    """
    value = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip()
    if not value:
        return f"{default_memory_limit() // _MIB}MiB", False
    try:
        duckdb.connect(":memory:", config={"memory_limit": value}).close()
    except duckdb.Error as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(
            f"{MEMORY_LIMIT_VARIABLE}={value!r} is not a memory size DuckDB takes ({reason})",
            hint=f"set {MEMORY_LIMIT_VARIABLE} to a size such as 512MB or 2GB (80% for DuckDB's own default), or "
            "unset it for offramp's default",
        ) from None
    return value, True


_SPILL_PREFIX = "offramp-duckdb-"


def _connect(
    database: str, *, read_only: bool, allowed: Sequence[Path], memory: str
) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """A connection that reads only ``database`` and the ``allowed`` paths, holds at most ``memory`` (DuckDB's
    ``memory_limit``), and the private directory DuckDB spills to (removed on close).

    External access is off (``enable_external_access``) but for DuckDB's ``allowed_directories`` and
    ``allowed_paths``; no extension is installed or loaded on a query's behalf; the configuration is then locked
    (``lock_configuration``), so the query cannot switch any of this back. DuckDB itself allows the database file
    and its temporary directory.
    """
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": memory,
        "threads": default_threads(),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    # A directory of our own: DuckDB's default (.tmp in the working directory, or next to a read-only database
    # file) would be readable by the query, and next to a read-only file it may not write. mkdtemp makes it 0700
    # (a sort spills customers' rows); the pid in the name lets a later source remove the directory of a process
    # that was killed (SIGKILL runs no cleanup, and a large sort leaves gigabytes there): offramp.core.scratch.
    spill = private_directory(_SPILL_PREFIX)
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
            # memory_limit: a query that runs out of offramp's default is run again with a larger one (_stream).
            connection.execute("SET allowed_configs = ['enable_progress_bar', 'memory_limit']")
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


def _out_of_memory(error: SourceQueryError) -> bool:
    return "Out of Memory Error" in error.engine_message


def _failure(exc: BaseException, query: str, limit: tuple[str, bool]) -> SourceQueryError:
    # From an Arrow stream DuckDB's message arrives inside an OSError: read the text, whatever the type.
    refused = _sandbox_error(str(exc))
    if refused is not None:
        return refused
    error = query_error(exc, query, "DuckDB")
    if not _out_of_memory(error):
        return error
    # DuckDB's own advice (SET memory_limit, SET threads) cannot be followed: the configuration is locked.
    value, from_variable = limit
    origin = f"set by {MEMORY_LIMIT_VARIABLE}" if from_variable else f"offramp's default, {MEMORY_LIMIT_VARIABLE} unset"
    return SourceQueryError(
        f"{error.message.split(' Possible solutions:')[0]} (DuckDB's memory limit: {value}, {origin})",
        hint=f"set {MEMORY_LIMIT_VARIABLE} to a larger size, such as 2GB, in the environment offramp runs in, or make "
        "the query lighter (sorts, joins and aggregations spill to disk within the limit; not every operator does)",
        engine_message=error.engine_message,
        line=error.line,
        line_text=error.line_text,
    )


class DuckDBSource(Source):
    """A DuckDB database: a file (read-only) or in memory, reading no other file than ``allowed_paths``."""

    def __init__(self, path: Path | None, allowed_paths: Sequence[str] = ()) -> None:
        super().__init__()
        self._spill: Path | None = None
        self._memory_limit = memory_limit()  # before any connection: a bad value is refused with nothing open
        self._limit_bytes = default_memory_limit()
        self._retry_ceiling = max(self._limit_bytes, retry_memory_limit())
        # Checked again now, not only when the orchestration was stored: OFFRAMP_HOME may differ.
        allowed = check_allowed_paths(allowed_paths)
        self._database, self._allowed = path, allowed
        if path is None:
            self._connection, self._spill = _connect(
                ":memory:", read_only=False, allowed=allowed, memory=self._memory_limit[0]
            )
            self._remove_spill = weakref.finalize(self, shutil.rmtree, self._spill, ignore_errors=True)
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
            self._connection, self._spill = _connect(
                str(path), read_only=True, allowed=allowed, memory=self._memory_limit[0]
            )
            # A source never closed (a script that forgets to) still removes its directory when it is collected
            # or the interpreter exits.
            self._remove_spill = weakref.finalize(self, shutil.rmtree, self._spill, ignore_errors=True)
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

    def describe_memory(self) -> str:
        """How much memory DuckDB may hold and where it spills, in a sentence (for `offramp sources check`)."""
        value, from_variable = self._memory_limit
        if from_variable:
            origin = f"set by {MEMORY_LIMIT_VARIABLE}"
        else:
            origin = (
                f"offramp's default, raised up to {self._retry_ceiling // _MIB} MiB for a query that needs more "
                f"before its first row; {MEMORY_LIMIT_VARIABLE} sets it"
            )
        return (
            f"DuckDB holds at most {value} in offramp's process ({origin}) on {default_threads()} thread(s), and "
            "spills sorts, joins and aggregations to a private directory in "
            f"{'the temporary directory' if self._spill is None else self._spill.parent} (TMPDIR chooses it), "
            "removed when the run ends"
        )

    def _close_connection(self) -> None:
        self._connection.close()
        self._remove_spill()

    def _stream(self, query: str, fetch_rows: int, limit: int | None) -> Generator[pa.RecordBatch, None, None]:
        try:
            refusal = _refused_by_parser(duckdb.extract_statements(query))
        except duckdb.Error as exc:
            raise _failure(exc, query, self._memory_limit) from None
        if refusal is not None:
            raise refusal
        while True:
            delivered = False
            try:
                # Closed here, not when collected: its cursor must be closed before the connection is.
                with closing(self._attempt(query, fetch_rows, limit)) as attempt:
                    for batch in attempt:
                        delivered = True
                        yield batch
                return
            except SourceQueryError as error:
                # Out of offramp's default limit before the first row (a sort or hash table too big for it): run
                # the query again with twice the limit. After rows went out it cannot be run again unseen; a
                # limit the user set is theirs to raise.
                if delivered or not self._raise_default_limit(error):
                    raise

    def _raise_default_limit(self, error: SourceQueryError) -> bool:
        value, from_variable = self._memory_limit
        if from_variable or not _out_of_memory(error) or self._limit_bytes >= self._retry_ceiling:
            return False
        self._limit_bytes = min(self._limit_bytes * 2, self._retry_ceiling)
        self._memory_limit = (f"{self._limit_bytes // _MIB}MiB", False)
        self._connection.execute("SET memory_limit = $1", [self._memory_limit[0]])
        logger.info(
            "DuckDB ran out of its memory limit (%s) before the first row; running the query again with %s "
            "(set %s to choose the limit)",
            value,
            self._memory_limit[0],
            MEMORY_LIMIT_VARIABLE,
        )
        return True

    def _attempt(self, query: str, fetch_rows: int, limit: int | None) -> Generator[pa.RecordBatch, None, None]:
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
                # Batches of at most fetch_rows rows, pulled one at a time from DuckDB's streaming result (which
                # buffers at most streaming_buffer_size, 10 MiB): nothing here holds the whole result.
                reader = relation.to_arrow_reader(fetch_rows)
            except duckdb.Error as exc:
                raise _failure(exc, query, self._memory_limit) from None
            try:
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                    except (duckdb.Error, pa.ArrowException, OSError) as exc:
                        # A failure while rows stream (a cast that fails on row 50,000) surfaces through Arrow's
                        # C stream as an OSError holding DuckDB's message.
                        raise _failure(exc, query, self._memory_limit) from None
                    yield batch
            finally:
                reader.close()
        finally:
            cursor.close()


__all__ = ["DuckDBSource"]
