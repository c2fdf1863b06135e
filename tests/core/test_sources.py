"""Sources: DuckDB files (read-only), in-memory DuckDB over Parquet/CSV/JSON files, SQLAlchemy URLs (PostgreSQL,
SQLite); one read query only, refused before it runs; Arrow batches of bounded size with one schema."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

import offramp.core.sources._base as sources_base
import offramp.core.sources._duckdb as duckdb_source
import offramp.core.sources._sqlalchemy as sqlalchemy_source
from offramp.core.errors import ConfigError, OfframpError
from offramp.core.orchestration_options import OrchestrationOptions
from offramp.core.sources import Source, SourceQueryError, check_read_only_query, open_source

UTC = dt.UTC


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """A DuckDB file of 10,007 rows with a timestamp, a date, a timestamptz and a list column."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE t AS SELECT i AS id, TIMESTAMP '2026-11-19 10:00:00' + INTERVAL (i) SECOND AS ts, "
            "DATE '2026-11-19' AS d, TIMESTAMPTZ '2026-11-19 10:00:00+00' AS tz, ['a', 'b'] AS emails, "
            "12.5::DECIMAL(10, 2) AS price FROM range(10007) r(i)"
        )
        con.execute("CREATE SEQUENCE serial")
    return path


def read(
    reference: str,
    sql: str,
    batch_rows: int = 1000,
    limit: int | None = None,
    options: OrchestrationOptions | None = None,
) -> list[pa.RecordBatch]:
    with open_source(reference, options) as source:
        return list(source.batches(sql, batch_rows, limit))


def rows_of(batches: list[pa.RecordBatch]) -> list[dict[str, object]]:
    return [row for batch in batches for row in batch.to_pylist()]


