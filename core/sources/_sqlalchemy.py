"""SQLAlchemy sources: rows streamed through a server-side cursor, turned into Arrow batches of one schema.

Streaming: ``stream_results=True`` and ``result.partitions(n)`` with ``n`` always passed (with ``text()``-style
queries SQLAlchemy 2.1 otherwise hands out one-row partitions). The SQL goes to the driver as written
(``no_parameters``): a ``%`` or ``:name`` in it is not taken for a placeholder.

Read-only by the engine too, not only by :func:`check_read_only_query`: PostgreSQL runs the query in a read-only
transaction, SQLite with ``PRAGMA query_only``. Other databases: give offramp a user that can only read.

PostgreSQL dates and timestamps Python cannot hold (``infinity``, ``-infinity``, BC years, years after 9999) come
through psycopg 3 as counts of days or microseconds since 1970-01-01 (see :func:`_far_time`), in the column's Arrow
type: the value itself where Arrow holds it, DuckDB's ``infinity`` or ``-infinity`` otherwise.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from offramp.core.errors import ConfigError, OfframpError
from offramp.core.sources._allowed import check_database_file
from offramp.core.sources._base import Source
from offramp.core.sources._query import SourceQueryError, query_error

if TYPE_CHECKING:
    from psycopg import abc

#: Rows held back, at most, while some column has shown only NULLs and the driver gave no type for it.
LOOKAHEAD_ROWS = 10_000

_ENGINE_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite", "mysql": "MySQL", "mssql": "SQL Server"}

Convert = Callable[[Any], Any]


def _json_text(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _float(value: Any) -> float:
    return float(value)


def _each(convert: Convert) -> Convert:
    def convert_elements(values: Any) -> Any:
        return [None if value is None else convert(value) for value in values]

    return convert_elements


# PostgreSQL types by psycopg's name for them; the numeric entry applies when the column declares no precision.
_POSTGRES: dict[str, tuple[pa.DataType, Convert | None]] = {
    "bool": (pa.bool_(), None),
    "int2": (pa.int16(), None),
    "int4": (pa.int32(), None),
    "int8": (pa.int64(), None),
    "oid": (pa.int64(), None),
    "float4": (pa.float32(), None),
    "float8": (pa.float64(), None),
    "numeric": (pa.float64(), _float),
    "text": (pa.string(), None),
    "varchar": (pa.string(), None),
    "bpchar": (pa.string(), None),
    "char": (pa.string(), None),
    "name": (pa.string(), None),
    "xml": (pa.string(), None),
    "uuid": (pa.string(), str),
    "inet": (pa.string(), str),
    "cidr": (pa.string(), str),
    "macaddr": (pa.string(), str),
    "json": (pa.string(), _json_text),
    "jsonb": (pa.string(), _json_text),
    # Values Python cannot hold arrive as ints (see _far_time), which pyarrow takes as days or microseconds.
    "date": (pa.date32(), None),
    "time": (pa.time64("us"), None),
    "timestamp": (pa.timestamp("us"), None),
    "timestamptz": (pa.timestamp("us", tz="UTC"), None),
    "interval": (pa.duration("us"), None),
    "bytea": (pa.binary(), None),
}


# What DuckDB writes to Arrow for its 'infinity' and '-infinity' (the negated value): DuckDB, and with it the
# preparer, reads them back as such.
_INFINITY_MICROS = 2**63 - 1
_INFINITY_DAYS = 2**31 - 1

# PostgreSQL's text for a date, timestamp or timestamptz under DateStyle ISO (the default, and the only one psycopg
# reads timestamptz in): '4713-01-01 BC', '294276-01-01 00:00:00', '4713-01-01 00:00:00.5+05:53:28 BC'.
_ISO_TIME = re.compile(
    rb"(\d+)-(\d\d)-(\d\d)(?: (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([-+])(\d\d)(?::(\d\d))?(?::(\d\d))?)?)?( BC)?"
)
_DAYS_IN_400_YEARS = 146_097
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _epoch_days(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a date of the proleptic Gregorian calendar in any year (1 BC is year 0)."""
    # The calendar repeats every 400 years: count in a year Python holds, then move back by whole cycles.
    cycles = (2000 - year) // 400
    return date(year + 400 * cycles, month, day).toordinal() - _EPOCH_ORDINAL - cycles * _DAYS_IN_400_YEARS


