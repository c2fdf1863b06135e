"""`offramp orchestrations add|list|show|delete`: a query, a source, a destination and the run options."""

from __future__ import annotations

import pytest

SQL = "SELECT order_id AS event_id, email FROM orders"


@pytest.fixture
def sink(cli, with_token) -> str:
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", with_token)
    return "sink"


def test_add_with_every_option_then_show(cli, cli_json, sink):
    result = cli.ok(
        "orchestrations", "add", "orders", "--destination", sink, "--sql", SQL,
        "--source", "duckdb:warehouse.duckdb", "--mode", "new", "--timezone", "America/New_York",
        "--phone-region", "gb", "--map", "Order Completed=CompletePayment", "--map", "Signup=CompleteRegistration",
        "--test-event-code", "TEST123", "--attribution-window-days", "14", "--schedule", "0 6 * * *",
    )  # fmt: skip
    assert "Added orchestration orders (destination sink, source duckdb:warehouse.duckdb)." in result.stdout

    data = cli_json("orchestrations", "show", "orders")

    assert data["name"] == "orders"
    assert data["workspace"] == "production"
    assert data["destination"] == "sink"
    assert data["source"] == "duckdb:warehouse.duckdb"
    assert data["sql"] == SQL
    assert data["options"] == {
        "mode": "new",
        "timezone": "America/New_York",
        "default_phone_region": "GB",
        "event_name_map": {"Order Completed": "CompletePayment", "Signup": "CompleteRegistration"},
        "attribution_window_days": 14,
        "test_event_code": "TEST123",
        "schedule": "0 6 * * *",
        "allowed_paths": [],
        "accept_privileged_role": False,
        "statement_timeout_seconds": 3600,
    }
    assert "Order Completed: CompletePayment" in cli.ok("orchestrations", "show", "orders").stdout


def test_defaults_source_is_embedded_duckdb_and_options_are_shown(cli, cli_json, sink):
    cli.ok("orchestrations", "add", "orders", "--destination", sink, "--sql", SQL)

    data = cli_json("orchestrations", "show", "orders")

    assert data["source"] == "duckdb::memory:"
    assert data["options"] == {
        "mode": "all",
        "timezone": "UTC",
        "default_phone_region": "US",
        "event_name_map": {},
        "attribution_window_days": 28,
        "test_event_code": None,
        "schedule": None,
        "allowed_paths": [],
        "accept_privileged_role": False,
        "statement_timeout_seconds": 3600,
    }


def test_the_query_can_come_from_a_file(cli, cli_json, sink, tmp_path):
    query = "-- store purchases\nSELECT order_id AS event_id\nFROM read_parquet('orders.parquet')\n"
    (tmp_path / "orders.sql").write_text(query)

    cli.ok("orchestrations", "add", "orders", "--destination", sink, "--sql-file", str(tmp_path / "orders.sql"))

    assert cli_json("orchestrations", "show", "orders")["sql"] == query


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "give exactly one of --sql TEXT and --sql-file FILE"),
        (["--sql", SQL, "--sql-file", "orders.sql"], "give exactly one of --sql TEXT and --sql-file FILE"),
        (["--sql-file", "missing.sql"], "cannot read --sql-file missing.sql"),
        (["--sql", "   "], "the SQL is empty"),
        (["--sql", SQL, "--map", "no equals sign"], "--map expects 'Source Name=TikTokName', got 'no equals sign'"),
    ],
)
def test_query_and_map_mistakes_are_one_line(cli, cli_error, sink, args, expected):
    line = cli_error("orchestrations", "add", "orders", "--destination", sink, *args)

    assert expected in line
    assert cli.ok("orchestrations", "list", "--json").stdout.strip() == "[]"


@pytest.mark.parametrize(
    "source",
    [
        "duckdb::memory:",
        "duckdb:data/warehouse.duckdb",
        "postgresql+psycopg://reader@db.internal/analytics",
        "snowflake://reader@acme/analytics/public",
        "env:WAREHOUSE_URL",
    ],
)
def test_accepted_sources_are_stored_as_given(cli, cli_json, sink, source):
    cli.ok("orchestrations", "add", "orders", "--destination", sink, "--sql", SQL, "--source", source)

    assert cli_json("orchestrations", "show", "orders")["source"] == source
    assert cli_json("orchestrations", "list")[0]["source"] == source


def test_a_url_with_a_password_is_refused_naming_where_the_password_goes_instead(cli, cli_error, sink):
    line = cli_error(
        "orchestrations", "add", "orders", "--destination", sink, "--sql", SQL,
        "--source", "postgresql://reader:hunter2@db.internal/analytics",
    )  # fmt: skip

    assert "password" in line
    assert "PGPASSWORD" in line.split(" - ", 1)[1]
    assert "hunter2" not in line
    assert cli.ok("orchestrations", "list", "--json").stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("duckdb:", "duckdb: needs a database file path"),
        ("env:", "`env:` must be followed by a variable name"),
        ("not a url at all", "is not duckdb::memory:, duckdb:PATH, env:VAR or a SQLAlchemy URL"),
    ],
)
def test_malformed_sources_say_what_is_accepted(cli_error, sink, source, expected):
    line = cli_error("orchestrations", "add", "orders", "--destination", sink, "--sql", SQL, "--source", source)

    assert expected in line


def test_every_invalid_option_is_reported_at_once_by_name(cli, cli_error, sink):
    line = cli_error(
        "orchestrations", "add", "orders", "--destination", sink, "--sql", SQL,
        "--mode", "sometimes", "--timezone", "Mars/Olympus", "--phone-region", "XX", "--schedule", "every day",
    )  # fmt: skip

    assert "invalid settings for orchestration 'orders'" in line
    for field in ("mode", "timezone", "default_phone_region", "schedule"):
        assert f"{field}:" in line, field
    assert "Mars/Olympus" in line
    assert cli.ok("orchestrations", "list", "--json").stdout.strip() == "[]"


def test_a_missing_destination_names_the_existing_ones(cli_error, sink):
    line = cli_error("orchestrations", "add", "orders", "--destination", "nope", "--sql", SQL)

    assert "no destination named 'nope' in workspace 'production' (existing: sink)" in line


def test_list_and_delete(cli, cli_json, cli_error, sink):
    cli.ok("orchestrations", "add", "orders", "--destination", sink, "--sql", SQL)
    cli.ok("orchestrations", "add", "leads", "--destination", sink, "--sql", SQL, "--source", "duckdb:crm.duckdb")

    data = cli_json("orchestrations", "list")
    assert [(o["name"], o["destination"], o["source"]) for o in data] == [
        ("leads", "sink", "duckdb:crm.duckdb"),
        ("orders", "sink", "duckdb::memory:"),
    ]
    assert "leads" in cli.ok("orchestrations", "list").stdout

    assert "Deleted orchestration orders." in cli.ok("orchestrations", "delete", "orders").stdout
    assert [o["name"] for o in cli_json("orchestrations", "list")] == ["leads"]
    assert "no orchestration named 'orders' in workspace 'production' (existing: leads)" in cli_error(
        "orchestrations", "show", "orders"
    )


def test_a_name_is_used_once_per_workspace(cli, cli_error, sink):
    cli.ok("orchestrations", "add", "orders", "--destination", sink, "--sql", SQL)

    line = cli_error("orchestrations", "add", "orders", "--destination", sink, "--sql", SQL)

    assert "orchestration 'orders' already exists in workspace 'production'" in line