@pytest.fixture
def unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch the read-only check off, to show what the engine itself refuses if a statement ever slipped by."""
    monkeypatch.setattr(sources_base, "check_read_only_query", lambda sql: sql.strip().rstrip(";"))


# --- DuckDB files -----------------------------------------------------------------------------------------------


def test_a_duckdb_file_streams_every_row_in_batches_of_at_most_batch_rows(warehouse: Path) -> None:
    batches = read(f"duckdb:{warehouse}", "SELECT * FROM t ORDER BY id", batch_rows=1000)
    assert all(0 < batch.num_rows <= 1000 for batch in batches)
    assert [row["id"] for row in rows_of(batches)] == list(range(10007))
    assert len({batch.schema for batch in batches}) == 1


def test_duckdb_types_come_through_as_arrow_types(warehouse: Path) -> None:
    (batch,) = read(f"duckdb:{warehouse}", "SELECT * FROM t WHERE id = 1")
    schema = batch.schema
    assert schema.field("ts").type == pa.timestamp("us")
    assert pa.types.is_timestamp(schema.field("tz").type) and schema.field("tz").type.tz is not None
    assert schema.field("d").type == pa.date32()
    assert schema.field("emails").type == pa.list_(pa.string())
    assert schema.field("price").type == pa.decimal128(10, 2)
    (row,) = batch.to_pylist()
    assert row["ts"] == dt.datetime(2026, 11, 19, 10, 0, 1)
    assert row["tz"] == dt.datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
    assert row["d"] == dt.date(2026, 11, 19) and row["emails"] == ["a", "b"] and row["price"] == Decimal("12.50")


def test_the_file_is_opened_read_only_and_left_unchanged(warehouse: Path, unchecked: None) -> None:
    before = (warehouse.read_bytes(), warehouse.stat().st_mtime_ns)
    assert sum(batch.num_rows for batch in read(f"duckdb:{warehouse}", "SELECT * FROM t")) == 10007
    # nextval writes: a SELECT both checks accept, refused by the read-only connection.
    with pytest.raises(SourceQueryError, match="read-only"):
        read(f"duckdb:{warehouse}", "SELECT nextval('serial')")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM t").fetchall() == [(10007,)]
    assert (warehouse.read_bytes(), warehouse.stat().st_mtime_ns) == before


def test_a_write_is_refused_before_it_runs(warehouse: Path) -> None:
    with open_source(f"duckdb:{warehouse}") as source, pytest.raises(ConfigError, match="DELETE"):
        source.batches("DELETE FROM t", 100)  # refused at the call, before any iteration
    assert sum(batch.num_rows for batch in read(f"duckdb:{warehouse}", "SELECT id FROM t")) == 10007


def test_duckdbs_own_parser_is_a_second_guard(warehouse: Path, unchecked: None) -> None:
    with pytest.raises(ConfigError, match="as a DELETE statement"):
        read(f"duckdb:{warehouse}", "DELETE FROM t")
    with pytest.raises(ConfigError, match="2 statements"):
        read(f"duckdb:{warehouse}", "SELECT 1; DROP TABLE t")


def test_limit_caps_the_rows_read(warehouse: Path) -> None:
    batches = read(f"duckdb:{warehouse}", "SELECT id FROM t ORDER BY id", batch_rows=100, limit=250)
    assert [batch.num_rows for batch in batches] == [100, 100, 50]
    assert [row["id"] for row in rows_of(batches)] == list(range(250))
    assert [batch.num_rows for batch in read(f"duckdb:{warehouse}", "SELECT id FROM t", limit=5)] == [5]
    assert read(f"duckdb:{warehouse}", "SELECT id FROM t", limit=0) == []
    assert sum(batch.num_rows for batch in read(f"duckdb:{warehouse}", "SELECT id FROM t", limit=10**6)) == 10007
    (batch,) = read("duckdb::memory:", "SELECT 1 AS a, 2 AS a", limit=1)
    assert batch.schema.names == ["a", "a"]  # repeated names are kept as the query wrote them


def test_limit_does_not_read_the_rest() -> None:
    # Row 100,000 onwards would fail the cast: with a limit the engine never gets there.
    sql = "SELECT CAST(CASE WHEN i < 100000 THEN '1' ELSE 'x' END AS INT) AS v FROM range(10000000) r(i)"
    assert sum(batch.num_rows for batch in read("duckdb::memory:", sql, batch_rows=10, limit=10)) == 10
    with pytest.raises(SourceQueryError, match=r"Could not convert string '\*\*\*'"):  # the value is masked
        read("duckdb::memory:", sql, batch_rows=100_000)


def test_batch_size_and_limit_are_checked() -> None:
    with open_source("duckdb::memory:") as source:
        with pytest.raises(ConfigError, match="batch size"):
            source.batches("SELECT 1", 0)
        with pytest.raises(ConfigError, match="limit"):
            source.batches("SELECT 1", 10, -1)


def test_streams_on_one_source_do_not_collide() -> None:
    with open_source("duckdb::memory:") as source:
        first = source.batches("SELECT * FROM range(100) r(i)", 10)
        second = source.batches("SELECT * FROM range(100) r(i)", 7)
        assert next(first).num_rows == 10 and next(second).num_rows == 7
        assert sum(batch.num_rows for batch in first) == 90
        assert sum(batch.num_rows for batch in second) == 93
        left_open = source.batches("SELECT * FROM range(100) r(i)", 10)
        next(left_open)
    # Closing the source while a stream is suspended ends the stream (and closes its cursor).
    with pytest.raises(StopIteration):
        next(left_open)


# --- in-memory DuckDB over files --------------------------------------------------------------------------------


def test_in_memory_duckdb_reads_parquet_csv_and_json_files(tmp_path: Path) -> None:
    data = tmp_path / "exports"
    data.mkdir()
    # The SQL reads files only in the directories the orchestration allows (issue 11, item 6).
    allowed = OrchestrationOptions(allowed_paths=[str(data)])
    pq.write_table(
        pa.table(
            {
                "email": ["a@b.c", "d@e.f"],
                "at": pa.array([dt.datetime(2026, 11, 19, 9, 30), None], pa.timestamp("us")),
                "tags": pa.array([["x"], []], pa.list_(pa.string())),
            }
        ),
        data / "orders.parquet",
    )
    (data / "orders.csv").write_text("email,ordered_on\nx@y.z,2026-11-18\n")
    (data / "orders.json").write_text(json.dumps([{"email": "j@k.l"}]))
    parquet = rows_of(read("duckdb::memory:", f"SELECT * FROM read_parquet('{data}/orders.parquet')", options=allowed))
    assert parquet == [
        {"email": "a@b.c", "at": dt.datetime(2026, 11, 19, 9, 30), "tags": ["x"]},
        {"email": "d@e.f", "at": None, "tags": []},
    ]
    (csv,) = read("duckdb::memory:", f"FROM '{data}/orders.csv' SELECT email, ordered_on", options=allowed)
    assert csv.schema.field("ordered_on").type == pa.date32()  # DuckDB's CSV sniffer typed the column
    assert csv.to_pylist() == [{"email": "x@y.z", "ordered_on": dt.date(2026, 11, 18)}]
    assert rows_of(read("duckdb::memory:", f"SELECT email FROM read_json('{data}/orders.json')", options=allowed)) == [
        {"email": "j@k.l"}
    ]


def test_a_failure_while_rows_stream_is_a_query_error() -> None:
    sql = "SELECT CAST(CASE WHEN i < 50000 THEN '1' ELSE 'x' END AS INT) AS v\nFROM range(100000) r(i)"
    with pytest.raises(SourceQueryError) as error:
        read("duckdb::memory:", sql, batch_rows=1000)
    assert "Could not convert string '***' to INT32" in str(error.value)  # the value is masked (issue 11, item 16)


# --- references -------------------------------------------------------------------------------------------------


def test_env_references_are_read_from_the_environment(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAREHOUSE", f"duckdb:{warehouse}")
    assert sum(batch.num_rows for batch in read("env:WAREHOUSE", "SELECT id FROM t")) == 10007
    monkeypatch.setenv("IN_MEMORY", "duckdb::memory:")
    assert rows_of(read("env:IN_MEMORY", "SELECT 42 AS x")) == [{"x": 42}]


@pytest.mark.parametrize(("value", "state"), [(None, "is not set"), ("", "is empty"), ("  ", "is empty")])
def test_a_missing_or_empty_variable_names_it_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, value: str | None, state: str
) -> None:
    monkeypatch.delenv("WAREHOUSE_URL", raising=False)
    if value is not None:
        monkeypatch.setenv("WAREHOUSE_URL", value)
    with pytest.raises(ConfigError) as error:
        open_source("env:WAREHOUSE_URL")
    assert f"environment variable WAREHOUSE_URL (named by the orchestration's source) {state}" in str(error.value)
    assert error.value.hint is not None and "export WAREHOUSE_URL=" in error.value.hint


def test_a_duckdb_memory_limit_bounds_the_sort_and_spills_to_a_private_directory_removed_at_close(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OFFRAMP_DUCKDB_MEMORY_LIMIT", "64MB")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with open_source(f"duckdb:{warehouse}") as source:
        (setting,) = rows_of(list(source.batches("SELECT current_setting('memory_limit') AS m", 10)))
        assert setting["m"] == "61.0 MiB"  # 64 MB as DuckDB writes it
        spill = list((tmp_path / "tmp").glob("offramp-duckdb-*"))
        assert len(spill) == 1
        ordered = rows_of(list(source.batches("SELECT id FROM t ORDER BY id DESC", 1000)))
        assert [row["id"] for row in ordered] == list(range(10006, -1, -1))
    assert not spill[0].exists()


def _settings(source: Source) -> dict[str, object]:
    sql = (
        "SELECT current_setting('memory_limit') AS memory_limit, current_setting('threads') AS threads, "
        "current_setting('temp_directory') AS temp_directory"
    )
    (settings,) = rows_of(list(source.batches(sql, 10)))
    return settings


def _as_duckdb_writes_it(limit: str) -> object:
    with duckdb.connect(":memory:", config={"memory_limit": limit}) as con:
        return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_duckdb_sources_get_a_small_memory_limit_and_a_private_spill_directory_by_default(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    monkeypatch.delenv("OFFRAMP_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    start = duckdb_source.default_memory_limit()
    with open_source(f"duckdb:{warehouse}" if kind == "file" else "duckdb::memory:") as source:
        settings = _settings(source)
        # DuckDB's own default would be 80% of the machine, all of it in offramp's process.
        assert settings["memory_limit"] == _as_duckdb_writes_it(f"{start // 2**20}MiB")
        assert settings["threads"] == duckdb_source.default_threads()
        spill = Path(str(settings["temp_directory"]))
        assert spill.parent == tmp_path / "tmp" and spill.name.startswith("offramp-duckdb-")
        assert spill.is_dir() and spill.stat().st_mode & 0o777 == 0o700  # the rows it spills are customers' data
        if kind == "file":
            # A sort larger than the limit spills there and still comes back in order.
            ordered = rows_of(list(source.batches("SELECT id FROM t ORDER BY id DESC", 1000)))
            assert [row["id"] for row in ordered] == list(range(10006, -1, -1))
    assert not spill.exists()


def test_spill_directories_of_killed_or_unclosed_sources_do_not_stay(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess
    import sys
    import tempfile

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    # A process that exited without closing its source: the interpreter's exit removes the directory.
    script = (
        f"from offramp.core.sources import open_source; s = open_source('duckdb:{warehouse}'); "
        "print(next(s.batches(\"SELECT current_setting('temp_directory') AS t\", 1)).column(0)[0])"
    )
    left = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=os.environ)
    assert left.stdout.strip().startswith(str(temporary)) and not Path(left.stdout.strip()).exists()
    # A process killed before it could (SIGKILL runs nothing): the next source removes what it left.
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = temporary / f"offramp-duckdb-{ended.stdout.strip()}-x1"
    alive = temporary / f"offramp-duckdb-{os.getppid()}-x2"  # a live process's: not touched
    for directory in (killed, alive):
        directory.mkdir()
        (directory / "duckdb_temp_storage-0.tmp").write_bytes(b"spilled rows")
    with open_source(f"duckdb:{warehouse}"):
        assert not killed.exists() and alive.exists()


@pytest.mark.parametrize(
    ("memory", "threads", "start"),
    [
        (16 * 2**30, 4, 192),  # a 16 GB laptop with 8 cores: 48 MiB for each of DuckDB's 4 threads
        (24 * 2**30, 1, 48),
        (256 * 2**30, 1, 512),  # a large machine: 1/512 of its memory
        (4 * 2**40, 1, 1024),  # at most 1 GiB to start with
        (None, 1, 48),  # a platform that does not say how much memory it has
    ],
)
def test_the_default_limit_is_sized_from_the_machine(memory: int | None, threads: int, start: int) -> None:
    assert duckdb_source.default_memory_limit(memory, threads) == start * 2**20


def test_duckdb_gets_half_the_cores_and_a_retry_ceiling_of_half_the_memory() -> None:
    # The other cores prepare the rows DuckDB streams; each DuckDB thread would need sort memory of its own.
    assert [duckdb_source.default_threads(cores) for cores in (1, 2, 3, 8)] == [1, 1, 1, 4]
    assert duckdb_source.retry_memory_limit(16 * 2**30) == 8 * 2**30


def test_a_query_that_needs_more_than_the_default_runs_again_with_more(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("OFFRAMP_DUCKDB_MEMORY_LIMIT", raising=False)
    start = duckdb_source.default_memory_limit()
    rows = start // 8  # one list of that many BIGINTs: more than the limit, and a list aggregate does not spill
    caplog.set_level("INFO", logger="offramp.core.sources._duckdb")
    with open_source("duckdb::memory:") as source:
        assert rows_of(list(source.batches(f"SELECT len(list(i)) AS n FROM range({rows}) r(i)", 10))) == [{"n": rows}]
        raised = _settings(source)["memory_limit"]
    assert raised != _as_duckdb_writes_it(f"{start // 2**20}MiB")
    assert f"DuckDB ran out of its memory limit ({start // 2**20}MiB) before the first row" in caplog.text


def test_a_query_that_needs_more_than_the_variable_allows_is_one_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OFFRAMP_DUCKDB_MEMORY_LIMIT", "16MB")
    with pytest.raises(SourceQueryError) as caught:
        read("duckdb::memory:", "SELECT len(list(i)) AS n FROM range(4000000) r(i)")
    message = str(caught.value)
    assert "Out of Memory Error" in message
    assert "(DuckDB's memory limit: 16MB, set by OFFRAMP_DUCKDB_MEMORY_LIMIT)" in message
    assert "Possible solutions" not in message  # DuckDB's advice (SET memory_limit) cannot be followed here
    assert caught.value.hint is not None and "set OFFRAMP_DUCKDB_MEMORY_LIMIT to a larger size" in caught.value.hint


@pytest.mark.parametrize("value", ["lots", "12 parsecs"])
def test_a_memory_limit_duckdb_does_not_take_names_the_variable_and_the_fix(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("OFFRAMP_DUCKDB_MEMORY_LIMIT", value)
    with pytest.raises(ConfigError, match=f"OFFRAMP_DUCKDB_MEMORY_LIMIT='{value}' is not a memory size") as caught:
        open_source(f"duckdb:{warehouse}")
    assert "512MB" in (caught.value.hint or "")


def test_a_missing_duckdb_file_says_so_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"DuckDB file .*nope\.duckdb does not exist"):
        open_source(f"duckdb:{tmp_path}/nope.duckdb")
    assert not (tmp_path / "nope.duckdb").exists()


def test_a_file_that_is_not_a_duckdb_database_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="cannot open DuckDB file"):
        open_source(f"duckdb:{tmp_path}/notes.txt")


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("duckdb:", "without a path"),
        ("warehouse", "is not duckdb::memory:, duckdb:PATH or a SQLAlchemy URL"),
        ("duckdb:///w.duckdb", "read DuckDB files with duckdb:PATH"),
        ("nosuchdialect://u@h/db", "no SQLAlchemy dialect"),
        ("mysql+pymysql://u@h/db", "driver for 'mysql+pymysql' is not installed"),
        ("mysql+pymysql://u:hunter2@h/db", "the URL holds a password (USER:PASSWORD@)"),
        ("postgresql+psycopg://u@h/db?password=hunter2", "the URL holds a password (?password=)"),
        ("sqlite:///nowhere.db", "SQLite file nowhere.db does not exist"),
    ],
)
def test_references_of_no_known_form_are_clear_errors(reference: str, expected: str) -> None:
    with pytest.raises(ConfigError, match="source") as error:
        open_source(reference)
    assert expected in str(error.value)
    assert "hunter2" not in str(error.value)


def test_a_database_that_cannot_be_reached_is_one_clear_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql+psycopg://reader@127.0.0.1:1/analytics?sslmode=disable")
    with open_source("env:WAREHOUSE_URL") as source, pytest.raises(ConfigError) as error:
        list(source.batches("SELECT 1", 10))
    assert "cannot connect to the PostgreSQL database" in str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://reader:s3cret-pw@127.0.0.1:1/analytics",
        "postgresql+psycopg://reader@127.0.0.1:1/analytics?password=s3cret-pw",
        "postgresql+psycopg://reader@127.0.0.1:1/analytics?sslpassword=s3cret-pw",
    ],
)
def test_a_variable_holding_a_url_with_a_password_is_refused_naming_libpq_mechanisms(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", url)
    with pytest.raises(ConfigError) as error:
        open_source("env:WAREHOUSE_URL")
    assert "environment variable WAREHOUSE_URL holds a password" in str(error.value)
    assert "PGPASSWORD" in str(error.value) and "~/.pgpass" in str(error.value)
    assert "s3cret-pw" not in str(error.value) and "s3cret-pw" not in repr(error.value.fields)


# --- the read-only check ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("UPDATE t SET a = 1", "UPDATE"),
        ("DELETE FROM t", "DELETE"),
        ("CREATE TABLE x AS SELECT 1", "CREATE"),
        ("DROP TABLE t", "DROP"),
        ("ALTER TABLE t ADD COLUMN b INT", "ALTER"),
        ("COPY t TO 'x.csv'", "COPY"),
        ("ATTACH 'other.duckdb' AS o", "ATTACH"),
        ("DETACH o", "DETACH"),
        ("PRAGMA version", "PRAGMA"),
        ("SET threads = 1", "SET"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("CALL pragma_version()", "CALL"),
        ("EXPORT DATABASE 'out'", "EXPORT"),
        ("EXPLAIN SELECT 1", "EXPLAIN"),
        ("TRUNCATE t", "TRUNCATE"),
        ("-- only a comment\n/* and SELECT in another */ DROP TABLE t", "DROP"),
        ("(DELETE FROM t)", "DELETE"),
        ("SELECT 1; SELECT 2", "2 statements (SELECT, SELECT)"),
        ("SELECT 1;\nDELETE FROM t;", "2 statements (SELECT, DELETE)"),
        ("SELECT 'it''s'; DROP TABLE t", "2 statements (SELECT, DROP)"),
        ("SELECT $$ a $$; DROP TABLE t", "2 statements (SELECT, DROP)"),
        ("SELECT E'it\\'s'; DROP TABLE t", "2 statements (SELECT, DROP)"),
        ("WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "DELETE inside the query"),
        ("WITH x AS MATERIALIZED (UPDATE t SET a = 1 RETURNING a) SELECT * FROM x", "UPDATE inside the query"),
        ("WITH x AS (SELECT 1 AS a) INSERT INTO t SELECT a FROM x", "INSERT inside the query"),
        ("WITH x AS (SELECT 1) MERGE INTO t USING x ON true WHEN MATCHED THEN DELETE", "MERGE inside the query"),
        ("SELECT * INTO new_table FROM t", "SELECT ... INTO"),
        ("SELECT * FROM t FOR UPDATE", "FOR UPDATE"),
        ("SELECT * FROM t FOR NO KEY UPDATE", "FOR NO"),
        ("SELECT * FROM t FOR SHARE", "FOR SHARE"),
        ("", "is empty"),
        ("  ;  -- nothing\n", "is empty"),
        ("'a string'", "is not a query"),
    ],
)
def test_only_one_read_query_is_accepted(sql: str, kind: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_read_only_query(sql)
    assert kind in str(error.value)
    if "empty" not in kind:
        assert "must be one SELECT" in str(error.value)


@pytest.mark.parametrize(
    ("sql", "opened"),
    [
        ("SELECT 'unterminated; DROP TABLE t", "string literal (opened on line 1)"),
        ('SELECT "col\nFROM t', "quoted identifier (opened on line 1)"),
        ("SELECT 1 /* a /* nested */ comment\nFROM t", "/* comment (opened on line 1)"),
        ("SELECT 1,\n$tag$ unterminated", "$tag$ string (opened on line 2)"),
    ],
)
def test_unterminated_literals_and_comments_are_refused_not_guessed(sql: str, opened: str) -> None:
    with pytest.raises(ConfigError, match="unterminated") as error:
        check_read_only_query(sql)
    assert opened in str(error.value)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'DROP TABLE t; --' AS note",
        "SELECT 'it''s; DELETE FROM t' AS note",
        "SELECT E'it\\'s; DELETE' AS note",
        "SELECT $$; DROP TABLE t$$ AS note",
        "SELECT $body$ ; INSERT $body$ AS note",
        "-- DELETE everything\nSELECT 1;",
        "/* INSERT; /* nested; DROP */ still comment */ SELECT 1",
        'SELECT "delete", "into" FROM t',
        "SELECT `update` FROM t",
        "SELECT t.update, t.delete FROM t",
        "SELECT insert('abc', 1, 1, 'x')",
        "WITH a AS (SELECT 1 AS n) SELECT * FROM a",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r",
        "FROM t SELECT id",
        "VALUES (1), (2)",
        "TABLE t",
        "(SELECT 1) UNION (SELECT 2)",
        "SELECT created_at, updated_at, deleted, inserted_by FROM t",
        "SELECT 1 AS x;;\n-- done\n",
        "SELECT a::text, $1 FROM t WHERE b LIKE '%;%'",
        "SELECT * FROM (UNPIVOT t ON a, b INTO NAME k VALUE v)",
    ],
)
def test_keywords_in_strings_comments_and_names_do_not_trip_the_check(sql: str) -> None:
    check_read_only_query(sql)


def test_the_checked_query_drops_trailing_semicolons_and_keeps_lines() -> None:
    assert check_read_only_query("SELECT 1;") == "SELECT 1"
    assert check_read_only_query("SELECT 1 ; ; -- done\n") == "SELECT 1"
    assert check_read_only_query("SELECT ';'\n;") == "SELECT ';'"
    assert check_read_only_query(";\nSELECT 1") == " \nSELECT 1"  # line 2 is still line 2


def test_strings_and_comments_holding_keywords_run(warehouse: Path) -> None:
    sql = "-- DROP TABLE t;\nSELECT 'DELETE FROM t; --' AS note, /* ; */ count(*) AS n FROM t;"
    assert rows_of(read(f"duckdb:{warehouse}", sql)) == [{"note": "DELETE FROM t; --", "n": 10007}]


# --- SQL errors -------------------------------------------------------------------------------------------------


def test_a_syntax_error_quotes_the_line_duckdb_points_at(warehouse: Path) -> None:
    sql = "SELECT id,\n       ts\nFROM t WHERE\nORDER BY id"
    with pytest.raises(SourceQueryError) as error:
        read(f"duckdb:{warehouse}", sql)
    assert error.value.line == 4 and error.value.line_text == "ORDER BY id"
    message = str(error.value)
    assert 'syntax error at or near "ORDER"' in message and "(line 4: 'ORDER BY id')" in message
    assert error.value.hint == "fix the orchestration's SQL (`orchestrations show` prints it), then run again"
    assert "^" not in message  # DuckDB's caret drawing is not repeated


def test_an_unknown_column_quotes_the_line_that_names_it(warehouse: Path) -> None:
    with pytest.raises(SourceQueryError) as error:
        read(f"duckdb:{warehouse}", "SELECT id,\n       nosuch\nFROM t")
    assert 'Referenced column "nosuch" not found' in str(error.value)
    assert error.value.line == 2 and "(line 2: 'nosuch')" in str(error.value)


def test_an_error_without_a_position_carries_the_message_alone(tmp_path: Path) -> None:
    with pytest.raises(SourceQueryError, match="No files found") as error:
        read("duckdb::memory:", f"SELECT * FROM read_parquet('{tmp_path}/data/missing.parquet')",
             options=OrchestrationOptions(allowed_paths=[str(tmp_path / "data")]))  # fmt: skip
    assert error.value.line is None


# --- SQLite -----------------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """A SQLite file whose `late` column is NULL for the first 30 rows, `mixed` holds ints then floats from row 20
    (inside the rows held back for `late`), `text_after` ints then text from row 60."""
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t (id INTEGER, email TEXT, late INTEGER, mixed, text_after, blob BLOB)")
        con.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)",
            [
                (i, f"u{i}@example.com", None if i < 30 else i, i if i < 20 else i + 0.5, text_after, b"\x00")
                for i in range(100)
                for text_after in [i if i < 60 else "ann@example.com"]
            ],
        )
    con.close()
    return path


def test_sqlite_through_a_file_url(sqlite_file: Path) -> None:
    batches = read(f"sqlite:///{sqlite_file}", "SELECT id, email, late, mixed, blob FROM t ORDER BY id", batch_rows=8)
    assert all(batch.num_rows <= 8 for batch in batches) and len({batch.schema for batch in batches}) == 1
    schema = batches[0].schema
    assert schema.types == [pa.int64(), pa.string(), pa.int64(), pa.float64(), pa.binary()]
    rows = rows_of(batches)
    assert [row["id"] for row in rows] == list(range(100))
    assert rows[0]["late"] is None and rows[31]["late"] == 31
    assert rows[3]["mixed"] == 3.0 and rows[51]["mixed"] == 51.5  # ints and floats seen together: float64


def test_a_column_null_past_the_lookahead_becomes_text(sqlite_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlalchemy_source, "LOOKAHEAD_ROWS", 16)
    batches = read(f"sqlite:///{sqlite_file}", "SELECT id, late FROM t ORDER BY id", batch_rows=8)
    assert batches[0].schema.field("late").type == pa.string()
    rows = rows_of(batches)
    assert rows[0]["late"] is None and rows[31]["late"] == "31" and len(rows) == 100


def test_a_limit_also_caps_the_rows_held_back(sqlite_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    original = sqlalchemy_source._ArrowBatcher.push

    def push(self: Any, rows: Any) -> list[pa.RecordBatch]:
        seen.append(len(rows))
        return original(self, rows)

    monkeypatch.setattr(sqlalchemy_source._ArrowBatcher, "push", push)
    # `late` is NULL in the first 30 rows: without the limit, 30+ rows would be fetched before the first batch.
    (batch,) = read(f"sqlite:///{sqlite_file}", "SELECT id, late FROM t ORDER BY id", batch_rows=100, limit=5)
    assert batch.num_rows == 5 and sum(seen) == 5
    assert batch.schema.field("late").type == pa.string()


@pytest.mark.parametrize("batch_rows", [8, 100])  # text in a later batch than the ints, or in the same one
def test_a_value_of_another_type_asks_for_a_cast_without_quoting_it(
    sqlite_file: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    monkeypatch.setattr(sqlalchemy_source, "LOOKAHEAD_ROWS", 16)
    with pytest.raises(SourceQueryError, match="column 'text_after'") as error:
        read(f"sqlite:///{sqlite_file}", "SELECT id, text_after FROM t ORDER BY id", batch_rows=batch_rows)
    assert error.value.hint is not None and "CAST" in error.value.hint
    assert "ann@example.com" not in str(error.value)  # run errors are stored; row values are not


def test_sqlite_refuses_writes_itself(sqlite_file: Path, unchecked: None) -> None:
    with pytest.raises(SourceQueryError, match="readonly"):
        read(f"sqlite:///{sqlite_file}", "DELETE FROM t")
    with sqlite3.connect(sqlite_file) as con:
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(100,)]
    con.close()


def test_percent_signs_and_colons_reach_the_database_as_written(sqlite_file: Path) -> None:
    rows = rows_of(read(f"sqlite:///{sqlite_file}", "SELECT '10:30 %s %' AS s FROM t WHERE email LIKE 'u1@%'"))
    assert rows == [{"s": "10:30 %s %"}]


# --- PostgreSQL -------------------------------------------------------------------------------------------------


@pytest.fixture
def orders(postgres_url: str, postgres_reader_url: str) -> str:
    """50 rows of every type the TikTok path reads; `late` and `arrives` are NULL until row 45."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE orders AS SELECT i AS id, 'u' || i || '@example.com' AS email, "
            "ARRAY['a', 'b' || i] AS tags, "
            "TIMESTAMPTZ '2026-11-19 10:00:00+01' + make_interval(mins => i) AS at, "
            "TIMESTAMP '2026-11-19 10:00:00' AS local_at, DATE '2026-11-19' AS day, "
            "(i * 1.25)::numeric(12, 2) AS price, i * 1.5::numeric AS computed, "
            "CASE WHEN i >= 45 THEN i END AS late, CASE WHEN i >= 45 THEN 'late' || i END AS arrives, "
            "CASE WHEN i >= 45 THEN ARRAY[i, i] END AS late_list, "
            "jsonb_build_object('n', i) AS doc, md5(i::text)::uuid AS key "
            "FROM generate_series(1, 50) AS i"
        )
        connection.exec_driver_sql("CREATE SEQUENCE serial")
        reader = sa.engine.make_url(postgres_reader_url).username
        connection.exec_driver_sql(f"GRANT USAGE ON SEQUENCE serial TO {reader}")
    engine.dispose()
    return postgres_reader_url  # queried as a read-only role, as users should (a superuser is refused)


