"""Workspaces scope every object; every change leaves an audit event that no command removes."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime

import pytest


@pytest.fixture
def sandbox(cli, initialized) -> str:
    assert "Added workspace sandbox." in cli.ok("workspaces", "add", "sandbox", "--description", "trying").stdout
    return "sandbox"


def add_chain(cli, workspace: str, token_variable: str) -> None:
    """One credential, destination and orchestration, all called `shop`, in ``workspace``."""
    token = f"token=env:{token_variable}"
    cli.ok("credentials", "add", "shop", "-w", workspace, "--type", "static-token", "--set", token)
    cli.ok("destinations", "add", "shop", "-w", workspace, "--type", "dummy", "--credential", "shop")
    cli.ok("orchestrations", "add", "shop", "-w", workspace, "--destination", "shop", "--sql", "SELECT 1 AS event_id")


def test_workspaces_list(cli_json, sandbox):
    data = cli_json("workspaces", "list")

    assert [(w["name"], w["description"]) for w in data] == [
        ("production", "Production configuration"),
        ("sandbox", "trying"),
    ]


def test_the_same_names_live_in_two_workspaces_without_seeing_each_other(cli, cli_json, sandbox, token_env):
    add_chain(cli, "production", token_env)
    cli.ok("credentials", "add", "only-in-sandbox", "--workspace", sandbox, "--type", "static-token",
           "--set", f"token=env:{token_env}")  # fmt: skip
    add_chain(cli, sandbox, token_env)

    for kind in ("credentials", "destinations", "orchestrations"):
        assert cli_json(kind, "show", "shop", "-w", sandbox)["workspace"] == "sandbox"
        assert cli_json(kind, "show", "shop")["workspace"] == "production"
    assert [c["name"] for c in cli_json("credentials", "list")] == ["shop"]
    own = [c["name"] for c in cli_json("credentials", "list", "-w", sandbox) if not c.get("shared_from")]
    assert own == ["only-in-sandbox", "shop"]  # production's shop is listed too, shared and shadowed
    assert "only-in-sandbox" not in cli.ok("credentials", "list").stdout

    # Deleting in one workspace leaves the other alone.
    cli.ok("orchestrations", "delete", "shop", "-w", sandbox)
    assert cli_json("orchestrations", "list", "-w", sandbox) == []
    assert [o["name"] for o in cli_json("orchestrations", "list")] == ["shop"]


def test_the_default_workspace_comes_from_the_environment(cli, cli_json, sandbox, token_env):
    cli.ok("credentials", "add", "tok", "--type", "static-token", "--set", f"token=env:{token_env}",
           env={"OFFRAMP_WORKSPACE": sandbox})  # fmt: skip

    assert [c["name"] for c in cli_json("credentials", "list", "-w", sandbox)] == ["tok"]
    assert cli_json("credentials", "list") == []
    assert [c["name"] for c in cli_json("credentials", "list", env={"OFFRAMP_WORKSPACE": sandbox})] == ["tok"]


def test_an_unknown_workspace_names_the_existing_ones_and_how_to_create_it(cli_error, sandbox):
    line = cli_error("credentials", "list", "-w", "staging")

    assert "no workspace named 'staging' (existing: production, sandbox)" in line
    assert "offramp sandboxes create staging" in line


@pytest.mark.parametrize(
    ("name", "expected"),
    [("production", "workspace 'production' already exists"), ("Big Sandbox", "invalid workspace name 'Big Sandbox'")],
)
def test_workspace_name_mistakes(cli_error, initialized, name, expected):
    assert expected in cli_error("workspaces", "add", name)


def test_a_workspace_holding_objects_is_not_deleted(cli, cli_json, cli_error, sandbox, token_env):
    cli.ok("credentials", "add", "tok", "-w", sandbox, "--type", "static-token", "--set", f"token=env:{token_env}")

    assert "workspace 'sandbox' still holds 1 credentials" in cli_error("workspaces", "delete", sandbox)

    cli.ok("credentials", "delete", "tok", "-w", sandbox)
    assert "Deleted workspace sandbox." in cli.ok("workspaces", "delete", sandbox).stdout
    assert [w["name"] for w in cli_json("workspaces", "list")] == ["production"]


def test_every_change_is_audited_with_actor_action_object_and_time(cli, cli_json, initialized, token_env):
    before = datetime.now(UTC)
    cli.ok("workspaces", "add", "sandbox")
    cli.ok("credentials", "add", "tok", "--type", "static-token", "--set", f"token=env:{token_env}")
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", "tok", "--actor", "alice")
    cli.ok("orchestrations", "add", "orders", "--destination", "sink", "--sql", "SELECT 1", "--actor", "bob")
    cli.ok("orchestrations", "delete", "orders", "--actor", "bob")
    cli.ok("destinations", "delete", "sink")
    cli.ok("credentials", "delete", "tok", "--actor", "carol")
    cli.ok("workspaces", "delete", "sandbox")
    after = datetime.now(UTC)

    events = cli_json("audit")

    user = getpass.getuser()
    trail = [(e["actor"], e["action"], e["object_type"], e["object_name"], e["workspace"]) for e in reversed(events)]
    assert trail == [
        (user, "init", "store", None, None),
        (user, "create", "workspace", "sandbox", "sandbox"),
        (user, "create", "credential", "tok", "production"),
        ("alice", "create", "destination", "sink", "production"),
        ("bob", "create", "orchestration", "orders", "production"),
        ("bob", "delete", "orchestration", "orders", "production"),
        (user, "delete", "destination", "sink", "production"),
        ("carol", "delete", "credential", "tok", "production"),
        (user, "delete", "workspace", "sandbox", "sandbox"),
    ]
    times = [datetime.fromisoformat(e["at"]) for e in events]
    assert all(before <= at <= after for at in times[:-1])  # the last is `offramp init`, run by the fixture
    assert times == sorted(times, reverse=True)  # newest first

    table = cli.ok("audit").stdout
    assert "credential tok" in table
    assert "carol" in table


def test_audit_events_outlive_the_objects_they_describe(cli, cli_json, with_token):
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", with_token)
    cli.ok("destinations", "delete", "sink")
    cli.ok("credentials", "delete", with_token)

    events = cli_json("audit", "--type", "destination")

    assert [(e["action"], e["object_name"]) for e in events] == [("delete", "sink"), ("create", "sink")]
    assert [(e["action"], e["object_name"]) for e in cli_json("audit", "--type", "credential")] == [
        ("delete", "shop-token"),
        ("create", "shop-token"),
    ]


def test_audit_filters_by_workspace_and_limits(cli, cli_json, sandbox, token_env):
    cli.ok("credentials", "add", "a", "-w", sandbox, "--type", "static-token", "--set", f"token=env:{token_env}")
    cli.ok("credentials", "add", "b", "--type", "static-token", "--set", f"token=env:{token_env}")

    assert [e["object_name"] for e in cli_json("audit", "-w", sandbox)] == ["a", "sandbox"]
    assert [e["object_name"] for e in cli_json("audit", "--limit", "1")] == ["b"]


def test_no_command_deletes_audit_events(cli):
    """Nothing in the command tree offers to remove, purge or prune the audit trail."""
    from offramp.core.cli import app

    text = cli.ok("audit", "--help").stdout
    assert "Usage: " in text
    commands = _command_names(app)
    assert not [name for name in commands if "audit" in name and any(w in name for w in ("delete", "purge", "prune"))]
    assert " audit" in commands


def _command_names(app) -> list[str]:
    import typer

    group = typer.main.get_command(app)

    def walk(command, prefix: str) -> list[str]:
        names = [prefix]
        for name, sub in getattr(command, "commands", {}).items():
            names.extend(walk(sub, f"{prefix} {name}"))
        return names

    return walk(group, "")
