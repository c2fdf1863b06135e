"""Issue 11, item 7, through the CLI over a real PostgreSQL warehouse: a read-only transaction binds only its own
session, so a query does not run as a superuser or a role that may write or run server files; `sources check` warns
about a role that may change tables; a statement_timeout bounds every statement.

Each test makes its own warehouse database with its own roles (unique names: other tests run at the same time).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import Emulator, set_up
from sqlalchemy.engine import make_url

from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

POSTGRES_ENV = "OFFRAMP_TEST_POSTGRES_URL"
ROWS = "SELECT 'O-' || i AS event_id, 'Purchase' AS event, now() AS timestamp, 'u' || i || '@example.com' AS email"


@dataclass
class Warehouse:
    admin: str  # the superuser: sets up, and checks what an attack changed
    name: str
    reader: str  # SELECT on orders, nothing else
    writer: str  # may also INSERT into orders
    files: str  # a member of pg_write_server_files
    large_object: int  # a large object `files` may read

    def url(self, role: str) -> str:
        return make_url(self.admin).set(username=role).render_as_string(hide_password=False)

    def count(self) -> int:
        engine = sa.create_engine(self.admin)
        try:
            with engine.connect() as connection:
                return int(connection.exec_driver_sql("SELECT count(*) FROM orders").scalar_one())
        finally:
            engine.dispose()


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    tag = uuid.uuid4().hex[:10]
    name, roles = f"offramp_wh_{tag}", [f"offramp_{kind}_{tag}" for kind in ("reader", "writer", "files")]
    server = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        for role in roles:
            connection.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
        connection.exec_driver_sql(f'GRANT pg_write_server_files TO "{roles[2]}"')
    admin = make_url(base).set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(admin)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE EXTENSION dblink")
        connection.exec_driver_sql(f"CREATE TABLE orders AS {ROWS} FROM generate_series(1, 20) AS i")
        connection.exec_driver_sql(f"GRANT SELECT ON orders TO {', '.join(roles)}")
        connection.exec_driver_sql(f'GRANT INSERT ON orders TO "{roles[1]}"')
        large_object = int(connection.exec_driver_sql("SELECT lo_from_bytea(0, 'stolen')").scalar_one())
        connection.exec_driver_sql(f'GRANT SELECT ON LARGE OBJECT {large_object} TO "{roles[2]}"')
        # lo_export is for superusers unless granted: as a DBA would, to let a role export files.
        connection.exec_driver_sql(f'GRANT EXECUTE ON FUNCTION lo_export(oid, text) TO "{roles[2]}"')
    engine.dispose()
    try:
        yield Warehouse(admin, name, *roles, large_object)
    finally:
        with server.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            for role in roles:
                connection.exec_driver_sql(f'DROP ROLE "{role}"')
        server.dispose()


@pytest.fixture
def destination(cli: Any, initialized: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credential `tt`, destination `stores` (and orchestration `orders`, unused) on the emulator."""
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    set_up(cli, emulator, "duckdb::memory:", "SELECT 1 AS x")


def add(cli: Any, name: str, sql: str) -> None:
    cli.ok("orchestrations", "add", name, "--destination", "stores", "--source", "env:WAREHOUSE_URL", "--sql", sql)


