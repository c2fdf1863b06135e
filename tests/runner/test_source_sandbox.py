"""Issue 11, items 5, 6, 8 and 16, through the CLI: a DuckDB source's SQL reads only its database file and the
paths the orchestration allows; passwords in URLs are refused and never printed; a SQLite URI source never creates
a database; an engine's message that quotes a source row is masked unless --debug."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Emulator, set_up

from offramp.core.state.store import StateStore
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

EVENT = "'Purchase' AS event, now() AS timestamp, 'someone@example.com' AS email"


@pytest.fixture
def stores(cli: Any, initialized: Path, emulator: Emulator, orders_file: tuple[Path, int],
           monkeypatch: pytest.MonkeyPatch) -> Path:  # fmt: skip
    """Credential `tt`, destination `stores`, orchestration `orders` over the orders file; returns that file."""
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    set_up(cli, emulator, f"duckdb:{orders_file[0]}")
    return orders_file[0]


def failed_run(cli: Any, name: str, *options: str) -> dict[str, Any]:
    result = cli("run", name, "--json", *options)
    assert result.exit_code == 1, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["status"] == "failed" and summary["rows"]["queried"] == 0
    return summary


# --- item 6: DuckDB sources read only what the orchestration names ---------------------------------------------


@pytest.mark.parametrize(
    ("reading", "refused"),
    [
        pytest.param("read_text('{home}/secret.key')", "{home}/secret.key", id="the-key-file"),
        pytest.param("read_blob('{home}/offramp.db')", "{home}/offramp.db", id="the-state-store"),
        pytest.param("read_text('/proc/self/environ')", "/proc/self/environ", id="proc-environ"),
        pytest.param("read_text('{home}/../home/secret.key')", "{home}/../home/secret.key", id="dot-dot"),
        pytest.param("glob('{home}/*')", "{home}/*", id="a-glob-of-the-home"),
    ],
)
def test_a_duckdb_query_cannot_read_the_key_the_store_or_proc(
    cli: Any, stores: Path, emulator: Emulator, offramp_home: Path, reading: str, refused: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("OFFRAMP_SECRET_MARKER", "marker-" + "q" * 20)  # in /proc/self/environ
    table = reading.format(home=offramp_home)
    column = "content" if "read_" in reading else "file"
    sql = f"SELECT {column}::VARCHAR AS event_id, {EVENT} FROM {table}"
    cli.ok("orchestrations", "add", "steal", "--destination", "stores", "--source", f"duckdb:{stores}", "--sql", sql)
    key = (offramp_home / "secret.key").read_text().strip()

    summary = failed_run(cli, "steal")

    assert f"reads {refused.format(home=offramp_home)}" in summary["error"]
    assert "allowed_paths" in summary["error"]
    assert emulator.events() == []
    everything = json.dumps(summary) + cli.ok("runs", "show", summary["id"], "--json").stdout
    assert key not in everything and "marker-qqqq" not in everything


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        pytest.param("read_csv('http://127.0.0.1:9/orders.csv')", "DuckDB sources read no network URL", id="http"),
        pytest.param("sqlite_scan('/tmp/x.db', 't')", "sqlite_scanner extension: DuckDB sources install and load no",
                     id="an-extension"),
    ],
)  # fmt: skip
def test_a_duckdb_query_reaches_no_network_and_loads_no_extension(
    cli: Any, stores: Path, emulator: Emulator, reading: str, expected: str
) -> None:
    sql = f"SELECT 1::VARCHAR AS event_id, {EVENT} FROM {reading}"
    cli.ok("orchestrations", "add", "reach", "--destination", "stores", "--source", f"duckdb:{stores}", "--sql", sql)
    summary = failed_run(cli, "reach")
    assert expected in summary["error"]
    assert emulator.events() == []


def write_csv(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "orders.csv"
    path.write_text(text)
    return path


def test_an_in_memory_source_reads_files_only_in_the_paths_the_orchestration_allows(
    cli: Any, stores: Path, emulator: Emulator, tmp_path: Path
) -> None:
    exports = write_csv(tmp_path / "exports", "event_id,email\nA-1,a@example.com\nA-2,b@example.com\n").parent
    elsewhere = write_csv(tmp_path / "elsewhere", "event_id,email\nB-1,c@example.com\n")
    sql = "SELECT event_id, 'Purchase' AS event, now() AS timestamp, email FROM read_csv('{}')"
    cli.ok("orchestrations", "add", "csv", "--destination", "stores", "--allow-path", "exports",  # relative: cwd
           "--sql", sql.format(exports / "orders.csv"))  # fmt: skip
    shown = json.loads(cli.ok("orchestrations", "show", "csv", "--json").stdout)
    assert shown["options"]["allowed_paths"] == [str(exports)]
    cli.ok("orchestrations", "add", "other", "--destination", "stores", "--allow-path", str(exports),
           "--sql", sql.format(elsewhere))  # fmt: skip

    sent = json.loads(cli.ok("run", "csv", "--json").stdout)
    refused = failed_run(cli, "other")

    assert sent["status"] == "succeeded" and sent["rows"]["sent"] == 2
    assert sorted(emulator.accepted_ids()) == ["A-1", "A-2"]
    assert f"reads {elsewhere}" in refused["error"] and "--allow-path" in refused["error"]


@pytest.mark.parametrize(
    "allowed",
    [
        pytest.param("{home}", id="the-home"),
        pytest.param("{home}/..", id="a-directory-holding-the-home"),
        pytest.param("{home}/secret.key", id="the-key-file"),
        pytest.param("/proc/self", id="proc"),
        pytest.param("/", id="the-root"),
    ],
)
def test_allowed_paths_never_include_offramps_own_files(
    cli: Any, stores: Path, offramp_home: Path, allowed: str
) -> None:
    path = allowed.format(home=offramp_home)
    result = cli("orchestrations", "add", "wide", "--destination", "stores", "--allow-path", path, "--sql", "SELECT 1")
    result.one_line_error("allowed_paths:", "which a DuckDB source may never read", "--allow-path")
    assert "wide" not in cli.ok("orchestrations", "list", "--json").stdout


def test_a_symbolic_link_to_offramps_home_is_no_way_around(cli: Any, stores: Path, offramp_home: Path,
                                                            tmp_path: Path) -> None:  # fmt: skip
    """DuckDB follows links: a link to the home is refused like the home."""
    link = tmp_path / "innocent"
    link.symlink_to(offramp_home)
    result = cli(
        "orchestrations", "add", "wide", "--destination", "stores", "--allow-path", str(link), "--sql", "SELECT 1"
    )
    result.one_line_error("allowed_paths:", "offramp's home")


@pytest.mark.parametrize(
    ("allowed", "what"),
    [
        pytest.param("{user}", "the user's home directory", id="the-user-home"),
        pytest.param("{user}/..", "holds", id="a-directory-holding-the-user-home"),
        pytest.param("{user}/.pgpass", "libpq's password file", id="pgpass"),
        pytest.param("{user}/.pg_service.conf", "libpq's service file", id="pg-service"),
        pytest.param("{user}/.ssh", "SSH keys", id="ssh"),
        pytest.param("{user}/.ssh/id_ed25519", "SSH keys", id="an-ssh-key"),
        pytest.param("{elsewhere}", "libpq's password file (PGPASSFILE", id="a-directory-holding-PGPASSFILE"),
        pytest.param("{elsewhere}/services.conf", "libpq's service file (PGSERVICEFILE", id="PGSERVICEFILE"),
    ],
)
def test_allowed_paths_never_include_libpq_password_files_ssh_keys_or_the_user_home(
    cli: Any, stores: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allowed: str, what: str
) -> None:
    """docs/operations.md tells users to keep warehouse passwords in ~/.pgpass: --allow-path $HOME would read it."""
    user, elsewhere = tmp_path / "user", tmp_path / "elsewhere"
    (user / ".ssh").mkdir(parents=True)
    elsewhere.mkdir()
    (user / ".pgpass").write_text("*:*:*:reader:hunter2\n")
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.setenv("PGPASSFILE", str(elsewhere / "pgpass"))
    monkeypatch.setenv("PGSERVICEFILE", str(elsewhere / "services.conf"))
    if "{elsewhere}" not in allowed:
        monkeypatch.delenv("PGPASSFILE" if "pgpass" in allowed else "PGSERVICEFILE")
    path = allowed.format(user=user, elsewhere=elsewhere)

    result = cli("orchestrations", "add", "wide", "--destination", "stores", "--allow-path", path, "--sql", "SELECT 1")

    result.one_line_error("allowed_paths:", what, "which a DuckDB source may never read", "--allow-path")
    assert "wide" not in cli.ok("orchestrations", "list", "--json").stdout
    # What lies in the home, away from those files, is data the user may name.
    cli.ok("orchestrations", "add", "fine", "--destination", "stores", "--allow-path", str(user / "exports"),
           "--sql", "SELECT 1")  # fmt: skip


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("sqlite:///{home}/offramp.db", id="sqlite-the-store"),
        pytest.param("sqlite:///file:{home}/offramp.db?uri=true", id="sqlite-uri-the-store"),
        pytest.param("sqlite:///{link}", id="sqlite-a-link-to-the-store"),
        pytest.param("duckdb:{home}/offramp.db", id="duckdb-the-store"),
        pytest.param("duckdb:{home}/secret.key", id="duckdb-the-key"),
    ],
)
def test_a_sqlite_or_duckdb_source_cannot_be_the_state_store(
    cli: Any, stores: Path, emulator: Emulator, offramp_home: Path, tmp_path: Path, source: str
) -> None:
    """The store's rows (credentials' ciphertext among them) would go to TikTok as event ids."""
    link = tmp_path / "orders.db"
    link.symlink_to(offramp_home / "offramp.db")
    reference = source.format(home=offramp_home, link=link)
    # SQLite's own spelling of now(): on SQLite, this query would send the store's table names.
    sql = f"SELECT name AS event_id, {EVENT} FROM sqlite_master".replace("now()", "datetime('now')")
    cli.ok("orchestrations", "add", "steal", "--destination", "stores", "--source", reference, "--sql", sql)

    summary = failed_run(cli, "steal")
    checked = cli("sources", "check", "steal")

    assert "database file" in summary["error"] and "which a source may never read" in summary["error"]
    assert "the state store" in summary["error"] or "the key file" in summary["error"]
    assert emulator.events() == []
    checked.one_line_error("database file", "which a source may never read")


# --- item 16: engine messages that quote a source row ---------------------------------------------------------


def test_an_engine_error_quoting_a_csv_row_is_masked_unless_debug(
    cli: Any, stores: Path, emulator: Emulator, tmp_path: Path, offramp_home: Path
) -> None:
    csv = write_csv(tmp_path / "exports", "event_id,email,phone,n\nA-1,alice@example.com,+15551234567,5\n"
                    "A-2,bob.private@example.com,+15559876543,abc\n")  # fmt: skip
    sql = (
        "SELECT event_id, 'Purchase' AS event, now() AS timestamp, email, phone FROM read_csv("
        f"'{csv}', columns={{'event_id': 'VARCHAR', 'email': 'VARCHAR', 'phone': 'VARCHAR', 'n': 'INTEGER'}}) "
        "WHERE n > 0"
    )
    cli.ok("orchestrations", "add", "csv", "--destination", "stores", "--allow-path", str(csv.parent), "--sql", sql)

    plain = cli("run", "csv")
    debug = cli("--debug", "run", "csv")

    assert plain.exit_code == 1 and debug.exit_code == 1
    assert "CSV Error on Line" in plain.output and "Original Line: ***" in plain.output
    for value in ("bob.private@example.com", "5559876543", "abc"):
        assert value not in plain.output, plain.output
    assert "bob.private@example.com" in debug.stderr  # the engine's own words, under --debug only
    store = b"".join(path.read_bytes() for path in offramp_home.glob("offramp.db*"))
    assert b"bob.private" not in store
    assert emulator.events() == []


# --- item 8: a SQLite URI source with a missing file -------------------------------------------------------------


@pytest.mark.parametrize("query", ["uri=true", "mode=rwc&uri=true"])
def test_a_sqlite_uri_source_with_a_missing_file_is_an_error_and_creates_nothing(
    cli: Any, stores: Path, tmp_path: Path, query: str
) -> None:
    missing = tmp_path / "data" / "missing.db"
    missing.parent.mkdir()
    cli.ok("orchestrations", "add", "lite", "--destination", "stores", "--source",
           f"sqlite:///file:{missing}?{query}", "--sql", "SELECT * FROM orders")  # fmt: skip

    summary = failed_run(cli, "lite")

    assert f"SQLite file {missing} does not exist" in summary["error"]
    assert list(missing.parent.iterdir()) == []


# --- item 5: passwords in URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://reader:hunter2-pw@db.internal/analytics",
        "postgresql+psycopg://reader@db.internal/analytics?password=hunter2-pw",
        "postgresql+psycopg://reader@db.internal/analytics?sslmode=require&sslpassword=hunter2-pw",
    ],
)
def test_a_source_url_with_a_password_is_refused_wherever_the_password_is(
    cli: Any, stores: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = cli("orchestrations", "add", "pw", "--destination", "stores", "--source", url, "--sql", "SELECT 1")
    assert "hunter2" not in line.one_line_error("holds a password", "PGPASSWORD", "~/.pgpass")
    monkeypatch.setenv("WAREHOUSE_URL", url)
    cli.ok("orchestrations", "add", "pw", "--destination", "stores", "--source", "env:WAREHOUSE_URL",
           "--sql", "SELECT 1")  # fmt: skip
    summary = failed_run(cli, "pw")
    assert "environment variable WAREHOUSE_URL holds a password" in summary["error"]
    assert "hunter2" not in json.dumps(summary)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("snowflake://u@acct/db?private_key_file_pwd=hunter2-pw", "?private_key_file_pwd="),
        ("snowflake://u@acct/db?Private_Key_File_PWD=hunter2-pw", "?Private_Key_File_PWD="),
        ("mysql+pymysql://u@db/shop?ssl_key_passwd=hunter2-pw", "?ssl_key_passwd="),
        ("mssql+pyodbc://u@db/shop?keyStorePassword=hunter2-pw", "?keyStorePassword="),
    ],
)
def test_any_parameter_named_like_a_password_is_a_password(
    cli: Any, stores: Path, url: str, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names holding "password" or "passwd", or ending in "pwd", whatever their case."""
    line = cli("orchestrations", "add", "pw", "--destination", "stores", "--source", url, "--sql", "SELECT 1")
    assert "hunter2" not in line.one_line_error(f"holds a password ({field})", "driver's own password file")
    monkeypatch.setenv("WAREHOUSE_URL", url)
    cli.ok("orchestrations", "add", "pw", "--destination", "stores", "--source", "env:WAREHOUSE_URL",
           "--sql", "SELECT 1")  # fmt: skip
    summary = failed_run(cli, "pw")
    assert "environment variable WAREHOUSE_URL holds a password" in summary["error"]
    assert "hunter2" not in json.dumps(summary)


