"""Where an orchestration's rows come from, streamed as Arrow record batches of bounded size.

Source references (validated for storage by ``orchestration_options.check_source``; opened by :func:`open_source`):

- ``duckdb::memory:``: an in-memory DuckDB; the SQL reads Parquet, CSV or JSON files
  (``SELECT * FROM read_parquet('orders/*.parquet')``, ``FROM 'orders.csv'``);
- ``duckdb:PATH``: a DuckDB database file, opened read-only (a missing file is an error, never a new database);
- ``env:VAR``: the environment variable ``VAR`` holds one of the other forms;
- a SQLAlchemy URL (``postgresql+psycopg://reader@db/analytics``, ``sqlite:///orders.db``): any database with an
  installed dialect and driver, read through a server-side cursor where the driver has one.

Only one read query runs (:func:`check_read_only_query`: SELECT, WITH ... SELECT, VALUES, DuckDB's FROM-first,
TABLE t); anything else is refused before it reaches the engine, and the engines refuse writes too (DuckDB files
read-only, PostgreSQL in a read-only transaction, SQLite with ``query_only``). An engine's error about the SQL is
a :class:`SourceQueryError` quoting the line it points at. A URL holding a password (``USER:PASSWORD@`` or
``?password=``) is refused, wherever it comes from: the driver takes the password from its own mechanisms
(``PGPASSWORD``, ``~/.pgpass``, ``PGSERVICE``).

What a query may reach beyond its rows: a DuckDB source reads its database file and the orchestration's
``allowed_paths`` only (no other file, URL or extension; ``_allowed`` and ``_duckdb``); a DuckDB or SQLite
database file is never one of offramp's own files nor another protected path (``_allowed.check_database_file``); a
PostgreSQL source refuses a superuser, a member of a superuser role, or a role holding pg_write_server_files,
pg_execute_server_program or pg_read_server_files unless ``accept_privileged_role``, and bounds the query's
statements together by ``statement_timeout_seconds`` (set again before each FETCH). An engine's message that
may quote a source row is masked (``_query.mask_row_values``); ``--debug`` logs it whole. :func:`inspect_source`
reports all of this for ``offramp sources check``.

A DuckDB source runs inside offramp's process, so its memory is offramp's: it gets a small ``memory_limit`` sized
from the machine (``OFFRAMP_DUCKDB_MEMORY_LIMIT`` overrides it), half the cores as threads, and a private spill
directory removed when it closes (``_duckdb``), so a sort of millions of rows spills instead of growing the run.

Arrow types
-----------

DuckDB: DuckDB's own Arrow export. LIST -> list, STRUCT -> struct, DATE -> date32, TIMESTAMP -> timestamp[us],
TIMESTAMPTZ -> timestamp[us, tz=<session TimeZone>], DECIMAL(p,s) -> decimal128(p,s), VARCHAR -> string,
BIGINT -> int64, DOUBLE -> float64, BOOLEAN -> bool.

SQLAlchemy URLs: one schema for the whole result, fixed before the first batch is handed out.

- PostgreSQL (from the result's type OIDs, so a column that is NULL in every early row still gets its type):

  ============================================  ==========================================================
  PostgreSQL                                    Arrow
  ============================================  ==========================================================
  boolean                                       bool
  smallint / integer / bigint / oid             int16 / int32 / int64 / int64
  real / double precision                       float32 / float64
  numeric(p, s)                                 decimal128(p, s) (decimal256 above 38 digits)
  numeric (no precision: computed values)       float64, always (as DuckDB's postgres scanner does)
  text, varchar, char, name, xml                string
  uuid, inet, cidr, macaddr                     string (their text)
  json, jsonb                                   string (JSON text)
  date / time                                   date32 / time64[us]
  timestamp without time zone                   timestamp[us]
  timestamp with time zone                      timestamp[us, tz=UTC] (the same instants)
  interval                                      duration[us] (a month counts as 30 days, as psycopg does)
  bytea                                         binary
  one-dimensional arrays of the above (text[])  list<element> (multi-dimensional arrays: unnest or cast)
  any other type (enums, domains, extensions)   inferred from the values, as below
  ============================================  ==========================================================

- Other databases, and PostgreSQL types not listed: from the Python values the driver returns. int -> int64,
  float -> float64, int and float mixed -> float64, Decimal -> decimal128(p, s) when the driver declares the
  column's precision and scale, else float64; str -> string; bytes -> binary; datetime -> timestamp[us]
  (tz=UTC when the values carry a zone); date -> date32; time -> time64[us]; timedelta -> duration[us]; list ->
  list<element>; dict -> string (JSON text); UUIDs and other objects -> string. Types come from the first rows
  that show a non-null value per column: while a column has shown only NULLs, up to ``LOOKAHEAD_ROWS`` (10,000)
  rows are held back so the first batch already has the final schema; a column NULL in all of them becomes
  string, and its later values are cast to text. A value that does not fit the column's type (text after
  numbers) is a :class:`SourceQueryError` asking for a CAST, never a silent truncation. SQLite keeps dates and
  times as text, so they arrive as strings.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from offramp.core.config import ENV_PREFIX
from offramp.core.errors import ConfigError
from offramp.core.orchestration_options import DUCKDB_MEMORY, DUCKDB_PREFIX, OrchestrationOptions
from offramp.core.sources._base import Source
from offramp.core.sources._check import SourceReport, inspect_source
from offramp.core.sources._query import SourceQueryError, check_read_only_query
from offramp.core.url_passwords import refuse_password_in_url

_FORMS = "duckdb::memory:, duckdb:PATH or a SQLAlchemy URL"


def _resolve(reference: str) -> tuple[str, str]:
    """The reference's target, after reading an ``env:`` variable, and how to name it in a message."""
    if not reference.startswith(ENV_PREFIX):
        return reference.strip(), "the source"
    name = reference[len(ENV_PREFIX) :]
    if not name:
        raise ConfigError("source: `env:` must be followed by a variable name", hint="write env:MY_VARIABLE")
    value = os.environ.get(name)
    if value is None or not value.strip():
        state = "is not set" if value is None else "is empty"
        raise ConfigError(
            f"source: environment variable {name} (named by the orchestration's source) {state}",
            hint=f"export {name}=duckdb:PATH/TO/FILE.duckdb (or {name}=postgresql+psycopg://USER@HOST/DB)"
            " in the environment offramp runs in",
        )
    if value.startswith(ENV_PREFIX):
        raise ConfigError(
            f"source: environment variable {name} holds another env: reference",
            hint=f"put the source itself ({_FORMS}) in {name}",
        )
    return value.strip(), f"environment variable {name}"


