"""The state store: shipped migrations match the models, init creates it, older schemas upgrade, newer ones refuse.

Everything runs on real SQLite files and, where a test takes the ``store_url`` / ``postgres_url`` fixtures, on a
real PostgreSQL schema.
"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from offramp.core.environment import Environment
from offramp.core.secrets import create_key_file, load_secret_box
from offramp.core.state.models import Base, Credential
from offramp.core.state.store import StateStore, _alembic_config, head_revision

SHIPPED_REVISIONS = ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009"]
HEAD = SHIPPED_REVISIONS[-1]


def revision_of(url: str) -> str | None:
    store = StateStore(url)
    try:
        return store.current_revision()
    finally:
        store.dispose()


def schema_differences(url: str) -> list[object]:
    """What alembic autogenerate would change to make the database match the models (types compared too)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'offramp.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, offramp_home: Path) -> str:
    """A blank database: a SQLite file in the test's home, or a fresh PostgreSQL schema."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    offramp_home.mkdir(parents=True, exist_ok=True)
    return sqlite_url(offramp_home)


@pytest.fixture
def use_store(store_url: str, offramp_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point offramp at ``store_url`` the way a user would: the default SQLite file, or OFFRAMP_DATABASE_URL."""
    if not store_url.startswith("sqlite"):
        monkeypatch.setenv("OFFRAMP_DATABASE_URL", store_url)
    return store_url


def build_store_at_0001(url: str, home: Path) -> None:
    """A store as an offramp that shipped only revision 0001 left it: production workspace, one credential."""
    key_file = home / "secret.key"
    create_key_file(key_file)
    box = load_secret_box(Environment(home=home))
    store = StateStore(url)
    try:
        with store.engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "0001")
        # Plain SQL with the columns 0001 had: today's models know columns that did not exist then.
        secrets = {"token": {"ciphertext": box.encrypt("legacy-token"), "changed_at": "", "source": None}}
        now = datetime.now(UTC)
        with store.engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO workspaces (name, description, created_at) VALUES (:n, :d, :t)"),
                {"n": "production", "d": "Production configuration", "t": now},
            )
            workspace_id = connection.execute(sa.text("SELECT id FROM workspaces")).scalar_one()
            connection.execute(
                sa.text(
                    "INSERT INTO credentials (workspace_id, name, type, settings, secrets, created_at, updated_at) "
                    "VALUES (:w, 'legacy', 'static-token', '{}', :s, :t, :t)"
                ),
                {"w": workspace_id, "s": json.dumps(secrets), "t": now},
            )
        assert store.current_revision() == "0001"
    finally:
        store.dispose()


def test_package_ships_its_revisions_as_one_chain_ending_at_head():
    scripts = ScriptDirectory.from_config(_alembic_config(None))
    assert sorted(script.revision for script in scripts.walk_revisions()) == SHIPPED_REVISIONS
    for previous, revision in zip(SHIPPED_REVISIONS, SHIPPED_REVISIONS[1:], strict=False):
        assert scripts.get_revision(revision).down_revision == previous
    assert head_revision() == HEAD


def test_upgrading_a_blank_database_to_head_leaves_no_difference_from_the_models(store_url: str):
    store = StateStore(store_url)
    try:
        assert store.current_revision() is None
        assert store.upgrade() == (None, HEAD)
        assert store.current_revision() == HEAD
    finally:
        store.dispose()
    assert schema_differences(store_url) == []


def test_each_revision_upgrades_on_top_of_the_previous_one(store_url: str):
    store = StateStore(store_url)
    try:
        with store.engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "0001")
        assert store.current_revision() == "0001"
        tables = set(sa.inspect(store.engine).get_table_names())
        assert {"workspaces", "credentials", "destinations", "orchestrations", "audit_events"} <= tables
        assert "runs" not in tables
        assert store.upgrade() == ("0001", HEAD)
    finally:
        store.dispose()
    assert schema_differences(store_url) == []


