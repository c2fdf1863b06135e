"""`offramp export` and `offramp apply`: configuration as YAML, reviewed in git, applied with a plan first."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from offramp.core.cli import app
from offramp.core.cli.common import build_context
from offramp.core.services.credentials import credential_settings, get_credential
from offramp.core.services.workspaces import get_workspace

SECRETS = {
    "TT_APP_SECRET": "tt-app-secret-31337",
    "SANDBOX_TOKEN": "sandbox-token-2718",
    # Given as a literal on the command line; export names a variable after the object and field.
    "SHOP_TOKEN_TOKEN": "literal-token-1618",
}

ORDERS_SQL = """\
-- store purchases, one row per line item
SELECT order_id AS event_id, 'Order Completed' AS event, email, phone, purchased_at AS timestamp
FROM orders
WHERE purchased_at > now() - INTERVAL 2 DAY"""


def _populate(cli, folder: Path) -> None:
    """Two workspaces with credentials, destinations and orchestrations of every kind, made with the CLI."""
    (folder / "orders.sql").write_text(ORDERS_SQL)
    commands = [
        ["init"],
        ["credentials", "add", "tiktok-main", "--type", "tiktok-offline-events", "--set", "app_id=7001",
         "--set", "app_secret=env:TT_APP_SECRET", "--set", "api_base_url=http://127.0.0.1:9321"],
        ["credentials", "add", "shop-token", "--type", "static-token", "--set", f"token={SECRETS['SHOP_TOKEN_TOKEN']}"],
        ["destinations", "add", "tiktok-stores", "--type", "tiktok-ads-offline-events", "--credential", "tiktok-main",
         "--no-test", "--set", "advertiser_id=7002", "--set", "event_set_id=7003",
         "--set", "event_set_name=Stores, West", "--set", "auto_tracking=true", "--set", "limited_data_use=true",
         "--set", "batch_size=500", "--set", "fixed_event_name=CompletePayment"],
        ["destinations", "add", "sink", "--type", "dummy", "--credential", "shop-token",
         "--set", "batch_size=250", "--set", "reject_prob=0.05", "--set", "seed=7"],
        ["orchestrations", "add", "orders", "--destination", "tiktok-stores", "--sql-file", str(folder / "orders.sql"),
         "--source", "env:WAREHOUSE_URL", "--mode", "new", "--timezone", "America/Los_Angeles",
         "--phone-region", "GB", "--map", "Order Completed=CompletePayment", "--map", "Lead: form=SubmitForm",
         "--test-event-code", "TEST42", "--schedule", "30 2 * * *"],
        ["orchestrations", "add", "leads", "--destination", "sink", "--sql", "SELECT id AS event_id FROM leads",
         "--source", "duckdb:crm.duckdb"],
        ["orchestrations", "add", "app-events", "--destination", "sink", "--sql", "SELECT 1 AS event_id",
         "--source", "postgresql+psycopg://reader@db.internal/analytics"],
        ["workspaces", "add", "sandbox"],
        ["credentials", "add", "shop-token", "-w", "sandbox", "--type", "static-token",
         "--set", "token=env:SANDBOX_TOKEN"],
        ["destinations", "add", "sink", "-w", "sandbox", "--type", "dummy", "--credential", "shop-token"],
    ]  # fmt: skip
    for command in commands:
        cli(*command)
    # Groups are made through apply: add one to the exported file.
    document = yaml.safe_load(cli("export"))
    document["groups"] = [
        {"name": "nightly", "schedule": "0 2 * * *", "timezone": "Europe/Berlin", "orchestrations": ["leads", "orders"]}
    ]
    assert "+ group nightly" in cli("apply", "-f", write(folder / "with-group.yaml", document))


@pytest.fixture(scope="module")
def populated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home made once per module (the CLI calls take a while); each test gets its own copy."""
    folder = tmp_path_factory.mktemp("populated")
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, f"offramp {' '.join(args)} failed:\n{result.output}"
        return result.stdout

    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in [name for name in os.environ if name.startswith("OFFRAMP_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("OFFRAMP_HOME", str(folder / "home"))
        monkeypatch.setenv("TT_APP_SECRET", SECRETS["TT_APP_SECRET"])
        monkeypatch.setenv("SANDBOX_TOKEN", SECRETS["SANDBOX_TOKEN"])
        monkeypatch.chdir(folder)
        _populate(cli, folder)
    return folder / "home"


@pytest.fixture
def populated(populated_home: Path, offramp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's home: a copy of the populated one, with the variables its secrets were read from."""
    shutil.copytree(populated_home, offramp_home)
    for name in ("TT_APP_SECRET", "SANDBOX_TOKEN"):
        monkeypatch.setenv(name, SECRETS[name])
    return offramp_home


def snapshot(cli) -> tuple[str, ...]:
    """Everything a change could touch, as the CLI shows it."""
    return (
        cli.ok("workspaces", "list", "--json").stdout,
        cli.ok("export").stdout,
        cli.ok("export", "-w", "sandbox").stdout,
        cli.ok("audit", "--json", "--limit", "1000").stdout,
    )


def write(path: Path, document: dict) -> str:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


def test_export_writes_every_object_with_secrets_as_env_references(cli, populated):
    text = cli.ok("export").stdout
    document = yaml.safe_load(text)

    for value in SECRETS.values():
        assert value not in text
    assert document["workspace"] == "production"
    credentials = {c["name"]: c for c in document["credentials"]}
    assert credentials["tiktok-main"]["settings"]["app_secret"] == "env:TT_APP_SECRET"
    assert credentials["tiktok-main"]["settings"]["api_base_url"] == "http://127.0.0.1:9321"
    assert credentials["shop-token"]["settings"]["token"] == "env:SHOP_TOKEN_TOKEN"
    destinations = {d["name"]: d for d in document["destinations"]}
    assert destinations["tiktok-stores"]["credential"] == "tiktok-main"
    assert destinations["tiktok-stores"]["settings"]["event_set_name"] == "Stores, West"
    assert destinations["sink"]["settings"] == {"batch_size": 250, "reject_prob": 0.05, "seed": 7}
    orchestrations = {o["name"]: o for o in document["orchestrations"]}
    assert orchestrations["orders"]["source"] == "env:WAREHOUSE_URL"
    assert orchestrations["orders"]["sql"].rstrip("\n") == ORDERS_SQL
    assert orchestrations["orders"]["options"]["event_name_map"] == {
        "Order Completed": "CompletePayment",
        "Lead: form": "SubmitForm",
    }
    assert orchestrations["leads"]["source"] == "duckdb:crm.duckdb"
    assert document["groups"] == [
        {"name": "nightly", "schedule": "0 2 * * *", "timezone": "Europe/Berlin", "orchestrations": ["leads", "orders"]}
    ]
    assert "\n  sql: |" in text  # the query reads as a block, the way it diffs best

    sandbox = yaml.safe_load(cli.ok("export", "--workspace", "sandbox").stdout)
    assert sandbox["workspace"] == "sandbox"
    assert [c["settings"] for c in sandbox["credentials"]] == [{"token": "env:SANDBOX_TOKEN"}]
    assert sandbox["orchestrations"] == []


def test_export_to_a_file(cli, populated, tmp_path):
    result = cli.ok("export", "-o", str(tmp_path / "production.yaml"))

    assert f"Wrote {tmp_path / 'production.yaml'}." in result.stdout
    assert (tmp_path / "production.yaml").read_text() == cli.ok("export").stdout


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_export_apply_to_an_empty_store_export_again_is_identical_byte_for_byte(
    cli, populated, tmp_path, request, backend
):
    first = {ws: cli.ok("export", "-w", ws).stdout for ws in ("production", "sandbox")}
    for ws, text in first.items():
        (tmp_path / f"{ws}.yaml").write_text(text)

    other: dict[str, str] = {"OFFRAMP_HOME": str(tmp_path / "other-home"), **SECRETS}
    if backend == "postgresql":
        other["OFFRAMP_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    cli.ok("init", env=other)
    applied = cli.ok("apply", "-f", str(tmp_path / "production.yaml"), env=other).stdout
    assert "Plan for workspace production: 8 to add, 0 to change, 0 to remove" in applied
    for line in ("+ credential tiktok-main", "+ destination tiktok-stores", "+ orchestration leads", "+ group nightly"):
        assert f"  {line}\n" in applied
    assert "Applied." in applied
    assert "+ workspace sandbox" in cli.ok("apply", "-f", str(tmp_path / "sandbox.yaml"), env=other).stdout

    second = {ws: cli.ok("export", "-w", ws, env=other).stdout for ws in ("production", "sandbox")}

    assert second["production"].encode() == first["production"].encode()
    assert second["sandbox"].encode() == first["sandbox"].encode()
    # The secrets were read from the variables the file names, and encrypted under the other store's key.
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in other.items():
            monkeypatch.setenv(name, value)
        assert _stored_secret("shop-token", "token") == SECRETS["SHOP_TOKEN_TOKEN"]
        assert _stored_secret("tiktok-main", "app_secret") == SECRETS["TT_APP_SECRET"]
        assert _stored_secret("shop-token", "token", "sandbox") == SECRETS["SANDBOX_TOKEN"]


def _stored_secret(name: str, field: str, workspace: str = "production") -> str:
    ctx = build_context()
    try:
        with ctx.store.session() as session:
            row = get_credential(session, get_workspace(session, workspace), name)
            return getattr(credential_settings(ctx, row), field).get_secret_value()
    finally:
        ctx.store.dispose()


def test_applying_the_export_to_its_own_store_has_nothing_to_do(cli, populated, tmp_path, monkeypatch):
    (tmp_path / "production.yaml").write_text(cli.ok("export").stdout)
    before = snapshot(cli)
    monkeypatch.delenv("TT_APP_SECRET")  # an unset variable keeps the stored secret of an existing credential

    result = cli.ok("apply", "-f", str(tmp_path / "production.yaml"))

    assert "Plan for workspace production: 0 to add, 0 to change, 0 to remove" in result.stdout
    assert "Nothing to do" in result.stdout
    assert snapshot(cli) == before


def modified(cli, tmp_path: Path) -> str:
    """The production export with one credential added, two objects changed and one orchestration removed."""
    document = yaml.safe_load(cli.ok("export").stdout)
    document["credentials"].append({"name": "new-token", "type": "static-token", "settings": {"token": "env:NEW_TOK"}})
    sink = next(d for d in document["destinations"] if d["name"] == "sink")
    sink["settings"]["batch_size"] = 500
    orders = next(o for o in document["orchestrations"] if o["name"] == "orders")
    orders["options"]["timezone"] = "Europe/London"
    document["orchestrations"] = [o for o in document["orchestrations"] if o["name"] != "app-events"]
    return write(tmp_path / "modified.yaml", document)


def test_apply_prints_the_plan_then_applies_it_and_a_second_apply_has_nothing_to_do(
    cli, cli_json, populated, tmp_path, monkeypatch
):
    monkeypatch.setenv("NEW_TOK", "new-token-value-99")
    path = modified(cli, tmp_path)

    lines = cli.ok("apply", "-f", path, "--actor", "reviewer").stdout.splitlines()

    assert lines[0] == "Plan for workspace production: 1 to add, 2 to change, 1 to remove"
    assert [line.strip() for line in lines[1:5]] == [
        "+ credential new-token",
        "~ destination sink (batch_size)",
        "~ orchestration orders (options.timezone)",
        "- orchestration app-events",
    ]
    assert lines[-1] == "Applied."
    assert cli_json("destinations", "show", "sink")["settings"]["batch_size"] == 500
    assert cli_json("orchestrations", "show", "orders")["options"]["timezone"] == "Europe/London"
    assert [o["name"] for o in cli_json("orchestrations", "list")] == ["leads", "orders"]
    assert _stored_secret("new-token", "token") == "new-token-value-99"

    trail = [(e["actor"], e["action"], e["object_type"], e["object_name"]) for e in cli_json("audit", "--limit", "5")]
    assert trail == [
        ("reviewer", "apply", "workspace", "production"),
        ("reviewer", "delete", "orchestration", "app-events"),
        ("reviewer", "update", "orchestration", "orders"),
        ("reviewer", "update", "destination", "sink"),
        ("reviewer", "create", "credential", "new-token"),
    ]

    again = cli.ok("apply", "-f", path).stdout
    assert "0 to add, 0 to change, 0 to remove" in again
    assert "Nothing to do: the store already matches the file." in again


def test_dry_run_prints_the_plan_and_changes_nothing(cli, populated, tmp_path, monkeypatch):
    monkeypatch.setenv("NEW_TOK", "new-token-value-99")
    path = modified(cli, tmp_path)
    before = snapshot(cli)

    result = cli.ok("apply", "-f", path, "--dry-run")

    assert "Plan for workspace production: 1 to add, 2 to change, 1 to remove" in result.stdout
    assert "~ destination sink (batch_size)" in result.stdout
    assert "- orchestration app-events" in result.stdout
    assert "Dry run: nothing was changed." in result.stdout
    assert snapshot(cli) == before
    # ... and the real apply afterwards still has the whole plan to do.
    assert "1 to add, 2 to change, 1 to remove" in cli.ok("apply", "-f", path).stdout


def test_a_dry_run_that_creates_a_workspace_creates_nothing(cli, populated, tmp_path, monkeypatch):
    document = yaml.safe_load(cli.ok("export", "-w", "sandbox").stdout)
    document["workspace"] = "staging"
    before = snapshot(cli)

    result = cli.ok("apply", "-f", write(tmp_path / "staging.yaml", document), "--dry-run")

    assert "+ workspace staging" in result.stdout
    assert snapshot(cli) == before


def test_apply_reads_the_file_from_stdin(cli, cli_json, populated):
    document = yaml.safe_load(cli.ok("export").stdout)
    next(d for d in document["destinations"] if d["name"] == "sink")["settings"]["seed"] = 8

    result = cli.ok("apply", "-f", "-", input=yaml.safe_dump(document))

    assert "~ destination sink (seed)" in result.stdout
    assert cli_json("destinations", "show", "sink")["settings"]["seed"] == 8


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda d: d["credentials"].append({"name": "t2", "type": "static-token", "settings": {"token": "hunter2"}}),
            "credential 't2': token is a secret; write it as env:VARIABLE, never as a value",
            id="literal-secret-new-object",
        ),
        pytest.param(
            lambda d: next(c for c in d["credentials"] if c["name"] == "shop-token")["settings"].update(
                token="hunter2"
            ),
            "credential 'shop-token' (static-token): token is a secret and is written as a value",
            id="literal-secret-existing-object",
        ),
        pytest.param(
            lambda d: next(c for c in d["destinations"] if c["name"] == "tiktok-stores")["settings"].update(
                batch_size=5000, advertiser_id="act_1"
            ),
            "invalid settings for destination 'tiktok-stores'",
            id="invalid-settings",
        ),
        pytest.param(
            lambda d: d["destinations"][0].update(colour="red"),
            "destinations.0.colour",
            id="unknown-key",
        ),
        pytest.param(lambda d: d.update(colour="red"), "colour", id="unknown-top-level-key"),
        pytest.param(
            lambda d: d["credentials"].append({"name": "x", "type": "carrier-pigeon"}),
            "no credential type named 'carrier-pigeon'",
            id="unknown-type",
        ),
        pytest.param(
            lambda d: d["credentials"].append({"name": "x", "type": "static-token", "settings": {"token": "env:NOPE"}}),
            "environment variable NOPE is not set",
            id="unset-variable",
        ),
        pytest.param(
            lambda d: d["orchestrations"][0].update(source="postgresql://u:pw@db/x"),
            "the URL holds a password",
            id="password-in-source",
        ),
        pytest.param(
            lambda d: d["credentials"].append(dict(d["credentials"][0])),
            "credential names appear twice in the file",
            id="duplicate-name",
        ),
        pytest.param(
            lambda d: d["credentials"].clear(),
            "credential 'shop-token' is used by destination(s) sink",
            id="remove-a-credential-in-use",
        ),
    ],
)
def test_an_invalid_file_is_one_line_and_changes_nothing(cli, cli_error, populated, tmp_path, change, expected):
    document = yaml.safe_load(cli.ok("export").stdout)
    # A valid change in the same file must not be applied either.
    next(d for d in document["destinations"] if d["name"] == "sink")["settings"]["batch_size"] = 999
    change(document)
    path = write(tmp_path / "bad.yaml", document)
    before = snapshot(cli)

    line = cli_error("apply", "-f", path)

    assert expected in line
    assert snapshot(cli) == before


def test_invalid_settings_in_a_file_are_named_field_by_field(cli_error, cli, populated, tmp_path):
    document = yaml.safe_load(cli.ok("export").stdout)
    next(d for d in document["destinations"] if d["name"] == "tiktok-stores")["settings"].update(
        batch_size=5000, advertiser_id="act_1"
    )
    next(d for d in document["destinations"] if d["name"] == "sink")["settings"].update(reject_prob=2)

    line = cli_error("apply", "-f", write(tmp_path / "bad.yaml", document))

    assert "tiktok-stores" in line and "batch_size:" in line and "advertiser_id:" in line
    assert "sink" in line and "reject_prob:" in line
    assert "nothing was changed" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workspace: production\ncredentials: [\n", "is not valid YAML at line"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("version: 2\nworkspace: production\n", "version"),
        ("credentials: []\n", "workspace"),
    ],
)
def test_a_malformed_file_is_one_line_and_changes_nothing(cli, cli_error, populated, tmp_path, text, expected):
    (tmp_path / "bad.yaml").write_text(text)
    before = snapshot(cli)

    line = cli_error("apply", "-f", str(tmp_path / "bad.yaml"))

    assert expected in line
    assert snapshot(cli) == before


def test_a_missing_file_is_one_line(cli_error, initialized):
    assert "cannot read missing.yaml: No such file or directory" in cli_error("apply", "-f", "missing.yaml")


def test_audit_json_parses(cli, populated):
    events = json.loads(cli.ok("audit", "--json").stdout)

    assert {"apply", "create", "init"} <= {e["action"] for e in events}
    for value in SECRETS.values():
        assert value not in json.dumps(events)
