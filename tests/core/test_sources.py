"""Sources: DuckDB files (read-only) and in-memory DuckDB over files, SQLAlchemy URLs; one read query only."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from offramp.core.errors import ConfigError
from offramp.core.sources import SourceQueryError, check_read_only_query, open_source


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE t AS SELECT i AS id, TIMESTAMP '2026-11-19 10:00:00' + INTERVAL (i) SECOND AS ts, "
            "DATE '2026-11-19' AS d, TIMESTAMPTZ '2026-11-19 10:00:00+00' AS tz, ['a', 'b'] AS emails "
            "FROM range(10007) r(i)"
        )
    return path


def read(reference: str, sql: str, batch_rows: int = 1000, limit: int | None = None) -> list[pa.RecordBatch]:
    with open_source(reference) as source:
        return list(source.batches(sql, batch_rows, limit))


def test_a_duckdb_file_streams_every_row_in_bounded_batches_with_its_types(warehouse: Path) -> None:
    batches = read(f"duckdb:{warehouse}", "SELECT * FROM t ORDER BY id")
    assert sum(batch.num_rows for batch in batches) == 10007
    assert max(batch.num_rows for batch in batches) <= 1000
    schema = batches[0].schema
    assert pa.types.is_timestamp(schema.field("ts").type) and schema.field("ts").type.tz is None
    assert pa.types.is_date(schema.field("d").type)
    assert schema.field("tz").type.tz is not None
    assert pa.types.is_list(schema.field("emails").type)


def test_the_file_is_opened_read_only(warehouse: Path) -> None:
    before = warehouse.read_bytes()
    with pytest.raises(ConfigError):
        read(f"duckdb:{warehouse}", "SELECT * FROM t; DELETE FROM t")
    with open_source(f"duckdb:{warehouse}") as source, pytest.raises(SourceQueryError):
        # Even a write that slipped past the check would be refused by the read-only connection.
        list(source._stream("CREATE TABLE x AS SELECT 1", 10))
    assert warehouse.read_bytes() == before


def test_limit_stops_reading(warehouse: Path) -> None:
    batches = read(f"duckdb:{warehouse}", "SELECT id FROM t", batch_rows=100, limit=250)
    assert sum(batch.num_rows for batch in batches) == 250


def test_in_memory_duckdb_reads_parquet_and_csv(tmp_path: Path) -> None:
    pq.write_table(pa.table({"email": ["a@b.c", "d@e.f"]}), tmp_path / "o.parquet")
    (tmp_path / "o.csv").write_text("email\nx@y.z\n")
    sql = f"SELECT email FROM read_parquet('{tmp_path}/o.parquet') UNION ALL SELECT email FROM '{tmp_path}/o.csv'"
    rows = [row for batch in read("duckdb::memory:", sql) for row in batch.to_pylist()]
    assert sorted(row["email"] for row in rows) == ["a@b.c", "d@e.f", "x@y.z"]


def test_env_reference(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAREHOUSE", f"duckdb:{warehouse}")
    assert sum(b.num_rows for b in read("env:WAREHOUSE", "SELECT 1 AS x")) == 1
    with pytest.raises(ConfigError, match="NOWHERE is not set"):
        open_source("env:NOWHERE")


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        open_source(f"duckdb:{tmp_path}/nope.duckdb")


@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM t", "INSERT INTO t VALUES (1)", "DROP TABLE t", "CREATE TABLE x AS SELECT 1", "COPY t TO 'x.csv'",
     "ATTACH 'x.db'", "PRAGMA version", "SET threads = 1", "INSTALL httpfs", "SELECT 1; SELECT 2",
     "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "  "],
)  # fmt: skip
def test_only_one_read_query_is_accepted(sql: str) -> None:
    with pytest.raises(ConfigError):
        check_read_only_query(sql)


@pytest.mark.parametrize(
    "sql",
    ["SELECT 'DROP TABLE t; --' AS note", "-- DELETE everything\nSELECT 1;", "WITH a AS (SELECT 1) SELECT * FROM a",
     "/* INSERT */ SELECT \"delete\" FROM t", "FROM t SELECT id", "VALUES (1), (2)"],
)  # fmt: skip
def test_keywords_in_strings_and_comments_do_not_trip_the_check(sql: str) -> None:
    assert check_read_only_query(sql) == sql


def test_a_sql_error_quotes_the_engines_message_and_line(warehouse: Path) -> None:
    with pytest.raises(SourceQueryError) as error:
        read(f"duckdb:{warehouse}", "SELECT id,\n       nosuch\nFROM t")
    assert "nosuch" in str(error.value) and "line 2" in str(error.value)


def test_postgresql_streams_with_types_and_reports_errors_by_line(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE o AS SELECT i AS id, 'u' || i AS email, ARRAY['a', 'b'] AS tags, "
            "TIMESTAMPTZ '2026-11-19 10:00:00+00' AS at, CASE WHEN i > 40 THEN 1.5::numeric END AS price "
            "FROM generate_series(1, 50) AS i"
        )
    engine.dispose()
    batches = read(postgres_url, "SELECT * FROM o ORDER BY id", batch_rows=20)
    assert [batch.num_rows for batch in batches] == [20, 20, 10]
    rows = [row for batch in batches for row in batch.to_pylist()]
    assert rows[0]["tags"] == ["a", "b"] and rows[-1]["price"] is not None and rows[0]["price"] is None
    with pytest.raises(SourceQueryError) as error:
        read(postgres_url, "SELECT id,\n  nosuch\nFROM o")
    assert "nosuch" in str(error.value) and "line 2" in str(error.value)


def test_a_database_that_cannot_be_reached_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="cannot connect") as error:
        read("postgresql+psycopg://reader:s3cret@127.0.0.1:1/x", "SELECT 1")
    assert "s3cret" not in str(error.value)


def test_memory_stays_bounded_whatever_the_size_of_the_result() -> None:
    peak = 0
    rows = 0
    with open_source("duckdb::memory:") as source:
        for batch in source.batches("SELECT i, 'customer-' || i AS email FROM range(2000000) r(i)", 50_000):
            rows += batch.num_rows
            peak = max(peak, pa.total_allocated_bytes())
            del batch
    assert rows == 2_000_000
    full = 2_000_000 * (8 + 16)  # the whole result as Arrow: ids plus short strings
    assert peak < full / 4, f"peak Arrow memory {peak} is not bounded (the full result is about {full})"
