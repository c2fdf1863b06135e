"""`offramp credentials add|list|show|delete`: typed, validated, encrypted, never shown."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from offramp.core.cli.common import build_context
from offramp.core.services.credentials import credential_settings, get_credential
from offramp.core.services.workspaces import get_workspace

APP_SECRET = "app-secret-9d8e7f"


@pytest.fixture
def tiktok_credential(cli, initialized, monkeypatch) -> str:
    monkeypatch.setenv("TT_APP_SECRET", APP_SECRET)
    cli.ok(
        "credentials", "add", "tiktok-main", "--type", "tiktok-offline-events",
        "--set", "app_id=7001", "--set", "app_secret=env:TT_APP_SECRET",
    )  # fmt: skip
    return "tiktok-main"


def stored_secret(name: str, field: str, workspace: str = "production") -> str:
    """The decrypted value the store holds, read through the service layer the runner uses."""
    ctx = build_context()
    try:
        with ctx.store.session() as session:
            row = get_credential(session, get_workspace(session, workspace), name)
            return getattr(credential_settings(ctx, row), field).get_secret_value()
    finally:
        ctx.store.dispose()


def test_add_reads_a_secret_from_an_environment_variable(cli, initialized, monkeypatch):
    monkeypatch.setenv("TT_APP_SECRET", APP_SECRET)

    result = cli.ok(
        "credentials", "add", "tiktok-main", "--type", "tiktok-offline-events",
        "--set", "app_id=7001", "--set", "app_secret=env:TT_APP_SECRET",
    )  # fmt: skip

    assert "Added credential tiktok-main (tiktok-offline-events) to workspace production." in result.stdout
    assert APP_SECRET not in result.output
    assert stored_secret("tiktok-main", "app_secret") == APP_SECRET


def test_show_says_a_secret_is_set_and_when_it_changed_never_its_value(cli, cli_json, tiktok_credential):
    data = cli_json("credentials", "show", tiktok_credential)

    assert data["name"] == "tiktok-main"
    assert data["type"] == "tiktok-offline-events"
    assert data["workspace"] == "production"
    assert data["settings"]["app_id"] == "7001"
    assert data["settings"]["api_base_url"] == "https://business-api.tiktok.com"  # defaults are shown
    assert data["secrets"]["app_secret"].startswith("set (changed 20")
    assert data["secrets"]["refresh_token"] == "not set"
    assert "app_secret" not in data["settings"]
    assert data["used_by"] == []

    text = cli.ok("credentials", "show", tiktok_credential).stdout
    assert "app_secret: set (changed" in text
    for output in (
        text,
        cli.ok("credentials", "show", tiktok_credential, "--json").stdout,
        cli.ok("credentials", "list").stdout,
        cli.ok("credentials", "list", "--json").stdout,
        cli.ok("export").stdout,
        cli.ok("audit", "--json").stdout,
    ):
        assert APP_SECRET not in output


def test_secrets_are_encrypted_at_rest(cli, initialized):
    cli.ok("credentials", "add", "tok", "--type", "static-token", "--set", "token=plain-looking-token-4411")

    stored = b"".join(path.read_bytes() for path in initialized.glob("offramp.db*"))
    assert b"plain-looking-token-4411" not in stored
    assert stored_secret("tok", "token") == "plain-looking-token-4411"


def test_list_shows_every_credential_with_its_type_and_users(cli, cli_json, tiktok_credential, token_env):
    cli.ok("credentials", "add", "shop-token", "--type", "static-token", "--set", f"token=env:{token_env}")
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", "shop-token")

    data = cli_json("credentials", "list")

    assert [(c["name"], c["type"], c["used_by"]) for c in data] == [
        ("shop-token", "static-token", ["sink"]),
        ("tiktok-main", "tiktok-offline-events", []),
    ]
    assert all(c["updated_at"] for c in data)
    assert "shop-token" in cli.ok("credentials", "list").stdout


def test_a_missing_secret_off_a_terminal_is_one_line_naming_the_field(cli, cli_error, initialized):
    line = cli_error("credentials", "add", "tiktok-main", "--type", "tiktok-offline-events", "--set", "app_id=7001")

    assert "app_secret" in line
    assert "env:" in line  # says how to give it
    assert cli.ok("credentials", "list", "--json").stdout.strip() == "[]"


def test_a_missing_secret_is_prompted_for_without_echo_on_a_terminal(cli, initialized, offramp_home):
    """The real console script on a pseudo-terminal: it asks, the typed value is not echoed, and it is stored."""
    script = Path(sys.executable).with_name("offramp")
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(script), "credentials", "add", "typed", "--type", "static-token"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=os.environ.copy(),
        start_new_session=True,
    )
    os.close(terminal)
    screen = b""
    try:
        # click prints the prompt, then getpass turns echo off (dropping what was typed so far) and prints " ".
        screen += _read_until(controller, b"token (input hidden): ", process)
        os.write(controller, b"typed-secret-5150\n")
        screen += _read_until(controller, b"Added credential typed", process)
        assert process.wait(timeout=60) == 0, screen.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)

    assert b"typed-secret-5150" not in screen
    assert stored_secret("typed", "token") == "typed-secret-5150"


def _read_until(fd: int, wanted: bytes, process: subprocess.Popen[bytes], timeout: float = 60.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for {wanted!r}; the terminal shows {seen!r}"
        ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the process closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"the process ended before printing {wanted!r}; it printed {seen!r}")
            seen += chunk
        elif process.poll() is not None:
            raise AssertionError(f"the process exited ({process.returncode}) before {wanted!r}; it printed {seen!r}")
    return seen


def test_an_unset_environment_variable_is_named(cli_error, initialized):
    line = cli_error("credentials", "add", "tok", "--type", "static-token", "--set", "token=env:NOT_SET_ANYWHERE")

    assert "NOT_SET_ANYWHERE" in line
    assert "token" in line


def test_every_invalid_setting_is_reported_at_once_by_name(cli, cli_error, initialized):
    line = cli_error(
        "credentials", "add", "tiktok-main", "--type", "tiktok-offline-events",
        "--set", "app_id=", "--set", "api_base_url=not-a-url", "--set", "app_scret=typo", "--set", "app_secret=x",
    )  # fmt: skip

    assert "credential 'tiktok-main'" in line
    for field in ("app_id", "api_base_url", "app_scret"):
        assert f"{field}:" in line
    assert "unknown field" in line
    assert "offramp plugins show tiktok-offline-events" in line
    assert cli.ok("credentials", "list", "--json").stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--type", "no-such-type", "--set", "a=b"], ["no credential type named 'no-such-type'", "static-token"]),
        (["--type", "static-token", "--set", "token"], ["--set expects key=value", "'token'"]),
    ],
)
def test_type_and_setting_syntax_mistakes_are_named(cli_error, initialized, args, expected):
    line = cli_error("credentials", "add", "tok", *args)

    for text in expected:
        assert text in line


def test_an_invalid_name_says_what_is_allowed(cli_error, initialized, token_env):
    line = cli_error("credentials", "add", "has space", "--type", "static-token", "--set", f"token=env:{token_env}")

    assert "invalid credential name 'has space'" in line
    assert "letters, digits" in line


def test_a_name_is_used_once_per_workspace(cli_error, with_token, token_env):
    line = cli_error("credentials", "add", with_token, "--type", "static-token", "--set", f"token=env:{token_env}")

    assert "credential 'shop-token' already exists in workspace 'production'" in line


def test_delete_is_refused_while_destinations_use_it_and_names_them(cli, cli_error, with_token):
    cli.ok("destinations", "add", "sink-b", "--type", "dummy", "--credential", with_token)
    cli.ok("destinations", "add", "sink-a", "--type", "dummy", "--credential", with_token)

    line = cli_error("credentials", "delete", with_token)

    assert "credential 'shop-token' is used by destination(s) sink-a, sink-b" in line
    assert "shop-token" in cli.ok("credentials", "list").stdout

    cli.ok("destinations", "delete", "sink-a")
    cli.ok("destinations", "delete", "sink-b")
    assert "Deleted credential shop-token." in cli.ok("credentials", "delete", with_token).stdout
    assert cli.ok("credentials", "list", "--json").stdout.strip() == "[]"


def test_show_or_delete_of_a_missing_credential_names_the_existing_ones(cli_error, with_token):
    for command in ("show", "delete"):
        line = cli_error("credentials", command, "nope")
        assert "no credential named 'nope' in workspace 'production' (existing: shop-token)" in line


def test_list_of_an_empty_workspace_says_none(cli, initialized):
    assert "Credentials: none" in cli.ok("credentials", "list").stdout


def test_a_type_without_an_authorization_or_an_api_says_so(cli_error, with_token):
    assert "credential type static-token does not use an authorization" in cli_error(
        "credentials", "authorize", with_token
    )
    assert "credential type static-token cannot be tested against an API yet" in cli_error(
        "credentials", "test", with_token
    )