def test_init_creates_the_sqlite_store_in_home_with_the_production_workspace(cli, offramp_home: Path):
    result = cli.ok("init")
    assert HEAD in result.stdout
    assert (offramp_home / "offramp.db").is_file()
    assert stat.S_IMODE((offramp_home / "secret.key").stat().st_mode) == 0o600
    assert revision_of(sqlite_url(offramp_home)) == head_revision()
    assert schema_differences(sqlite_url(offramp_home)) == []

    workspaces = json.loads(cli.ok("workspaces", "list", "--json").stdout)
    assert [w["name"] for w in workspaces] == ["production"]

    # A second init changes nothing and says the store is ready.
    again = cli.ok("init")
    assert "ready" in again.stdout
    assert [w["name"] for w in json.loads(cli.ok("workspaces", "list", "--json").stdout)] == ["production"]


@pytest.mark.postgres
def test_init_creates_the_store_in_postgresql_given_by_offramp_database_url(
    cli, offramp_home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OFFRAMP_DATABASE_URL", postgres_url)
    cli.ok("init")
    assert not (offramp_home / "offramp.db").exists(), "with OFFRAMP_DATABASE_URL no SQLite file is made"
    assert revision_of(postgres_url) == head_revision()
    assert schema_differences(postgres_url) == []
    workspaces = json.loads(cli.ok("workspaces", "list", "--json").stdout)
    assert [w["name"] for w in workspaces] == ["production"]


@pytest.mark.postgres
def test_the_cli_works_against_postgresql(cli, offramp_home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OFFRAMP_DATABASE_URL", postgres_url)
    monkeypatch.setenv("MY_SECRET_VAR", "S3cr3t-app-secret-XYZ")
    cli.ok("init")
    cli.ok("credentials", "add", "tt", "--type", "tiktok-offline-events", "--set", "app_id=123",
           "--set", "app_secret=env:MY_SECRET_VAR")  # fmt: skip
    cli.ok("credentials", "add", "api", "--type", "static-token", "--set", "token=tok-S3cr3t-QRS")

    listed = json.loads(cli.ok("credentials", "list", "--json").stdout)
    assert [(c["name"], c["type"]) for c in listed] == [("api", "static-token"), ("tt", "tiktok-offline-events")]
    assert "tt" in cli.ok("credentials", "list").stdout

    shown = json.loads(cli.ok("credentials", "show", "tt", "--json").stdout)
    assert shown["workspace"] == "production"
    assert shown["settings"]["app_id"] == "123"
    assert shown["secrets"]["app_secret"].startswith("set")
    assert shown["secrets"]["refresh_token"] == "not set"
    assert "app_id: 123" in cli.ok("credentials", "show", "tt").stdout

    # The rows really are in PostgreSQL, not in a SQLite file next to the key.
    assert not (offramp_home / "offramp.db").exists()
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            names = connection.execute(sa.select(Credential.name).order_by(Credential.name)).scalars().all()
    finally:
        engine.dispose()
    assert names == ["api", "tt"]


def test_a_command_before_init_says_to_run_offramp_init(cli, offramp_home: Path):
    result = cli("workspaces", "list")
    result.one_line_error("offramp init")
    assert not (offramp_home / "offramp.db").exists(), "a read-only command must not create a store"


@pytest.mark.postgres
def test_a_command_on_a_blank_postgresql_database_says_to_run_offramp_init(
    cli, postgres_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OFFRAMP_DATABASE_URL", postgres_url)
    cli("credentials", "list").one_line_error("offramp init")
    assert revision_of(postgres_url) is None


def test_an_older_schema_is_upgraded_by_the_next_command(cli, use_store: str, offramp_home: Path):
    build_store_at_0001(use_store, offramp_home)

    result = cli.ok("workspaces", "list", "--json")
    assert [w["name"] for w in json.loads(result.stdout)] == ["production"]
    assert revision_of(use_store) == head_revision()
    assert schema_differences(use_store) == []

    # What the old schema held is still there and still decrypts.
    listed = json.loads(cli.ok("credentials", "list", "--json").stdout)
    assert [c["name"] for c in listed] == ["legacy"]
    assert json.loads(cli.ok("credentials", "show", "legacy", "--json").stdout)["secrets"]["token"].startswith("set")


def test_with_auto_upgrade_off_an_older_schema_says_exactly_what_to_run(
    cli, use_store: str, offramp_home: Path, monkeypatch: pytest.MonkeyPatch
):
    build_store_at_0001(use_store, offramp_home)
    monkeypatch.setenv("OFFRAMP_AUTO_UPGRADE", "0")

    line = cli("workspaces", "list").one_line_error("offramp init")
    assert "0001" in line and HEAD in line
    assert revision_of(use_store) == "0001", "nothing may be upgraded when OFFRAMP_AUTO_UPGRADE=0"

    # Doing what the message says works, keeps the data, and adds no second production workspace.
    upgraded = cli.ok("init")
    assert "0001" in upgraded.stdout and HEAD in upgraded.stdout
    assert revision_of(use_store) == head_revision()
    assert [w["name"] for w in json.loads(cli.ok("workspaces", "list", "--json").stdout)] == ["production"]
    assert [c["name"] for c in json.loads(cli.ok("credentials", "list", "--json").stdout)] == ["legacy"]


@pytest.mark.parametrize("command_line", [("workspaces", "list"), ("credentials", "list"), ("init",)])
def test_a_store_written_by_a_newer_offramp_gives_a_one_line_error(
    cli, use_store: str, offramp_home: Path, command_line: tuple[str, ...]
):
    cli.ok("init")
    engine = sa.create_engine(use_store)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff9999'"))
    finally:
        engine.dispose()

    line = cli(*command_line).one_line_error("newer offramp")
    assert "ffff9999" in line
    assert "unexpected" not in line
    assert revision_of(use_store) == "ffff9999", "a newer schema must be left alone"


def test_upgrading_to_0007_keeps_every_object_and_its_references_and_ids_are_never_given_again(
    cli, use_store: str, offramp_home: Path
):
    """0007 rebuilds the configuration tables on SQLite (AUTOINCREMENT): what they held, and what refers to it (a
    group's members, a run), must come through; afterwards a deleted object's id is never a new object's."""
    build_store_at_0001(use_store, offramp_home)
    store = StateStore(use_store)
    now = datetime.now(UTC)
    try:
        with store.engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "0006")
        with store.engine.begin() as connection:
            run = connection.execute
            ws = run(sa.text("SELECT id FROM workspaces")).scalar_one()
            cred = run(sa.text("SELECT id FROM credentials")).scalar_one()
            run(
                sa.text(
                    "INSERT INTO destinations (workspace_id, name, type, credential_id, settings, secrets, created_at,"
                    " updated_at) VALUES (:w, 'sink', 'dummy', :c, '{}', '{}', :t, :t)"
                ),
                {"w": ws, "c": cred, "t": now},
            )
            dest = run(sa.text("SELECT id FROM destinations")).scalar_one()
            for name in ("first", "second"):
                run(
                    sa.text(
                        "INSERT INTO orchestrations (workspace_id, name, destination_id, source, sql, options,"
                        " created_at, updated_at) VALUES (:w, :n, :d, 'duckdb::memory:', 'SELECT 1 AS event_id',"
                        " '{}', :t, :t)"
                    ),
                    {"w": ws, "n": name, "d": dest, "t": now},
                )
            second = run(sa.text("SELECT id FROM orchestrations WHERE name = 'second'")).scalar_one()
            run(
                sa.text(
                    "INSERT INTO orchestration_groups (workspace_id, name, created_at, updated_at)"
                    " VALUES (:w, 'nightly', :t, :t)"
                ),
                {"w": ws, "t": now},
            )
            group = run(sa.text("SELECT id FROM orchestration_groups")).scalar_one()
            run(
                sa.text("INSERT INTO orchestration_group_members VALUES (:g, :o, 0)"),
                {"g": group, "o": second},
            )
    finally:
        store.dispose()

    listed = json.loads(cli.ok("orchestrations", "list", "--json").stdout)  # upgrades to head first
    assert revision_of(use_store) == head_revision()
    assert sorted(o["name"] for o in listed) == ["first", "second"]
    exported = cli.ok("export").stdout
    assert "nightly" in exported and "- second" in exported
    if use_store.startswith("sqlite"):
        engine = sa.create_engine(use_store)
        with engine.connect() as connection:
            assert connection.execute(sa.text("PRAGMA foreign_key_check")).all() == []
        engine.dispose()

    # The newest orchestration deleted, a new one must not take its id (its identity in sandboxes and promotions).
    cli.ok("orchestrations", "delete", "first")
    cli.ok("orchestrations", "add", "third", "--destination", "sink", "--sql", "SELECT 1 AS event_id")
    engine = sa.create_engine(use_store)
    with engine.connect() as connection:
        ids = dict(connection.execute(sa.text("SELECT name, id FROM orchestrations")).all())
    engine.dispose()
    assert ids["third"] > max(ids["second"], second)