def test_postgresql_streams_in_small_batches_with_its_types(orders: str) -> None:
    batches = read(orders, "SELECT * FROM orders ORDER BY id", batch_rows=20)
    assert [batch.num_rows for batch in batches] == [20, 20, 10]
    assert len({batch.schema for batch in batches}) == 1
    types = dict(zip(batches[0].schema.names, batches[0].schema.types, strict=True))
    assert types == {
        "id": pa.int32(),
        "email": pa.string(),
        "tags": pa.list_(pa.string()),
        "at": pa.timestamp("us", tz="UTC"),
        "local_at": pa.timestamp("us"),
        "day": pa.date32(),
        "price": pa.decimal128(12, 2),
        "computed": pa.float64(),
        "late": pa.int32(),  # typed from the first batch although all its values there are NULL
        "arrives": pa.string(),
        "late_list": pa.list_(pa.int32()),
        "doc": pa.string(),
        "key": pa.string(),
    }
    rows = rows_of(batches)
    first, last = rows[0], rows[-1]
    assert first["tags"] == ["a", "b1"] and first["email"] == "u1@example.com"
    assert first["at"] == dt.datetime(2026, 11, 19, 9, 1, tzinfo=UTC)  # the same instant, in UTC
    assert first["local_at"] == dt.datetime(2026, 11, 19, 10, 0) and first["day"] == dt.date(2026, 11, 19)
    assert first["price"] == Decimal("1.25") and last["price"] == Decimal("62.50")
    assert first["computed"] == 1.5 and last["computed"] == 75.0
    assert [row["late"] for row in rows[43:46]] == [None, 45, 46]
    assert rows[44]["arrives"] == "late45" and rows[44]["late_list"] == [45, 45] and rows[0]["late_list"] is None
    assert json.loads(str(first["doc"])) == {"n": 1} and len(str(first["key"])) == 36