def _far_time(text: bytes, days: bool) -> int:
    """Days (dates) or microseconds (timestamps) since 1970-01-01 of a PostgreSQL value Python cannot hold.

    The exact value when Arrow holds it; DuckDB's infinity on that side otherwise (PostgreSQL's infinities,
    timestamps past 294247, which DuckDB does not hold either, and values under a DateStyle other than ISO).
    """
    infinity = _INFINITY_DAYS if days else _INFINITY_MICROS
    found = _ISO_TIME.fullmatch(text)
    if found is None:
        return -infinity if text == b"-infinity" or text.endswith(b" BC") else infinity
    year, month, day, hour, minute, second, fraction, sign, off_hours, off_minutes, off_seconds, bc = found.groups()
    count = _epoch_days(1 - int(year) if bc else int(year), int(month), int(day))
    if days:
        return count
    seconds = count * 86_400 + int(hour or 0) * 3600 + int(minute or 0) * 60 + int(second or 0)
    if sign:  # timestamptz: the text is in the session's zone; Arrow counts from UTC
        offset = int(off_hours) * 3600 + int(off_minutes or 0) * 60 + int(off_seconds or 0)
        seconds -= offset if sign == b"+" else -offset
    micros = seconds * 1_000_000 + int((fraction or b"0").ljust(6, b"0"))
    return max(-infinity, min(micros, infinity))


def _far_time_loader(fast: type[abc.Loader], days: bool) -> type[abc.Loader]:
    """A loader that gives what ``fast`` gives, and :func:`_far_time` for the values it raises DataError on."""
    from psycopg import DataError
    from psycopg.adapt import Loader

    class FarTimeLoader(Loader):
        def __init__(self, oid: int, context: abc.AdaptContext | None = None) -> None:
            super().__init__(oid, context)
            self._load = fast(oid, context).load

        def load(self, data: abc.Buffer) -> Any:
            try:
                return self._load(data)
            except DataError:
                return _far_time(bytes(data), days)

    return FarTimeLoader


def _psycopg_far_times(dbapi_connection: Any, connection_record: Any) -> None:
    """On each new psycopg 3 connection: date and timestamp loaders that do not fail the whole query over one value
    Python cannot hold."""
    import psycopg
    from psycopg.pq import Format

    if not isinstance(dbapi_connection, psycopg.Connection):  # psycopg2, pg8000: their own behaviour
        return
    adapters = dbapi_connection.adapters
    for name in ("date", "timestamp", "timestamptz"):
        oid = adapters.types[name].oid
        # psycopg's C loaders cannot be subclassed: wrap one, so that good values keep its speed and its types.
        fast = adapters.get_loader(oid, Format.TEXT)  # SQLAlchemy's cursors fetch text
        if fast is not None:
            adapters.register_loader(oid, _far_time_loader(fast, days=name == "date"))


def _decimal_type(precision: object, scale: object) -> pa.DataType | None:
    """decimal128/256 for a declared NUMERIC(p, s) that Arrow can hold; None when undeclared."""
    if not isinstance(precision, int) or not isinstance(scale, int) or isinstance(precision, bool):
        return None
    if not 0 < precision <= 76 or not 0 <= scale <= precision:
        return None
    return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)


def _postgres_type(column: Sequence[Any]) -> tuple[pa.DataType, Convert | None] | None:
    """The Arrow type of a PostgreSQL result column from its type OID (and NUMERIC's precision and scale)."""
    type_code = column[1]
    if not isinstance(type_code, int):
        return None
    try:
        from psycopg.postgres import types as builtin_types
    except ImportError:  # psycopg2 or another driver without psycopg 3 installed: infer from values
        return None
    info = builtin_types.get(type_code)
    if info is None or info.name not in _POSTGRES:
        return None
    kind, convert = _POSTGRES[info.name]
    if info.oid == type_code and info.name == "numeric":
        declared = _decimal_type(column[4], column[5])
        if declared is not None:
            return declared, None
    if info.array_oid == type_code and info.oid != type_code:
        # One-dimensional arrays; a multi-dimensional one fails to convert and says to unnest it.
        return pa.list_(kind), None if convert is None else _each(convert)
    return kind, convert


_NATIVE = (bool, int, float, Decimal, str, bytes, datetime, date, time, timedelta, list, tuple)


def _value_converter(value: Any) -> Convert | None:
    """How to hand a driver's value to Arrow, judged by the first non-null value of a column."""
    if isinstance(value, dict):
        return _json_text  # JSON objects stay JSON text, as for PostgreSQL's json/jsonb
    if isinstance(value, bytearray | memoryview):
        return bytes
    if isinstance(value, uuid.UUID) or not isinstance(value, _NATIVE):
        return str  # UUIDs, IP addresses, enums and other driver objects: their text
    return None


