"""How the CLI fails and helps: one line for a mistake, a traceback only with --debug, --help everywhere."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from offramp.core._version import __version__
from offramp.core.cli import app
from offramp.core.errors import ObjectNotFoundError, OfframpError, StoreNotInitializedError

COMMANDS = [
    "demo", "init", "plugins", "credentials", "destinations", "orchestrations", "run", "runs", "emulator", "bench",
    "export", "apply", "secrets", "audit", "workspaces", "sources", "sandboxes", "promotions", "groups", "schedules",
    "scheduler", "alerts", "status",
]  # fmt: skip
GROUPS = ["plugins", "credentials", "destinations", "orchestrations", "runs", "emulator", "secrets", "workspaces",
          "sources", "sandboxes", "promotions", "groups", "schedules", "alerts"]  # fmt: skip


def listed_commands(help_text: str) -> list[str]:
    section = help_text.split("Commands:", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()]


def test_help_lists_every_command_group(cli):
    result = cli.ok("--help")

    assert result.stdout.startswith("Usage: ")
    assert sorted(listed_commands(result.stdout)) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(cli, command):
    result = cli.ok(command, "--help")

    assert "Usage: " in result.stdout
    assert command in result.stdout


@pytest.mark.parametrize("group", GROUPS)
def test_every_subcommand_has_help(cli, group):
    for sub in listed_commands(cli.ok(group, "--help").stdout):
        assert "Usage: " in cli.ok(group, sub, "--help").stdout


def test_version(cli):
    assert cli.ok("--version").stdout.strip() == f"offramp {__version__}"


def test_a_command_before_init_says_to_run_init(cli_error, offramp_home):
    line = cli_error("credentials", "list")

    assert f"no state store in {offramp_home}" in line
    assert "run `offramp init`" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["credentials", "show", "nope"], "no credential named 'nope' in workspace 'production'"),
        (["destinations", "delete", "nope"], "no destination named 'nope'"),
        (["orchestrations", "show", "nope", "--json"], "no orchestration named 'nope'"),
        (["credentials", "list", "-w", "nope"], "no workspace named 'nope'"),
        (["plugins", "show", "nope"], "nope"),
        (["export", "-w", "nope"], "no workspace named 'nope'"),
        (["run", "orders"], "no orchestration named 'orders'"),
    ],
)
def test_a_mistake_is_one_line_with_what_to_do(cli_error, initialized, args, expected):
    line = cli_error(*args)

    assert expected in line
    assert " - " in line  # followed by what to do


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["credentials", "add", "x"], "Missing option '--type'"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["credentials", "list", "--no-such-option"], "No such option: --no-such-option"),
        (["audit", "--limit", "many"], "Invalid value for '--limit'"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(cli, initialized, args, expected):
    result = cli(*args)

    assert result.exit_code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_a_corrupted_store_is_one_line_naming_the_store_and_the_cause(cli_error, initialized):
    (initialized / "offramp.db").write_bytes(b"this is not a database")
    for leftover in initialized.glob("offramp.db-*"):
        leftover.unlink()

    line = cli_error("credentials", "list")

    assert "cannot open the state store" in line
    assert "offramp.db" in line
    assert "file is not a database" in line
    assert "OFFRAMP_HOME" in line


def test_debug_lets_the_error_and_its_traceback_through(cli, initialized):
    with pytest.raises(ObjectNotFoundError) as raised:
        cli("--debug", "credentials", "show", "nope")

    assert raised.value.message == "no credential named 'nope' in workspace 'production' (existing: none)"
    assert raised.value.hint == "see `offramp credentials list`"


def test_debug_from_the_environment(cli, offramp_home):
    with pytest.raises(StoreNotInitializedError):
        cli("credentials", "list", env={"OFFRAMP_DEBUG": "1"})


def test_with_debug_a_runner_that_catches_exceptions_gets_the_offramp_error(initialized):
    result = CliRunner().invoke(app, ["--debug", "destinations", "show", "nope"], catch_exceptions=True)

    assert result.exit_code == 1
    assert isinstance(result.exception, OfframpError)
    assert isinstance(result.exception, ObjectNotFoundError)
    assert "no destination named 'nope'" in str(result.exception)


def test_without_debug_no_exception_escapes(initialized):
    result = CliRunner().invoke(app, ["destinations", "show", "nope"], catch_exceptions=True)

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("offramp: error: no destination named 'nope'")


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (["runs", "show", "nope"], "no run with id 'nope'", "offramp runs list"),
        (["orchestrations", "show", "nope"], "no orchestration named 'nope'", "offramp orchestrations list"),
        (["run", "nope"], "no orchestration named 'nope'", "offramp orchestrations list"),
        (["orchestrations", "list", "-w", "nope"], "no workspace named 'nope'", "offramp sandboxes create nope"),
    ],
)
def test_a_failing_command_under_json_prints_the_error_as_json_and_keeps_its_exit_status(
    cli, initialized, args, error, hint
):
    result = cli(*args, "--json")

    assert result.exit_code == 1
    answer = json.loads(result.stdout)  # one JSON object, nothing else on stdout
    assert list(answer) == ["error", "hint"]
    assert error in answer["error"]
    assert hint in answer["hint"]
    assert result.stderr.strip() == f"offramp: error: {answer['error']} - {answer['hint']}"


def test_a_store_that_cannot_be_opened_under_json_is_a_json_error_too(cli, initialized):
    (initialized / "offramp.db").write_bytes(b"this is not a database")
    for leftover in initialized.glob("offramp.db-*"):
        leftover.unlink()

    result = cli("runs", "list", "--json")

    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert list(answer) == ["error", "hint"]
    assert "cannot open the state store" in answer["error"]
    assert "OFFRAMP_HOME" in answer["hint"]


def test_without_json_a_failure_prints_nothing_on_stdout(cli, initialized):
    result = cli("runs", "show", "nope")

    assert result.exit_code == 1
    assert result.stdout == ""


def test_an_unknown_audit_type_is_a_usage_error_listing_the_types(cli, initialized):
    from offramp.core.services.audit import OBJECT_TYPES

    result = cli("audit", "--type", "orchestrationz")

    assert result.exit_code == 2
    assert "Invalid value for '--type'" in result.stderr
    assert f"unknown object type 'orchestrationz'; the types are: {', '.join(OBJECT_TYPES)}" in result.stderr
    assert "run" in OBJECT_TYPES
    assert cli.ok("audit", "--type", "run").exit_code == 0
