"""`offramp credentials|destinations|orchestrations update|rename`: change an object in place, validated as `add`
validates, audited by field name (never a secret's value), keeping its identity and its bindings.

Run-based checks (mode `new` history kept through an update and a rename, the connection test of `destinations
update` against the TikTok emulator) are in tests/runner/test_edit_identity.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

APP_SECRET = "app-secret-1234-unseen"
NEW_SECRET = "new-app-secret-5678-unseen"
SQL = "SELECT order_id AS event_id, email FROM orders"


@pytest.fixture
def tiktok(cli, initialized, monkeypatch) -> str:
    """Credential `tiktok-main` and TikTok destination `stores` (never tested against TikTok here)."""
    monkeypatch.setenv("TT_APP_SECRET", APP_SECRET)
    cli.ok(
        "credentials", "add", "tiktok-main", "--type", "tiktok-offline-events",
        "--set", "app_id=7001", "--set", "app_secret=env:TT_APP_SECRET",
    )  # fmt: skip
    cli.ok(
        "destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tiktok-main",
        "--no-test", "--set", "advertiser_id=7002", "--set", "event_set_id=7003",
    )  # fmt: skip
    return "stores"


@pytest.fixture
def sink(cli, with_token) -> str:
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", with_token)
    return "sink"


def audit_events(cli, **match: str) -> list[dict]:
    events = json.loads(cli.ok("audit", "--json").stdout)
    return [event for event in events if all(event[key] == value for key, value in match.items())]


def everything_printed(cli) -> str:
    """What a user or a reviewer can see of the store: shows, lists, the export and the audit trail."""
    return "\n".join(
        cli.ok(*command).stdout
        for command in (
            ("credentials", "show", "tiktok-main", "--json"),
            ("credentials", "list", "--json"),
            ("destinations", "show", "stores", "--json"),
            ("export",),
            ("audit", "--json"),
        )
    )


# --- credentials update ----------------------------------------------------------------------------------------


def test_credentials_update_changes_what_is_given_keeps_the_rest_and_never_shows_a_secret(
    cli, cli_json, tiktok, stored_secrets, monkeypatch
):
    result = cli.ok("credentials", "update", "tiktok-main", "--set", "app_id=7009")

    assert result.stdout.strip() == "Updated credential tiktok-main: app_id changed."
    shown = cli_json("credentials", "show", "tiktok-main")
    assert shown["settings"]["app_id"] == "7009"
    assert stored_secrets("tiktok-main")["app_secret"] == APP_SECRET  # not given: kept

    # A secret is given as with `add`: the value itself, or env:VARIABLE.
    result = cli.ok("credentials", "update", "tiktok-main", "--set", f"app_secret={NEW_SECRET}")
    assert result.stdout.strip() == "Updated credential tiktok-main: app_secret changed."
    assert stored_secrets("tiktok-main")["app_secret"] == NEW_SECRET
    monkeypatch.setenv("OTHER_SECRET", "third-secret-9999-unseen")
    cli.ok("credentials", "update", "tiktok-main", "--set", "app_secret=env:OTHER_SECRET")
    assert stored_secrets("tiktok-main")["app_secret"] == "third-secret-9999-unseen"
    assert "env:OTHER_SECRET" in cli.ok("export").stdout  # exported by its variable, as after `add`

    [latest, *_] = audit_events(cli, action="update", object_type="credential")
    assert latest["details"] == {"fields": ["app_secret"]}
    printed = everything_printed(cli)
    for secret in (APP_SECRET, NEW_SECRET, "third-secret-9999-unseen"):
        assert secret not in printed


def test_credentials_update_unset_removes_a_secret(cli, cli_json, tiktok, stored_secrets):
    cli.ok("credentials", "update", "tiktok-main", "--set", "refresh_token=refresh-token-2020-unseen")
    assert stored_secrets("tiktok-main")["refresh_token"] == "refresh-token-2020-unseen"

    result = cli.ok("credentials", "update", "tiktok-main", "--unset", "refresh_token")

    assert result.stdout.strip() == "Updated credential tiktok-main: refresh_token changed."
    assert "refresh_token" not in stored_secrets("tiktok-main")
    assert stored_secrets("tiktok-main")["app_secret"] == APP_SECRET
    assert cli_json("credentials", "show", "tiktok-main")["secrets"]["refresh_token"] == "not set"
    assert "refresh-token-2020-unseen" not in cli.ok("audit", "--json").stdout


def test_credentials_update_reports_every_invalid_field_at_once_and_changes_nothing(cli, cli_json, tiktok):
    before = cli_json("credentials", "show", "tiktok-main")

    line = cli(
        "credentials", "update", "tiktok-main",
        "--set", "app_id=", "--set", "auth_url=not-a-url", "--set", "app_scret=typo",
    ).one_line_error("credential 'tiktok-main'")  # fmt: skip

    for field in ("app_id", "auth_url", "app_scret"):
        assert field in line, field
    assert cli_json("credentials", "show", "tiktok-main") == before
    assert audit_events(cli, action="update") == []


def test_credentials_update_that_changes_nothing_says_so(cli, tiktok):
    result = cli.ok("credentials", "update", "tiktok-main", "--set", "app_id=7001")

    assert result.stdout.strip() == "Credential tiktok-main: nothing to change."
    assert cli.ok("credentials", "update", "tiktok-main").stdout.strip() == "Credential tiktok-main: nothing to change."
    assert audit_events(cli, action="update") == []


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--unset", "colour"], ("cannot unset colour", "no such setting", "app_secret")),
        (["--unset", "app_secret"], ("app_secret",)),  # required: it cannot go
        (["--set", "app_id=1", "--unset", "app_id"], ("app_id given with both --set and --unset",)),
        (["--set", "oops"], ("--set expects key=value",)),
    ],
)
def test_credentials_update_mistakes_are_one_line(cli, tiktok, stored_secrets, args, needles):
    cli("credentials", "update", "tiktok-main", *args).one_line_error(*needles)

    assert stored_secrets("tiktok-main")["app_secret"] == APP_SECRET


def test_moving_a_credential_to_another_host_needs_its_secret_again(cli, tiktok, stored_secrets, monkeypatch):
    line = cli(
        "credentials", "update", "tiktok-main", "--set", "api_base_url=https://other.example.com"
    ).one_line_error("api_base_url", "app_secret")
    assert "offramp credentials authorize tiktok-main" in line  # the next step, as a command that works

    monkeypatch.setenv("MOVED_SECRET", "moved-secret-4242")
    result = cli.ok(
        "credentials", "update", "tiktok-main",
        "--set", "api_base_url=https://other.example.com", "--set", "app_secret=env:MOVED_SECRET",
    )  # fmt: skip
    assert "api_base_url" in result.stdout and "app_secret" in result.stdout
    assert stored_secrets("tiktok-main")["app_secret"] == "moved-secret-4242"


# --- destinations update ---------------------------------------------------------------------------------------


def test_destinations_update_sets_unsets_and_rebinds(cli, cli_json, tiktok, token_env):
    result = cli.ok(
        "destinations", "update", "stores", "--no-test", "--set", "batch_size=250", "--set", "event_set_name=Stores"
    )
    assert result.stdout.strip() == "Updated destination stores: batch_size, event_set_name changed."
    shown = cli_json("destinations", "show", "stores")
    assert (shown["settings"]["batch_size"], shown["settings"]["event_set_name"]) == (250, "Stores")
    assert shown["settings"]["advertiser_id"] == "7002"  # not given: kept

    result = cli.ok("destinations", "update", "stores", "--no-test", "--unset", "event_set_name")
    assert result.stdout.strip() == "Updated destination stores: event_set_name changed."
    assert cli_json("destinations", "show", "stores")["settings"]["event_set_name"] is None

    cli.ok(
        "credentials", "add", "tiktok-second", "--type", "tiktok-offline-events",
        "--set", "app_id=7010", "--set", f"app_secret={NEW_SECRET}",
    )  # fmt: skip
    result = cli.ok("destinations", "update", "stores", "--no-test", "--credential", "tiktok-second")
    assert result.stdout.strip() == "Updated destination stores: credential changed."
    assert cli_json("destinations", "show", "stores")["credential"] == "tiktok-second"

    [latest, *_] = audit_events(cli, action="update", object_type="destination")
    assert latest["details"]["fields"] == ["credential"]
    assert latest["details"]["credential"] == "tiktok-second"


def test_destinations_update_reports_every_invalid_field_at_once_and_changes_nothing(cli, cli_json, tiktok, sink):
    before = cli_json("destinations", "show", "stores")

    line = cli(
        "destinations", "update", "stores", "--no-test",
        "--set", "advertiser_id=act_12", "--set", "batch_size=5000", "--set", "colour=red",
    ).one_line_error("destination 'stores'")  # fmt: skip

    for field in ("advertiser_id", "batch_size", "colour"):
        assert field in line, field
    assert cli_json("destinations", "show", "stores") == before
    # A credential of a type the destination cannot use is refused, naming the ones it can use.
    cli("destinations", "update", "stores", "--no-test", "--credential", "shop-token").one_line_error(
        "cannot use credential 'shop-token'", "tiktok-main"
    )
    cli("destinations", "update", "stores", "--no-test", "--credential", "nope").one_line_error(
        "no credential named 'nope'"
    )


def test_destinations_update_that_changes_nothing_says_so_without_a_test(cli, tiktok):
    # No --no-test: with nothing to change there is nothing to test (the fake advertiser would fail it).
    result = cli.ok("destinations", "update", "stores", "--set", "advertiser_id=7002")

    assert result.stdout.strip() == "Destination stores: nothing to change."
    assert audit_events(cli, action="update") == []


# --- orchestrations update -------------------------------------------------------------------------------------


def test_orchestrations_update_changes_what_is_given_and_records_the_fields(cli, cli_json, tiktok, tmp_path):
    cli.ok(
        "orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL,
        "--map", "Order Completed=Purchase", "--attribution-window-days", "14", "--schedule", "0 6 * * *",
    )  # fmt: skip
    (tmp_path / "orders.sql").write_text("SELECT order_id AS event_id FROM orders\n")

    result = cli.ok(
        "orchestrations", "update", "orders", "--sql-file", str(tmp_path / "orders.sql"), "--mode", "new",
        "--map", "Signup=CompleteRegistration", "--unset", "attribution_window_days", "--max-reject-rate", "0.2",
        "--fail-on-empty", "--option", "test_event_code=TEST1",
    )  # fmt: skip

    changed = (
        "options.attribution_window_days, options.event_name_map, options.fail_on_empty, options.max_reject_rate, "
        "options.mode, options.test_event_code, sql"
    )
    assert result.stdout.strip() == f"Updated orchestration orders: {changed} changed."
    shown = cli_json("orchestrations", "show", "orders")
    assert shown["sql"] == "SELECT order_id AS event_id FROM orders\n"
    options = shown["options"]
    assert options["event_name_map"] == {"Signup": "CompleteRegistration"}  # --map replaces the map
    assert options["attribution_window_days"] == 28  # unset: the default again
    assert (options["mode"], options["max_reject_rate"], options["fail_on_empty"]) == ("new", 0.2, True)
    assert (options["schedule"], options["test_event_code"]) == ("0 6 * * *", "TEST1")  # kept / set
    [latest, *_] = audit_events(cli, action="update", object_type="orchestration")
    assert latest["details"] == {"fields": changed.split(", ")}

    result = cli.ok("orchestrations", "update", "orders", "--no-fail-on-empty", "--source", "duckdb:shop.duckdb")
    assert result.stdout.strip() == "Updated orchestration orders: options.fail_on_empty, source changed."
    assert cli_json("orchestrations", "show", "orders")["options"]["fail_on_empty"] is False


def test_orchestrations_update_to_another_destination(cli, cli_json, tiktok, sink):
    cli.ok("orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL, "--mode", "new")

    # The TikTok options of a TikTok destination mean nothing to the dummy type: none were set here.
    result = cli.ok("orchestrations", "update", "orders", "--destination", "sink")

    assert result.stdout.strip() == "Updated orchestration orders: destination changed."
    shown = cli_json("orchestrations", "show", "orders")
    assert (shown["destination"], shown["options"]["mode"]) == ("sink", "new")
    assert cli_json("destinations", "show", "sink")["used_by"] == ["orders"]


def test_options_the_new_destination_type_does_not_read_are_named_and_can_be_unset(cli, cli_json, tiktok, sink):
    cli.ok("orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL, "--phone-region", "GB")

    line = cli("orchestrations", "update", "orders", "--destination", "sink").one_line_error(
        "orchestration 'orders' (destination 'sink', dummy)", "default_phone_region: unknown option"
    )
    assert "offramp plugins show dummy" in line
    assert cli_json("orchestrations", "show", "orders")["destination"] == "stores"

    result = cli.ok("orchestrations", "update", "orders", "--destination", "sink", "--unset", "default_phone_region")
    assert result.stdout.strip() == "Updated orchestration orders: destination, options.default_phone_region changed."


def test_orchestrations_update_reports_every_invalid_field_at_once_and_changes_nothing(cli, cli_json, tiktok):
    cli.ok("orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL)
    before = cli_json("orchestrations", "show", "orders")

    line = cli(
        "orchestrations", "update", "orders", "--mode", "sometimes", "--timezone", "Mars/Olympus",
        "--max-reject-rate", "1.5", "--option", "colour=red", "--source", "duckdb:",
    ).one_line_error("orchestration 'orders'")  # fmt: skip

    for field in ("mode", "timezone", "max_reject_rate", "colour", "duckdb: needs a database file path"):
        assert field in line, field
    assert cli_json("orchestrations", "show", "orders") == before
    assert audit_events(cli, action="update") == []


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--unset", "colour"], ("cannot unset colour", "no such option", "valid options")),
        (["--mode", "new", "--unset", "mode"], ("mode given and unset at once",)),
        (["--sql", SQL, "--sql-file", "orders.sql"], ("give exactly one of --sql TEXT and --sql-file FILE",)),
        (["--destination", "nope"], ("no destination named 'nope'",)),
        (["--sql", "  "], ("the SQL is empty",)),
    ],
)
def test_orchestrations_update_mistakes_are_one_line(cli, cli_json, tiktok, args, needles):
    cli.ok("orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL)

    cli("orchestrations", "update", "orders", *args).one_line_error(*needles)

    assert cli_json("orchestrations", "show", "orders")["sql"] == SQL


def test_orchestrations_update_that_changes_nothing_says_so(cli, tiktok):
    cli.ok("orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL, "--mode", "new")

    for args in ([], ["--mode", "new"], ["--sql", SQL, "--destination", "stores"], ["--unset", "schedule"]):
        result = cli.ok("orchestrations", "update", "orders", *args)
        assert result.stdout.strip() == "Orchestration orders: nothing to change.", args
    assert audit_events(cli, action="update") == []


@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM orders", "SELECT 1; DROP TABLE orders", "WITH gone AS (DELETE FROM orders RETURNING *) SELECT 1"],
)
def test_sql_that_is_not_one_select_is_refused_when_it_is_stored(cli, cli_json, tiktok, sql):
    line = cli("orchestrations", "add", "evil", "--destination", "stores", "--sql", sql).one_line_error(
        "orchestration 'evil'", "must be one SELECT", "WITH"
    )
    assert line.count("offramp: error:") == 1
    assert cli_json("orchestrations", "list") == []

    cli.ok("orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL)
    cli("orchestrations", "update", "orders", "--sql", sql).one_line_error("orchestration 'orders'", "one SELECT")
    assert cli_json("orchestrations", "show", "orders")["sql"] == SQL


def test_add_stores_the_guardrails(cli, cli_json, tiktok):
    cli.ok(
        "orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL,
        "--max-reject-rate", "0.05", "--fail-on-empty",
    )  # fmt: skip

    options = cli_json("orchestrations", "show", "orders")["options"]
    assert (options["max_reject_rate"], options["fail_on_empty"]) == (0.05, True)
    exported = yaml.safe_load(cli.ok("export").stdout)
    assert exported["orchestrations"][0]["options"] == {"max_reject_rate": 0.05, "fail_on_empty": True}
    cli(
        "orchestrations", "add", "other", "--destination", "stores", "--sql", SQL, "--max-reject-rate", "2"
    ).one_line_error("max_reject_rate")


# --- rename ----------------------------------------------------------------------------------------------------


def test_renames_keep_every_binding_and_are_audited(cli, cli_json, tiktok, tmp_path):
    cli.ok("orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL)
    exported = yaml.safe_load(cli.ok("export").stdout)
    exported["groups"] = [{"name": "nightly", "orchestrations": ["orders"]}]
    (tmp_path / "with-group.yaml").write_text(yaml.safe_dump(exported))
    cli.ok("apply", "--file", str(tmp_path / "with-group.yaml"))

    assert cli.ok("credentials", "rename", "tiktok-main", "tiktok-prod").stdout.strip() == (
        "Renamed credential tiktok-main to tiktok-prod."
    )
    cli.ok("destinations", "rename", "stores", "shops")
    cli.ok("orchestrations", "rename", "orders", "store-orders")

    assert cli_json("destinations", "show", "shops")["credential"] == "tiktok-prod"
    assert cli_json("credentials", "show", "tiktok-prod")["used_by"] == ["shops"]
    shown = cli_json("orchestrations", "show", "store-orders")
    assert (shown["destination"], shown["groups"]) == ("shops", ["nightly"])
    assert yaml.safe_load(cli.ok("export").stdout)["groups"][0]["orchestrations"] == ["store-orders"]
    renames = [(e["object_type"], e["object_name"], e["details"]) for e in audit_events(cli, action="rename")]
    assert renames == [
        ("orchestration", "store-orders", {"from": "orders", "to": "store-orders"}),
        ("destination", "shops", {"from": "stores", "to": "shops"}),
        ("credential", "tiktok-prod", {"from": "tiktok-main", "to": "tiktok-prod"}),
    ]
    cli("orchestrations", "show", "orders").one_line_error("no orchestration named 'orders'", "store-orders")


@pytest.mark.parametrize("kind", ["credentials", "destinations", "orchestrations"])
def test_a_rename_to_a_taken_or_invalid_name_is_refused(cli, cli_json, tiktok, sink, kind):
    cli.ok("orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL)
    cli.ok("orchestrations", "add", "leads", "--destination", "sink", "--sql", SQL)
    old, taken = {"credentials": ("tiktok-main", "shop-token"), "destinations": ("stores", "sink"),
                  "orchestrations": ("orders", "leads")}[kind]  # fmt: skip
    before = cli_json(kind, "list")

    cli(kind, "rename", old, taken).one_line_error(f"'{taken}' already exists in workspace 'production'")
    cli(kind, "rename", old, "bad name!").one_line_error("invalid", "name 'bad name!'")
    cli(kind, "rename", "nope", "fresh").one_line_error("named 'nope'")
    assert cli.ok(kind, "rename", old, old).stdout.strip().endswith("nothing to change.")

    assert [item["name"] for item in cli_json(kind, "list")] == [item["name"] for item in before]
    assert audit_events(cli, action="rename") == []


def test_renames_and_updates_in_another_workspace_print_hints_for_it(cli, cli_json, initialized, token_env):
    cli.ok("workspaces", "add", "staging")
    cli.ok("credentials", "add", "tok", "--type", "static-token", "--set", f"token=env:{token_env}", "-w", "staging")
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", "tok", "-w", "staging")
    cli.ok("orchestrations", "add", "orders", "--destination", "sink", "--sql", SQL, "-w", "staging")

    # Each refusal names the command that frees the object, for staging (the `cli` fixture checks every hint).
    line = cli("credentials", "delete", "tok", "-w", "staging").one_line_error("used by destination(s) sink")
    assert "offramp destinations delete sink -w staging" in line
    line = cli("destinations", "delete", "sink", "-w", "staging").one_line_error("used by orchestration(s) orders")
    assert "offramp orchestrations delete orders -w staging" in line
    cli.ok("destinations", "add", "other", "--type", "dummy", "--credential", "tok", "-w", "staging")
    line = cli("destinations", "delete", "sink", "-w", "staging").one_line_error()
    assert "offramp orchestrations update orders --destination other -w staging" in line
    cli.ok("credentials", "add", "tok-2", "--type", "static-token", "--set", f"token=env:{token_env}", "-w", "staging")
    line = cli("credentials", "delete", "tok", "-w", "staging").one_line_error()
    assert "`offramp destinations update sink --credential tok-2 -w staging`" in line
    line = cli("orchestrations", "update", "orders", "--option", "colour=red", "-w", "staging").one_line_error()
    assert "offramp plugins show dummy" in line
    cli("orchestrations", "show", "nope", "-w", "staging").one_line_error("offramp orchestrations list -w staging")
    cli.ok("orchestrations", "rename", "orders", "orders-2", "-w", "staging")
    assert [item["name"] for item in cli_json("orchestrations", "list", "-w", "staging")] == ["orders-2"]


def test_an_orchestration_in_a_group_is_not_deleted_and_the_hint_says_how_to_take_it_out(cli, sink, tmp_path):
    cli.ok("orchestrations", "add", "orders", "--destination", "sink", "--sql", SQL)
    exported = yaml.safe_load(cli.ok("export").stdout)
    exported["groups"] = [{"name": "nightly", "orchestrations": ["orders"]}]
    (tmp_path / "with-group.yaml").write_text(yaml.safe_dump(exported))
    cli.ok("apply", "--file", str(tmp_path / "with-group.yaml"))

    line = cli("orchestrations", "delete", "orders").one_line_error("belongs to group(s) nightly")

    # The hint is the command to paste: its only member, so the group goes (its other members would stay).
    assert "offramp groups delete nightly" in line
    cli.ok("groups", "delete", "nightly")
    cli.ok("orchestrations", "delete", "orders")


# --- apply's plan names the fields -----------------------------------------------------------------------------


def test_apply_dry_run_names_each_changed_field_and_secrets_only_by_name(cli, tiktok, tmp_path, monkeypatch):
    cli.ok(
        "orchestrations", "add", "store-orders", "--destination", "stores", "--sql", SQL,
        "--attribution-window-days", "14",
    )  # fmt: skip
    exported = yaml.safe_load(cli.ok("export").stdout)
    exported["orchestrations"][0]["options"]["attribution_window_days"] = 7
    exported["orchestrations"][0]["sql"] = "SELECT order_id AS event_id FROM orders"
    exported["destinations"][0]["settings"]["batch_size"] = 300
    monkeypatch.setenv("PLAN_SECRET", "plan-secret-1618-unseen")
    exported["credentials"][0]["settings"]["app_secret"] = "env:PLAN_SECRET"
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(exported, sort_keys=False))

    result = cli.ok("apply", "--file", str(tmp_path / "changed.yaml"), "--dry-run")

    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "~ credential tiktok-main (app_secret)" in lines
    assert "~ destination stores (batch_size)" in lines
    assert "~ orchestration store-orders (options.attribution_window_days, sql)" in lines
    assert "plan-secret-1618-unseen" not in result.output