def _normalize(kind: pa.DataType, decimal: pa.DataType | None) -> pa.DataType:
    """An inferred type made stable across batches: pyarrow fits a decimal's precision to the values at hand and
    takes a timestamp's zone from its first value."""
    if pa.types.is_decimal(kind):
        return decimal if decimal is not None else pa.float64()
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz=None if kind.tz is None else "UTC")
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_normalize(kind.value_type, None))
    return kind


def _numeric(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def _unify(first: pa.DataType | None, second: pa.DataType) -> pa.DataType | None:
    """One type for values of both types, or None when there is none."""
    if first is None or pa.types.is_null(first):
        return second
    if pa.types.is_null(second) or first == second:
        return first
    if _numeric(first) and _numeric(second):
        return pa.float64()
    if pa.types.is_list(first) and pa.types.is_list(second):
        element = _unify(first.value_type, second.value_type)
        return None if element is None else pa.list_(element)
    return None


@dataclass
class _Column:
    name: str
    declared: pa.DataType | None  # from the driver's type information: fixed from the first row
    convert: Convert | None
    decimal: pa.DataType | None  # a DECIMAL(p, s) the driver declared, for values inferred as decimals
    kind: pa.DataType | None = None  # the type so far (null until a value shows)
    judged: bool = False  # whether `convert` was chosen from a value yet


class _ArrowBatcher:
    """Turns partitions of rows into record batches of one schema.

    Columns the driver typed are built in that type from the first row. Other columns are typed from their
    values; while one of them has shown only NULLs, partitions are held back (at most ``LOOKAHEAD_ROWS`` rows)
    so that the first batch already carries the final schema. A column still all NULL after that becomes a string
    column, and its later values are cast to text.
    """

    def __init__(self, columns: list[_Column], engine: str, limit: int | None) -> None:
        self._columns = columns
        self._engine = engine
        # Never hold back more rows than the run will take: a --limit 5 must not read 10,000 rows.
        self._hold_at_most = LOOKAHEAD_ROWS if limit is None else min(LOOKAHEAD_ROWS, limit)
        self._schema: pa.Schema | None = None
        self._held: list[list[pa.Array]] = []
        self._held_rows = 0
        if all(column.declared is not None for column in columns):
            self._schema = pa.schema([pa.field(column.name, column.declared) for column in columns])

    def push(self, rows: Sequence[Sequence[Any]]) -> list[pa.RecordBatch]:
        by_column = zip(self._columns, zip(*rows, strict=True), strict=True)
        arrays = [self._array(column, values) for column, values in by_column]
        if self._schema is not None:
            return [self._batch(arrays)]
        for column, array in zip(self._columns, arrays, strict=True):
            if column.declared is None:
                kind = _unify(column.kind, array.type)
                if kind is None:
                    raise self._mixed(column, array.type)
                column.kind = kind
        self._held.append(arrays)
        self._held_rows += len(rows)
        settled = all(column.kind is not None and not pa.types.is_null(column.kind) for column in self._columns)
        return self._release() if settled or self._held_rows >= self._hold_at_most else []

    def finish(self) -> list[pa.RecordBatch]:
        return self._release() if self._schema is None else []

    def _release(self) -> list[pa.RecordBatch]:
        fields = []
        for column in self._columns:
            kind = column.declared or column.kind
            fields.append(pa.field(column.name, pa.string() if kind is None or pa.types.is_null(kind) else kind))
        self._schema = pa.schema(fields)
        held, self._held = self._held, []
        return [self._batch(arrays) for arrays in held]

    def _array(self, column: _Column, values: Sequence[Any]) -> pa.Array:
        if not column.judged and column.declared is None:
            first = next((value for value in values if value is not None), None)
            if first is not None:
                column.convert, column.judged = _value_converter(first), True
        if column.convert is not None:
            convert = column.convert
            values = [None if value is None else convert(value) for value in values]
        try:
            if column.declared is not None:
                return pa.array(values, type=column.declared)
            array = pa.array(values)
            kind = _normalize(array.type, column.decimal)
            return array if kind == array.type else array.cast(kind)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            # pyarrow's message quotes the value (an email, say): keep only the types, since run errors are stored.
            found = re.search(r"with type ([\w.]+): (tried to convert to \w+)", str(exc))
            detail = f"a {found.group(1)} value ({found.group(2)})" if found else f"a value ({type(exc).__name__})"
            raise SourceQueryError(
                f"column {column.name!r} from {self._engine} holds {detail} that Arrow cannot take",
                hint="CAST the column in the orchestration's SQL to a plain type (text, integer, numeric, timestamp,"
                " a one-dimensional array): offramp orchestrations show NAME",
                engine_message=detail,
                line=None,
                line_text=None,
            ) from None

    def _batch(self, arrays: list[pa.Array]) -> pa.RecordBatch:
        assert self._schema is not None
        cast = []
        for column, array, field in zip(self._columns, arrays, self._schema, strict=True):
            if array.type != field.type:
                try:
                    array = array.cast(field.type)  # safe: 1.5 never becomes 1
                except pa.ArrowException:
                    raise self._mixed(column, array.type, field.type) from None
            cast.append(array)
        return pa.RecordBatch.from_arrays(cast, schema=self._schema)

    def _mixed(self, column: _Column, found: pa.DataType, kept: pa.DataType | None = None) -> SourceQueryError:
        kept = kept or column.kind
        return SourceQueryError(
            f"column {column.name!r} holds {found} values after {kept} values in earlier rows; a column must have "
            "one type",
            hint="CAST the column to one type in the orchestration's SQL: offramp orchestrations show NAME",
            engine_message="",
            line=None,
            line_text=None,
        )


def _columns(description: Sequence[Sequence[Any]], dialect: str) -> list[_Column]:
    columns = []
    for entry in description:
        declared = _postgres_type(entry) if dialect == "postgresql" else None
        columns.append(
            _Column(
                name=str(entry[0]),
                declared=None if declared is None else declared[0],
                convert=None if declared is None else declared[1],
                decimal=_decimal_type(entry[4], entry[5]) if len(entry) > 5 else None,
            )
        )
    return columns


class SQLAlchemySource(Source):
    """Any database SQLAlchemy reaches through an installed dialect and driver."""

    def __init__(
        self, url: URL, *, accept_privileged_role: bool = False, statement_timeout_seconds: int = 3600
    ) -> None:
        super().__init__()
        self._accept_privileged_role = accept_privileged_role
        self._statement_timeout_ms = int(statement_timeout_seconds) * 1000
        self._secrets = tuple(secret for secret in (url.password,) if secret)
        self._backend = url.get_backend_name()
        self._engine_name = _ENGINE_NAMES.get(self._backend, self._backend)
        if self._backend == "sqlite":
            url = self._check_sqlite_file(url)
        try:
            # No pool: one connection per stream, closed with it; nothing idles on the customer's database.
            self._engine = create_engine(url, poolclass=NullPool)
        except NoSuchModuleError:
            raise ConfigError(
                f"source: no SQLAlchemy dialect for {url.drivername!r} is installed",
                hint="install the dialect's package into offramp's environment, or fix the URL's scheme",
            ) from None
        except ImportError as exc:
            raise ConfigError(
                f"source: the database driver for {url.drivername!r} is not installed (module {exc.name!r})",
                hint="install it into offramp's environment, e.g. pip install <the driver's package>",
            ) from None
        if self._backend == "sqlite":
            event.listen(self._engine, "connect", _sqlite_query_only)
        if self._backend == "postgresql":
            event.listen(self._engine, "connect", _psycopg_far_times)

    @staticmethod
    def _check_sqlite_file(url: URL) -> URL:
        """Refuse a missing file (SQLite would create it, and then report "no such table"); a URI filename
        (``sqlite:///file:PATH?uri=true``) is also opened with ``mode=ro``, so that SQLite itself never creates one."""
        database = url.database or ""
        uri = str(url.query.get("uri", "")).lower() in ("true", "1", "yes", "on")
        if uri and database.startswith("file:"):
            if url.query.get("mode") == "memory" or database.startswith("file::memory:"):
                return url
            path_text = unquote(database[len("file:") :])
            if path_text.startswith("//"):  # file://HOST/PATH: SQLite takes only an empty host or localhost
                path_text = "/" + path_text[2:].partition("/")[2]
            # Read-only whatever the URL says (mode=rwc would create the file): offramp only reads sources.
            url = url.update_query_dict({"mode": "ro"})
        elif database in ("", ":memory:") or database.startswith("file:"):
            return url
        else:
            path_text = database
        if path_text:
            check_database_file(path_text, "SQLite")  # not the state store, nor any other file offramp protects
        path = Path(path_text)
        if not path_text or not path.exists():
            raise ConfigError(
                f"source: SQLite file {path_text or '(no path)'} does not exist (relative paths start at {Path.cwd()})",
                hint="check the path in the source URL; offramp never creates a source database",
            )
        return url

    def _close_connection(self) -> None:
        self._engine.dispose()

    def _redacted(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split())
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _connect(self) -> Connection:
        try:
            return self._engine.connect()
        except DBAPIError as exc:
            reason = self._redacted(exc.orig or exc)
            raise ConfigError(
                f"source: cannot connect to the {self._engine_name} database: {reason}",
                hint="check the source URL (or the environment variable holding it) and that the database is up",
            ) from None

    def _failure(self, exc: DBAPIError, query: str) -> OfframpError:
        if exc.connection_invalidated:
            return OfframpError(
                f"source: lost the connection to the {self._engine_name} database: {self._redacted(exc.orig or exc)}",
                hint="check the database and resume the run: offramp run NAME --resume",
            )
        error = query_error(exc.orig or exc, query, self._engine_name, secrets=self._secrets)
        if "statement timeout" in error.engine_message:
            # Not a SourceQueryError: the SQL is not wrong, and the line must name the option (the runner gives
            # SQL errors a hint of its own).
            return self._timed_out()
        return error

    @property
    def engine_name(self) -> str:
        """The database's name for messages: PostgreSQL, SQLite, MySQL, ..."""
        return self._engine_name

    def role(self, connection: Connection) -> PostgresRole:
        """Who a PostgreSQL query runs as, and what that role may do beyond reading."""
        rows = connection.exec_driver_sql(_ROLE_SQL).all()
        privileges: set[str] = set()
        names: list[str] = []
        for name, superuser, superuser_roles, *memberships in rows:
            names.append(str(name))
            if superuser:
                privileges.add("superuser")
            privileges.update(f"superuser role {str(held_role)!r}" for held_role in superuser_roles or ())
            privileges.update(
                held_role for held_role, held in zip(_SERVER_FILE_ROLES, memberships, strict=True) if held
            )
        if "superuser" in privileges:
            privileges = {"superuser"}  # a superuser holds every role: saying so is enough
        return PostgresRole(names=tuple(names), privileges=tuple(sorted(privileges)))

    def inspect(self) -> tuple[PostgresRole | None, list[str]]:
        """For `offramp sources check`: the PostgreSQL role (None for other databases) and the tables, views and
        foreign tables that role may change (INSERT, UPDATE, DELETE or TRUNCATE, or it owns them)."""
        with self._connect() as connection:
            if self._backend != "postgresql":
                return None, []
            connection.execution_options(postgresql_readonly=True, no_parameters=True)
            try:
                role = self.role(connection)
                tables = [str(name) for (name,) in connection.exec_driver_sql(_WRITABLE_SQL)]
            except DBAPIError as exc:
                raise ConfigError(
                    f"source: cannot read the PostgreSQL role's privileges: {self._redacted(exc.orig or exc)}",
                    hint="check that the source is PostgreSQL 11 or newer",
                ) from None
            return role, tables

    def _prepare_postgres(self, connection: Connection) -> None:
        """Bound every statement of this session, and refuse a role a read-only transaction does not bind."""
        # In the query's own read-only transaction: a session-wide SET, so that each FETCH of the cursor is bound.
        connection.exec_driver_sql(f"SET statement_timeout = {self._statement_timeout_ms}")
        if self._accept_privileged_role:
            return
        role = self.role(connection)
        if role.privileges:
            raise ConfigError(
                f"source: the query would run as PostgreSQL role {role.describe()}: a read-only transaction does not "
                "bind such a role (dblink_exec, lo_export, COPY ... PROGRAM reach past it)",
                hint="connect as a read-only role (the SQL to create one: docs/operations.md, 'A read-only warehouse "
                "role'), or accept the risk with accept_privileged_role: true in the orchestration's options",
            )

    def _bound_next_fetch(self, connection: Connection, spent: float) -> None:
        """Set statement_timeout again, to what is left of the budget, before the cursor's next FETCH.

        The query may switch the timeout off (``set_config('statement_timeout', '0', false)`` is a SELECT) for
        every later statement of the session; a FETCH already running keeps the timeout it started with. So the
        timeout is set anew before each FETCH, to statement_timeout_seconds less the time the query's statements
        have taken so far: the bound is on the whole query, however many FETCHes it takes.
        """
        left_ms = self._statement_timeout_ms - int(spent * 1000)
        if left_ms <= 0:
            raise self._timed_out()
        connection.exec_driver_sql(f"SET statement_timeout = {left_ms}", execution_options={"stream_results": False})

    def _timed_out(self) -> OfframpError:
        seconds = self._statement_timeout_ms // 1000
        return OfframpError(
            f"source: the query ran longer than the orchestration's statement_timeout_seconds ({seconds}), counting "
            "all its statements (the cursor's DECLARE and every FETCH)",
            hint="make the query faster, or raise statement_timeout_seconds in the orchestration's options",
        )

    def _stream(self, query: str, fetch_rows: int, limit: int | None) -> Generator[pa.RecordBatch, None, None]:
        with self._connect() as connection:
            options: dict[str, Any] = {"stream_results": True, "no_parameters": True}
            if self._backend == "postgresql":
                connection.execution_options(postgresql_readonly=True, no_parameters=True)
                try:
                    self._prepare_postgres(connection)
                except DBAPIError as exc:
                    reason = self._redacted(exc.orig or exc)
                    raise ConfigError(
                        f"source: cannot check the PostgreSQL role offramp connects as: {reason}",
                        hint="check that the source is PostgreSQL 11 or newer, or accept the risk with "
                        "accept_privileged_role: true in the orchestration's options",
                    ) from None
            connection.execution_options(**options)
            started = monotonic()
            try:
                result = connection.exec_driver_sql(query)
            except DBAPIError as exc:
                raise self._failure(exc, query) from None
            spent = monotonic() - started  # in the database's statements only, not in sending the rows
            try:
                description = result.cursor.description if result.cursor is not None else None
                batcher = _ArrowBatcher(_columns(description or (), self._backend), self._engine_name, limit)
                while True:
                    started = monotonic()
                    try:
                        if self._backend == "postgresql":
                            self._bound_next_fetch(connection, spent)
                        # One fetchmany is one FETCH of the server-side cursor: each runs under the SET before it.
                        rows = result.fetchmany(fetch_rows)
                    except DBAPIError as exc:
                        raise self._failure(exc, query) from None
                    spent += monotonic() - started
                    if not rows:
                        break
                    yield from batcher.push(rows)
                yield from batcher.finish()
            finally:
                # Closing the server-side cursor is what stops PostgreSQL from producing further rows.
                result.close()


_SERVER_FILE_ROLES = ("pg_write_server_files", "pg_execute_server_program", "pg_read_server_files")
# session_user too: a role that may SET ROLE back to a privileged one (set_config('role', ...) is a SELECT) is as
# privileged as that one. And membership, direct or through other roles, of a superuser role: such a member may
# set_config('role', 'postgres', false) inside the query, and rolsuper of its own says nothing of that.
_ROLE_SQL = (
    "SELECT r.rolname, r.rolsuper, ARRAY(SELECT s.rolname::text FROM pg_roles s WHERE s.rolsuper AND s.oid <> r.oid "
    "AND pg_has_role(r.oid, s.oid, 'MEMBER') ORDER BY 1), "
    + ", ".join(f"pg_has_role(r.oid, '{role}', 'MEMBER')" for role in _SERVER_FILE_ROLES)
    + " FROM pg_roles r WHERE r.rolname IN (session_user, current_user) ORDER BY r.rolname = current_user DESC"
)


_WRITABLE_SQL = (
    "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND n.nspname <> 'information_schema' "
    "AND n.nspname NOT LIKE 'pg\\_%' "
    "AND (pg_has_role(c.relowner, 'USAGE') OR has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')) "
    "ORDER BY 1"
)


@dataclass(frozen=True)
class PostgresRole:
    """The roles a PostgreSQL query runs as (current_user first, then session_user when it differs), and what of
    superuser, membership of a superuser role (``superuser role 'NAME'``), pg_write_server_files,
    pg_execute_server_program and pg_read_server_files they hold."""

    names: tuple[str, ...]
    privileges: tuple[str, ...]

    def describe(self) -> str:
        who = " (session user " + self.names[1] + ")" if len(self.names) > 1 else ""
        held = ", ".join(
            "a superuser"
            if p == "superuser"
            else f"a member of {p} (it may become that role)"
            if p.startswith("superuser role ")
            else f"a member of {p}"
            for p in self.privileges
        )
        return f"{self.names[0] if self.names else '?'!r}{who}" + (f", {held}" if held else "")


def _sqlite_query_only(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only = ON")


__all__ = ["LOOKAHEAD_ROWS", "PostgresRole", "SQLAlchemySource"]