def test_postgresql_errors_quote_the_line_without_the_cursor_declaration(orders: str) -> None:
    with pytest.raises(SourceQueryError) as error:
        read(orders, "SELECT id,\n  nosuch\nFROM orders")
    message = str(error.value)
    assert 'column "nosuch" does not exist' in message and "(line 2: 'nosuch')" in message
    assert "DECLARE" not in message and error.value.line == 2


def test_postgresql_limit_does_not_read_the_rest(orders: str) -> None:
    # Division by zero at row 1000: a client-side cursor (or a full read) would fail; the server-side one stops.
    sql = "SELECT 1 / (i - 1000) AS v FROM generate_series(1, 2000000) AS i"
    assert sum(batch.num_rows for batch in read(orders, sql, batch_rows=10, limit=25)) == 25
    with pytest.raises(SourceQueryError, match="division by zero"):
        read(orders, sql, batch_rows=500)


def test_postgresql_runs_the_query_in_a_read_only_transaction(orders: str, unchecked: None) -> None:
    with pytest.raises(SourceQueryError, match="read-only transaction"):
        read(orders, "SELECT nextval('serial')")
    with pytest.raises(SourceQueryError, match="syntax error"):
        read(orders, "DELETE FROM orders")  # a server-side cursor takes only a query
    assert sum(batch.num_rows for batch in read(orders, "SELECT id FROM orders")) == 50


