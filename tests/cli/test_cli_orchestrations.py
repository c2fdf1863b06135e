"""`offramp orchestrations add|list|show|delete`: a query, a source, a destination and the run options.

The options every destination shares (mode, timezone, schedule, source limits) and the run options of the
destination's type (TikTok's phone region, event map, attribution window, test event code) are validated together,
every error at once; a type refuses the options it does not read.
"""

from __future__ import annotations

import pytest
import yaml

from offramp.core.cli.common import build_context
from offramp.core.services.orchestrations import get_orchestration
from offramp.core.services.workspaces import get_workspace

SQL = "SELECT order_id AS event_id, email FROM orders"
SHARED_DEFAULTS = {
    "mode": "all",
    "timezone": "UTC",
    "schedule": None,
    "allowed_paths": [],
    "accept_privileged_role": False,
    "max_reject_rate": None,
    "fail_on_empty": False,
    "statement_timeout_seconds": 3600,
    "schedule_enabled": True,
    "catch_up": "latest",
    "max_lateness_minutes": None,
    "when_changed": None,
    "alerts": None,
    "schedule_timezone": "UTC",
}
TIKTOK_OPTIONS = ("default_phone_region", "event_name_map", "attribution_window_days", "test_event_code")


@pytest.fixture
def sink(cli, with_token) -> str:
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", with_token)
    return "sink"


@pytest.fixture
def stores(cli, initialized, monkeypatch) -> str:
    """A TikTok destination (not tested against TikTok), whose type reads TikTok's run options."""
    monkeypatch.setenv("TT_APP_SECRET", "app-secret-1234")
    cli.ok(
        "credentials", "add", "tiktok-main", "--type", "tiktok-offline-events",
        "--set", "app_id=7001", "--set", "app_secret=env:TT_APP_SECRET",
    )  # fmt: skip
    cli.ok(
        "destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tiktok-main",
        "--no-test", "--set", "advertiser_id=7002", "--set", "event_set_id=7003",
    )  # fmt: skip
    return "stores"


def test_add_with_every_option_then_show(cli, cli_json, stores):
    result = cli.ok(
        "orchestrations", "add", "orders", "--destination", stores, "--sql", SQL,
        "--source", "duckdb:warehouse.duckdb", "--mode", "new", "--timezone", "America/New_York",
        "--phone-region", "gb", "--map", "Order Completed=CompletePayment", "--map", "Signup=CompleteRegistration",
        "--test-event-code", "TEST123", "--attribution-window-days", "14", "--schedule", "0 6 * * *",
        "--max-reject-rate", "0.2", "--fail-on-empty",
    )  # fmt: skip
    assert "Added orchestration orders (destination stores, source duckdb:warehouse.duckdb)." in result.stdout

    data = cli_json("orchestrations", "show", "orders")

    assert data["name"] == "orders"
    assert data["workspace"] == "production"
    assert data["destination"] == "stores"
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
        "max_reject_rate": 0.2,
        "fail_on_empty": True,
        "statement_timeout_seconds": 3600,
        "schedule_enabled": True,
        "catch_up": "latest",
        "max_lateness_minutes": None,
        "when_changed": None,
        "alerts": None,
        "schedule_timezone": "UTC",
    }
    assert "Order Completed: CompletePayment" in cli.ok("orchestrations", "show", "orders").stdout


def test_defaults_source_is_embedded_duckdb_and_options_are_shown(cli, cli_json, stores):
    cli.ok("orchestrations", "add", "orders", "--destination", stores, "--sql", SQL)

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
        "max_reject_rate": None,
        "fail_on_empty": False,
        "statement_timeout_seconds": 3600,
        "schedule_enabled": True,
        "catch_up": "latest",
        "max_lateness_minutes": None,
        "when_changed": None,
        "alerts": None,
        "schedule_timezone": "UTC",
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
        (
            ["--sql", SQL, "--map", "no equals sign"],
            "--map expects 'Source Name=DestinationName', got 'no equals sign'",
        ),
        (["--sql", SQL, "--option", "no equals sign"], "--option expects KEY=VALUE, got: 'no equals sign'"),
        (
            ["--sql", SQL, "--option", "event_name_map={Order: x"],
            "--option event_name_map: '{Order: x' is not valid JSON",
        ),
        (["--sql", SQL, "--mode", "new", "--option", "mode=all"], "option mode is given twice"),
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