def test_a_superuser_source_is_refused_before_dblink_can_delete_through_a_second_session(
    cli: Any, destination: None, warehouse: Warehouse, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", warehouse.admin)
    server = make_url(warehouse.admin)
    target = f"dbname={warehouse.name} host={server.host} port={server.port} user={server.username}"
    add(cli, "wipe", f"SELECT dblink_exec('{target}', 'DELETE FROM orders') AS event_id, 'Purchase' AS event, "
                     "now() AS timestamp, 'a@example.com' AS email")  # fmt: skip

    result = cli("run", "wipe", "--json")

    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed" and summary["rows"]["queried"] == 0
    assert f"role '{server.username}', a superuser" in summary["error"]
    assert "read-only role" in summary["hint"] and "accept_privileged_role" in summary["hint"]
    assert warehouse.count() == 20  # nothing deleted
    assert emulator.events() == []


def test_a_member_of_pg_write_server_files_is_refused_before_lo_export_writes_a_file(
    cli: Any, destination: None, warehouse: Warehouse, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = Path(f"/tmp/offramp-lo-export-{uuid.uuid4().hex}")  # on the server: the same machine in these tests
    monkeypatch.setenv("WAREHOUSE_URL", warehouse.url(warehouse.files))
    add(cli, "export", f"SELECT lo_export({warehouse.large_object}, '{written}')::text AS event_id, "
                       "'Purchase' AS event, now() AS timestamp, 'a@example.com' AS email")  # fmt: skip

    try:
        result = cli("run", "export", "--json")
        exported = written.exists()
    finally:
        written.unlink(missing_ok=True)

    assert result.exit_code == 1, result.output
    assert "a member of pg_write_server_files" in json.loads(result.stdout)["error"]
    assert not exported
    assert emulator.events() == []


def test_a_read_only_role_runs_and_every_statement_has_a_statement_timeout(
    cli: Any, destination: None, warehouse: Warehouse, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", warehouse.url(warehouse.reader))
    add(cli, "sales", "SELECT * FROM orders ORDER BY event_id")
    # No identifiers: rejected, and `runs show --rejects` lists the event_id, which holds the session's setting.
    add(cli, "timeout", "SELECT current_setting('statement_timeout') AS event_id, 'Purchase' AS event, "
                        "now() AS timestamp")  # fmt: skip

    sent = json.loads(cli.ok("run", "sales", "--json").stdout)
    checking = cli("run", "timeout", "--json")
    checked = json.loads(checking.stdout)
    assert checking.exit_code == 1 and checked["status"] == "failed"  # every row rejected: the guardrail fails it

    assert sent["status"] == "succeeded" and sent["rows"]["sent"] == 20
    assert len(set(emulator.accepted_ids())) == 20
    rejects = json.loads(cli.ok("runs", "show", checked["id"], "--rejects", "--format", "json").stdout)
    assert [row["event_id"] for row in rejects] == ["1h"]  # the default: statement_timeout_seconds 3600


def test_sources_check_warns_when_the_role_may_change_a_table(
    cli: Any, destination: None, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", warehouse.url(warehouse.writer))
    add(cli, "sales", "SELECT * FROM orders")
    monkeypatch.setenv("READER_URL", warehouse.url(warehouse.reader))

    writer = cli("sources", "check", "sales")
    reader = cli("sources", "check", "env:READER_URL")
    superuser = cli("sources", "check", warehouse.admin)

    assert writer.exit_code == 0, writer.output
    assert f"connects as PostgreSQL role '{warehouse.writer}'" in writer.stdout
    assert f"offramp: warning: role '{warehouse.writer}' may change 1 table(s) (public.orders)" in writer.stderr
    assert reader.exit_code == 0 and reader.stderr == "" and "No warnings." in reader.stdout
    superuser.one_line_error("a superuser: runs are refused", "read-only role")


def test_a_member_of_a_superuser_role_is_refused_before_it_sets_that_role_and_deletes(
    cli: Any, destination: None, warehouse: Warehouse, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_url(warehouse.admin)
    superuser = str(server.username)
    member = f"offramp_member_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(warehouse.admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE ROLE "{member}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
        connection.exec_driver_sql(f'GRANT "{superuser}" TO "{member}"')  # not a superuser itself: a member of one
    try:
        monkeypatch.setenv("WAREHOUSE_URL", warehouse.url(member))
        target = f"dbname={warehouse.name} host={server.host} port={server.port} user={superuser}"
        add(cli, "wipe", f"SELECT set_config('role', '{superuser}', false) || dblink_exec('{target}', "
                         "'DELETE FROM orders') AS event_id, 'Purchase' AS event, now() AS timestamp, "
                         "'a@example.com' AS email")  # fmt: skip

        result = cli("run", "wipe", "--json")
        checked = cli("sources", "check", "wipe")
    finally:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'DROP ROLE "{member}"')
        engine.dispose()

    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed" and summary["rows"]["queried"] == 0
    assert f"role '{member}', a member of superuser role '{superuser}'" in summary["error"]
    assert "accept_privileged_role" in summary["hint"]
    assert warehouse.count() == 20  # nothing deleted
    assert emulator.events() == []
    checked.one_line_error(f"a member of superuser role '{superuser}'", "runs are refused", "read-only role")


def test_a_query_that_switches_statement_timeout_off_is_still_bounded(
    cli: Any, destination: None, warehouse: Warehouse, emulator: Emulator, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.setenv("WAREHOUSE_URL", warehouse.url(warehouse.reader))
    # Row 1 (in the first FETCH) switches the timeout off for the session; row 60001, in a later FETCH, sleeps.
    add(cli, "slow", "SELECT 'e'||i AS event_id, 'Purchase' AS event, now() AS timestamp, 'a@b.com' AS email, "
                     "CASE WHEN i=1 THEN set_config('statement_timeout','0',false) "
                     "WHEN i=60001 THEN pg_sleep(5)::text END AS x FROM generate_series(1,60010) i")  # fmt: skip
    document = yaml.safe_load(cli.ok("export").stdout)
    for orchestration in document["orchestrations"]:
        orchestration["options"]["statement_timeout_seconds"] = 2
    exported = tmp_path / "slow.yaml"
    exported.write_text(yaml.safe_dump(document))
    cli.ok("apply", "-f", str(exported))

    result = cli("run", "slow", "--json")

    assert result.exit_code == 1, result.output
    assert result.stdout, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed"
    assert "statement_timeout_seconds (2)" in summary["error"] + summary["hint"]