def open_source(reference: str, options: OrchestrationOptions | None = None) -> Source:
    """Open an orchestration's source.

    Args:
        reference: ``duckdb::memory:``, ``duckdb:PATH``, ``env:VAR`` or a SQLAlchemy URL (module docstring).
        options: The orchestration's options: what a DuckDB source may read (``allowed_paths``), whether a
            PostgreSQL source may run as a privileged role (``accept_privileged_role``) and its
            ``statement_timeout_seconds``. ``None``: the defaults (nothing but the database; no privileged role).

    Raises:
        ConfigError: a missing or empty variable, a missing DuckDB or SQLite file, a reference of no known form,
            a dialect or driver that is not installed. The message never shows a password.
    """
    target, origin = _resolve(reference)
    options = options or OrchestrationOptions()
    # Each engine's module is imported when a source of its kind opens: a run needs one of them.
    if target == DUCKDB_MEMORY:
        from offramp.core.sources._duckdb import DuckDBSource

        return DuckDBSource(None, options.allowed_paths)
    if target.startswith(DUCKDB_PREFIX) and not target.startswith("duckdb://"):
        path = target[len(DUCKDB_PREFIX) :]
        if not path:
            raise ConfigError(f"source: {origin} says duckdb: without a path", hint="write duckdb:PATH/TO/FILE.duckdb")
        from offramp.core.sources._allowed import check_database_file
        from offramp.core.sources._duckdb import DuckDBSource

        check_database_file(path, "DuckDB")  # not the state store, the key, nor any other file offramp protects
        return DuckDBSource(Path(path).expanduser(), options.allowed_paths)
    try:
        url = make_url(target)
    except ArgumentError:
        # Not echoed: a malformed URL may still hold a password.
        raise ConfigError(f"source: {origin} is not {_FORMS}", hint="e.g. duckdb:warehouse.duckdb") from None
    if url.get_backend_name() == "duckdb":
        raise ConfigError("source: read DuckDB files with duckdb:PATH", hint="write duckdb:PATH/TO/FILE.duckdb")
    refuse_password_in_url(target, "source: the URL" if origin == "the source" else f"source: {origin}")
    from offramp.core.sources._sqlalchemy import SQLAlchemySource

    return SQLAlchemySource(
        url,
        accept_privileged_role=options.accept_privileged_role,
        statement_timeout_seconds=options.statement_timeout_seconds,
    )


__all__ = ["Source", "SourceQueryError", "SourceReport", "check_read_only_query", "inspect_source", "open_source"]