def test_a_password_in_the_url_never_shows_in_a_query_error(orders: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sa.engine.make_url(orders)
    with_password = url.set(password="pw-" + "x" * 8).render_as_string(hide_password=False)
    monkeypatch.setenv("WAREHOUSE_URL", with_password)
    # A server that checks passwords refuses this one (a connection error); the test server trusts local connections,
    # so the query runs and fails with the text in PostgreSQL's message and in the quoted line. Either way: masked.
    with pytest.raises(OfframpError) as error:
        read("env:WAREHOUSE_URL", "SELECT 'pw-xxxxxxxx' + 1")
    assert "pw-xxxxxxxx" not in str(error.value)


def test_postgresql_dates_and_timestamps_python_cannot_hold_stream_as_counts_since_1970(
    postgres_reader_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg raises on infinity, BC years and years after 9999; the batch streams anyway, in the column's type.

    Good values keep their datetime. The others hold their days or microseconds since 1970-01-01: the exact value
    where Arrow holds it (as PostgreSQL's own extract(epoch) counts it), DuckDB's -infinity or infinity otherwise
    (PostgreSQL's infinities, timestamps past 294247). The session's zone is not UTC, so that timestamptz text
    carries an offset (LMT's +05:53:28 for 4713 BC).
    """
    url = sa.engine.make_url(postgres_reader_url)
    options = f"{url.query['options']} -ctimezone=Asia/Kolkata"
    monkeypatch.setenv("WAREHOUSE_URL", url.update_query_dict({"options": options}).render_as_string(False))
    sql = """SELECT * FROM (VALUES
        (1, TIMESTAMP '2026-01-02 03:04:05.25', TIMESTAMPTZ '2026-01-02 03:04:05+00', DATE '2026-01-02',
         ARRAY[TIMESTAMP '2026-01-02 03:04:05', 'infinity', NULL]),
        (2, 'infinity', '-infinity', 'infinity', NULL),
        (3, '-infinity', 'infinity', '-infinity', NULL),
        (4, '4713-01-01 00:00:00.5 BC', '4713-01-01 BC', '4713-01-01 BC', NULL),
        (5, '12000-06-01 10:00:00', '12000-06-01 10:00:00+00', '5874897-12-31', NULL),
        (6, '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00', '0001-12-31 BC', NULL),
        (7, NULL, NULL, NULL, NULL)
    ) AS t (id, ts, tstz, d, list)"""
    batches = read("env:WAREHOUSE_URL", sql, batch_rows=3)
    assert [batch.num_rows for batch in batches] == [3, 3, 1]
    table = pa.Table.from_batches(batches)
    assert table.schema.types[1:] == [pa.timestamp("us"), pa.timestamp("us", tz="UTC"), pa.date32(),
                                      pa.list_(pa.timestamp("us"))]  # fmt: skip
    first = table.slice(0, 1).drop_columns(["list"]).to_pylist()[0]
    assert first == {"id": 1, "ts": dt.datetime(2026, 1, 2, 3, 4, 5, 250000),
                     "tstz": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "d": dt.date(2026, 1, 2)}  # fmt: skip
    micros, days = 2**63 - 1, 2**31 - 1  # DuckDB's infinity in Arrow
    expected = {
        "ts": [1767323045250000, micros, -micros, -210863519999500000, 316529373600000000, micros, None],
        "tstz": [1767323045000000, -micros, micros, -210863541208000000, 316529373600000000, micros, None],
        "d": [20455, days, -days, -2440550, 2145042905, -719163, None],
    }
    counts = {name: table[name].cast(pa.int32() if name == "d" else pa.int64()).to_pylist() for name in expected}
    assert counts == expected
    assert table["list"].combine_chunks().flatten().cast(pa.int64()).to_pylist() == [1767323045000000, micros, None]
    with duckdb.connect() as con:  # DuckDB reads them as the same values
        con.register("odd", table)
        found = con.sql("SELECT ts::VARCHAR, isinf(tstz), d::VARCHAR FROM odd WHERE id IN (2, 4)").fetchall()
    assert found == [("infinity", True, "infinity"), ("4713-01-01 (BC) 00:00:00.5", False, "4713-01-01 (BC)")]


# --- memory -----------------------------------------------------------------------------------------------------


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident set size from /proc")
def test_memory_stays_bounded_whatever_the_size_of_the_result() -> None:
    """4 million rows (160 MB as Arrow) read in batches of 50,000: the process grows by a small part of that.

    pa.total_allocated_bytes() cannot show this for DuckDB: its Arrow buffers come from DuckDB's allocator, so it
    reads 0 even for a fully materialized result. The resident set size does see them; it also counts DuckDB's
    threads and the memory its allocator keeps after a free (about 20 MB here, the same for 2 or 6 million rows),
    hence the warm-up and the margin. Materializing the result first grows it by more than the result's size.
    """
    sql = "SELECT i, 'customer-' || i || '@example.com' AS email FROM range(4000000) r(i)"
    peak = rows = result_bytes = 0
    with open_source("duckdb::memory:") as source:
        list(source.batches("SELECT i, 'customer-' || i AS email FROM range(100000) r(i)", 50_000))  # warm-up
        base = _resident_bytes()
        for batch in source.batches(sql, 50_000):
            rows += batch.num_rows
            result_bytes += batch.nbytes
            peak = max(peak, _resident_bytes() - base)
            del batch
    assert rows == 4_000_000
    assert result_bytes > 150_000_000
    assert peak < result_bytes / 4, f"grew by {peak:,} bytes while streaming a {result_bytes:,}-byte result"


def test_sqlalchemy_batches_hold_arrow_memory_for_one_batch_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "big.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t AS WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i < 99999) "
                    "SELECT i, 'customer-' || i || '@example.com' AS email FROM r")  # fmt: skip
    con.close()
    base = pa.total_allocated_bytes()
    peak = result_bytes = 0
    with open_source(f"sqlite:///{path}") as source:
        for batch in source.batches("SELECT i, email FROM t", 1000):
            result_bytes += batch.nbytes
            peak = max(peak, pa.total_allocated_bytes() - base)
            del batch
    assert result_bytes > 3_000_000
    assert peak < result_bytes / 20, f"held {peak:,} bytes of Arrow memory for a {result_bytes:,}-byte result"


def test_the_public_surface_is_small_sorted_and_resolvable() -> None:
    import offramp.core.sources as sources

    assert sources.__all__ == [
        "Source", "SourceQueryError", "SourceReport", "check_read_only_query", "inspect_source", "open_source"
    ]  # fmt: skip
    assert all(hasattr(sources, name) for name in sources.__all__)
    assert issubclass(SourceQueryError, ConfigError)


def test_source_is_the_public_interface() -> None:
    with open_source("duckdb::memory:") as source:
        assert isinstance(source, Source)
    source.close()  # closing twice is harmless


# --- issue 11: masked engine messages, privileged roles, statement_timeout -------------------------------------


def test_a_postgresql_error_quoting_a_value_is_masked_but_names_stay(orders: str) -> None:
    with pytest.raises(SourceQueryError) as error:
        read(orders, "SELECT email::integer AS n\nFROM orders")
    message = str(error.value)
    assert "invalid input syntax for type integer" in message and "@example.com" not in message
    with pytest.raises(SourceQueryError, match='column "nosuch" does not exist'):
        read(orders, "SELECT nosuch FROM orders")
    # Found by review: PostgreSQL's JSON context line quoted the start of the value ("line 1: Zed...").
    with pytest.raises(SourceQueryError) as error:
        read(orders, "SELECT ('Zed' || email)::jsonb AS j FROM orders")
    assert "JSON data" in str(error.value) and "Zed" not in str(error.value)


def test_a_superuser_is_refused_unless_the_options_accept_it(postgres_url: str) -> None:
    with pytest.raises(ConfigError, match="a superuser: a read-only transaction does not bind such a role"):
        read(postgres_url, "SELECT 1 AS x")
    accepted = OrchestrationOptions(accept_privileged_role=True)
    assert rows_of(read(postgres_url, "SELECT 1 AS x", options=accepted)) == [{"x": 1}]


def test_statement_timeout_seconds_bounds_a_postgresql_query(orders: str) -> None:
    quick = OrchestrationOptions(statement_timeout_seconds=1)
    with pytest.raises(OfframpError, match=r"statement_timeout_seconds \(1\)"):
        read(orders, "SELECT pg_sleep(30) AS slept", options=quick)
    assert rows_of(read(orders, "SELECT current_setting('statement_timeout') AS t", options=quick)) == [{"t": "1s"}]