def test_every_invalid_option_is_reported_at_once_by_name(cli, cli_error, stores):
    line = cli_error(
        "orchestrations", "add", "orders", "--destination", stores, "--sql", SQL,
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


def test_a_destination_type_that_reads_only_the_test_code_shows_the_shared_options_and_it(cli, cli_json, sink):
    cli.ok("orchestrations", "add", "orders", "--destination", sink, "--sql", SQL)

    options = cli_json("orchestrations", "show", "orders")["options"]

    assert options.items() >= SHARED_DEFAULTS.items()
    # The dummy reads one run option, the test code that keeps a sandbox's sends apart; none of TikTok's others.
    assert not (set(TIKTOK_OPTIONS) - {"test_event_code"}) & set(options)
    assert options["test_event_code"] is None


def test_an_option_the_destination_type_does_not_read_is_refused_with_every_other_mistake(cli, cli_error, sink):
    line = cli_error(
        "orchestrations", "add", "orders", "--destination", sink, "--sql", SQL,
        "--phone-region", "GB", "--timezone", "Mars/Olympus", "--option", "colour=blue",
    )  # fmt: skip

    assert "invalid settings for orchestration 'orders' (destination 'sink', dummy)" in line
    for field in ("default_phone_region: unknown option", "timezone:", "colour: unknown option"):
        assert field in line, field
    assert "valid options: " in line and "statement_timeout_seconds" in line
    assert "offramp plugins show" in line.split(" - ", 1)[1]
    assert cli.ok("orchestrations", "list", "--json").stdout.strip() == "[]"


def test_option_sets_any_run_option_of_the_type_and_json_gives_structured_values(cli, cli_json, stores):
    cli.ok(
        "orchestrations", "add", "orders", "--destination", stores, "--sql", SQL,
        "--option", "attribution_window_days=7", "--option", 'event_name_map={"Order Completed": "Purchase"}',
        "--option", "default_phone_region=NO", "-o", "test_event_code=0012", "--option", "mode=new",
    )  # fmt: skip

    options = cli_json("orchestrations", "show", "orders")["options"]

    assert options["attribution_window_days"] == 7
    assert options["event_name_map"] == {"Order Completed": "Purchase"}
    assert options["default_phone_region"] == "NO"  # text stays text: Norway, not false
    assert options["test_event_code"] == "0012"
    assert options["mode"] == "new"


def test_the_shorthand_flags_say_which_option_they_set(cli):
    help_text = " ".join(cli.ok("orchestrations", "add", "--help").stdout.split())

    for flag, option in (("--phone-region", "default_phone_region"), ("--map", "event_name_map"),
                         ("--test-event-code", "test_event_code"),
                         ("--attribution-window-days", "attribution_window_days")):  # fmt: skip
        assert flag in help_text
        assert f"Shorthand for --option {option}=VALUE; an option of the destination type" in help_text
    assert "--option" in help_text


def test_options_stored_before_types_owned_them_are_read_leniently_and_export_round_trips(
    cli, cli_json, sink, tmp_path
):
    cli.ok("orchestrations", "add", "orders", "--destination", sink, "--sql", SQL, "--mode", "new")
    # What a store of an earlier version holds: a TikTok option on an orchestration of another type.
    ctx = build_context()
    with ctx.store.session() as session:
        row = get_orchestration(session, get_workspace(session, "production"), "orders")
        row.options = {**row.options, "default_phone_region": "GB"}

    options = cli_json("orchestrations", "show", "orders")["options"]
    exported = cli.ok("export").stdout

    assert options["mode"] == "new" and "default_phone_region" not in options
    assert "default_phone_region" not in exported
    (tmp_path / "workspace.yaml").write_text(exported)
    assert "Nothing to do" in cli.ok("apply", "-f", str(tmp_path / "workspace.yaml")).stdout
    assert cli.ok("export").stdout == exported
    # An export of the earlier version still holds the option: given back as stored, it is no error and no change.
    older = yaml.safe_load(exported)
    older["orchestrations"][0]["options"]["default_phone_region"] = "GB"
    (tmp_path / "older.yaml").write_text(yaml.safe_dump(older))
    assert "Nothing to do" in cli.ok("apply", "-f", str(tmp_path / "older.yaml")).stdout
    # The export applies to an empty workspace as well: nothing in it is refused.
    cli.ok("workspaces", "add", "copy")
    (tmp_path / "copy.yaml").write_text(exported.replace("workspace: production", "workspace: copy"))
    cli.ok("apply", "-f", str(tmp_path / "copy.yaml"))
    assert cli_json("orchestrations", "show", "orders", "-w", "copy")["options"]["mode"] == "new"


def test_apply_reports_the_bad_options_of_every_orchestration_at_once(cli, cli_error, sink, stores, tmp_path):
    document = {
        "workspace": "production",
        "credentials": yaml.safe_load(cli.ok("export").stdout)["credentials"],
        "destinations": yaml.safe_load(cli.ok("export").stdout)["destinations"],
        "orchestrations": [
            {"name": "a", "destination": "sink", "sql": SQL, "options": {"event_name_map": {"x": "y"}}},
            {"name": "b", "destination": "stores", "sql": SQL,
             "options": {"attribution_window_days": 0, "default_phone_region": "XX", "colour": "blue"}},
        ],
    }  # fmt: skip
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(document))

    line = cli_error("apply", "-f", str(tmp_path / "bad.yaml"))

    assert "orchestration 'a' (destination 'sink', dummy): event_name_map: unknown option" in line
    for problem in ("attribution_window_days:", "default_phone_region:", "colour: unknown option"):
        assert problem in line.split("orchestration 'b'")[1], problem
    assert cli.ok("orchestrations", "list", "--json").stdout.strip() == "[]"


def test_export_writes_the_options_in_the_order_they_were_always_stored(cli, stores):
    cli.ok(
        "orchestrations", "add", "orders", "--destination", stores, "--sql", SQL, "--schedule", "0 6 * * *",
        "--test-event-code", "T1", "--map", "A=Purchase", "--phone-region", "GB", "--timezone", "Europe/London",
        "--mode", "new", "--allow-path", "exports",
    )  # fmt: skip

    options = yaml.safe_load(cli.ok("export").stdout)["orchestrations"][0]["options"]

    assert list(options) == [
        "mode", "timezone", "default_phone_region", "event_name_map", "test_event_code", "schedule", "allowed_paths",
    ]  # fmt: skip