@pytest.mark.parametrize("command", [("init",), ("orchestrations", "list")])
def test_a_store_url_with_a_password_is_refused_and_never_printed(
    cli: Any, initialized: Path, command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    for url in (f"sqlite:///{initialized}/offramp.db?password=hunter2-pw",
                "postgresql+psycopg://offramp@127.0.0.1:1/offramp?password=hunter2-pw",
                "postgresql+psycopg://offramp:hunter2-pw@127.0.0.1:1/offramp"):  # fmt: skip
        monkeypatch.setenv("OFFRAMP_DATABASE_URL", url)
        result = cli(*command)
        assert "hunter2" not in result.one_line_error("OFFRAMP_DATABASE_URL holds a password", "remove it")


def test_messages_naming_the_store_mask_a_query_string_password() -> None:
    store = StateStore("postgresql+psycopg://offramp@127.0.0.1:1/offramp?sslpassword=hunter2-pw&sslmode=require")
    try:
        assert "hunter2" not in store.display_url and "sslpassword=***" in store.display_url
    finally:
        store.dispose()


def test_sources_check_says_what_a_duckdb_source_may_read(cli: Any, stores: Path, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    cli.ok("orchestrations", "add", "csv", "--destination", "stores", "--allow-path", str(exports),
           "--sql", "SELECT 1")  # fmt: skip

    named = cli.ok("sources", "check", "csv")
    own = cli.ok("sources", "check", "orders")

    assert f"reads an in-memory database and, in allowed_paths, {exports}/; no other file" in named.stdout
    assert f"reads the database file {stores} and no other file, no URL and no extension" in own.stdout
