"""`offramp alerts channels|rules|test|history` as a user drives them: channels shown, exported and applied without
their secrets, rules refused when they name a channel that does not exist, a channel in use refused deletion, a
test notice delivered (or its failure said in one line), and production's channels shared with sandboxes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_servers import SMTP_PASSWORD, receiving
from alert_setup import WEBHOOK_SECRET, Channels, break_vendor, deliveries, offramp_process

from offramp.core.alerts import verify_signature


def _everything_printed(cli: Any) -> str:
    """The output of every command that shows channels, their rules and deliveries."""
    commands = [
        ("alerts", "channels", "list"), ("alerts", "channels", "list", "--json"),
        ("alerts", "channels", "show", "slack"), ("alerts", "channels", "show", "slack", "--json"),
        ("alerts", "channels", "show", "hook", "--json"), ("alerts", "channels", "show", "mail", "--json"),
        ("alerts", "rules", "show", "orders"), ("alerts", "history", "--json"), ("alerts", "history"),
        ("audit", "--json"), ("export",), ("orchestrations", "show", "orders", "--json"),
    ]  # fmt: skip
    return "\n".join(cli.ok(*command).output for command in commands)


def test_the_slack_url_and_the_secrets_never_show_in_output_logs_export_or_the_store(
    cli: Any, alerting: Channels, store: str, offramp_home: Path
) -> None:
    break_vendor(cli)
    failed = offramp_process("--debug", "run", "orders")  # debug logs: httpx names every request's URL
    assert failed.returncode == 1
    tested = offramp_process("--debug", "alerts", "test", "slack")
    assert tested.returncode == 0, tested.stderr
    assert len(alerting.slack.requests) == 2  # the failure notice and the test notice did go to the URL

    shown = _everything_printed(cli) + failed.stdout + failed.stderr + tested.stdout + tested.stderr
    assert "HTTP Request: POST" in shown  # the debug log lines are there, with the URL masked
    for secret in alerting.secrets():
        assert secret not in shown
    if store == "sqlite":
        with sqlite3.connect(offramp_home / "offramp.db") as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            dump = "\n".join(str(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"'))
        assert "alert_deliveries" in tables and "slack" in dump
        for secret in alerting.secrets():
            assert secret not in dump


def test_export_and_apply_round_trip_the_channels_with_secrets_as_env_references(
    cli: Any, alerting: Channels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = cli.ok("export").stdout
    document = yaml.safe_load(exported)
    assert document["alert_channels"] == [
        {"name": "hook", "type": "webhook", "url": alerting.hook.url, "credential": "signer"},
        {
            "name": "mail", "type": "email", "credential": "smtp-login", "host": "127.0.0.1",
            "port": alerting.smtp.port, "starttls": False, "sender": "offramp@example.com",
            "recipients": ["oncall@example.com", "data@example.com"],
        },
        {"name": "slack", "type": "slack", "url": "env:SLACK_URL"},
    ]  # fmt: skip
    assert document["orchestrations"][0]["options"]["alerts"] == {"channels": ["hook", "slack", "mail"]}
    path = tmp_path / "workspace.yaml"
    path.write_text(exported)
    assert "Nothing to do" in cli.ok("apply", "--file", str(path)).stdout

    # Into a new workspace: the same file gives the same channels, the Slack URL read from its variable.
    copy = tmp_path / "copy.yaml"
    copy.write_text(exported.replace("workspace production", "workspace copy").replace("workspace: production",
                                                                                       "workspace: copy"))  # fmt: skip
    applied = cli.ok("apply", "--file", str(copy)).stdout
    assert "+ alert channel slack" in applied and "+ alert channel mail" in applied
    assert cli.ok("export", "-w", "copy").stdout == copy.read_text()
    assert cli.ok("alerts", "test", "slack", "-w", "copy").exit_code == 0
    assert len(alerting.slack.requests) == 1

    # A change in the file is a change of that channel only; a channel taken out while a rule names it is refused.
    document["alert_channels"][1]["recipients"] = ["oncall@example.com"]
    path.write_text(yaml.safe_dump(document))
    assert "~ alert channel mail (recipients)" in cli.ok("apply", "--file", str(path)).stdout
    document["alert_channels"] = document["alert_channels"][:2]
    path.write_text(yaml.safe_dump(document))
    line = cli("apply", "--file", str(path)).one_line_error("alert channel 'slack' is used by", "orchestration orders")
    assert "nothing was changed" in line


def test_a_slack_url_written_as_a_value_in_a_file_is_refused(cli: Any, alerting: Channels, tmp_path: Path) -> None:
    document = yaml.safe_load(cli.ok("export").stdout)
    document["alert_channels"][2]["url"] = alerting.slack.url
    path = tmp_path / "workspace.yaml"
    path.write_text(yaml.safe_dump(document))
    line = cli("apply", "--file", str(path)).one_line_error("alert channel 'slack': url is a secret", "env:VARIABLE")
    assert alerting.slack.url not in line


def test_a_rule_naming_an_unknown_channel_is_refused_naming_those_that_exist(
    cli: Any, alerting: Channels, tmp_path: Path
) -> None:
    cli("alerts", "rules", "set", "orders", "--channel", "pager").one_line_error(
        "no alert channel named 'pager' in workspace 'production' (existing: hook, mail, slack)"
    )
    shown = json.loads(cli.ok("alerts", "rules", "show", "orders", "--json").stdout)
    assert shown["rules"]["channels"] == ["hook", "slack", "mail"]  # nothing changed

    document = yaml.safe_load(cli.ok("export").stdout)
    document["orchestrations"][0]["options"]["alerts"]["channels"] = ["hook", "pager"]
    path = tmp_path / "workspace.yaml"
    path.write_text(yaml.safe_dump(document))
    cli("apply", "--file", str(path)).one_line_error(
        "orchestration 'orders': its alert rules name no existing alert channel (pager; existing: hook, mail, slack)"
    )


def test_rules_set_show_and_clear(cli: Any, alerting: Channels) -> None:
    said = cli.ok("alerts", "rules", "set", "orders", "--runtime-above", "60", "--on-partial-failure").stdout
    assert "on_partial_failure, runtime_above changed" in said
    rules = json.loads(cli.ok("alerts", "rules", "show", "orders", "--json").stdout)["rules"]
    assert rules["channels"] == ["hook", "slack", "mail"]
    assert (rules["runtime_above"], rules["on_partial_failure"], rules["on_failure"]) == (60.0, True, True)
    cli.ok("alerts", "rules", "set", "orders", "--unset", "runtime_above")
    assert json.loads(cli.ok("alerts", "rules", "show", "orders", "--json").stdout)["rules"]["runtime_above"] is None
    cli("alerts", "rules", "set", "orders", "--reject-rate-above", "5").one_line_error("reject_rate_above")
    assert "Cleared" in cli.ok("alerts", "rules", "clear", "orders").stdout
    assert json.loads(cli.ok("alerts", "rules", "show", "orders", "--json").stdout)["rules"] is None
    audit = json.loads(cli.ok("audit", "--json").stdout)
    assert any(e["object_type"] == "orchestration" and e["action"] == "update" for e in audit)


def test_a_channel_in_use_is_refused_deletion_naming_its_users(cli: Any, alerting: Channels) -> None:
    cli("alerts", "channels", "delete", "hook").one_line_error(
        "alert channel 'hook' is used by the alert rules of orchestration orders", "offramp alerts rules clear orders"
    )
    cli.ok("alerts", "rules", "set", "orders", "--channel", "slack")
    cli.ok("alerts", "channels", "delete", "hook")
    names = [c["name"] for c in json.loads(cli.ok("alerts", "channels", "list", "--json").stdout)]
    assert names == ["mail", "slack"]
    audit = json.loads(cli.ok("audit", "--type", "alert_channel", "--json").stdout)
    assert [(e["action"], e["object_name"]) for e in audit][:1] == [("delete", "hook")]


def test_alerts_test_delivers_a_signed_test_notice_and_records_it(cli: Any, alerting: Channels) -> None:
    assert "delivered the test notice" in cli.ok("alerts", "test", "hook").stdout
    (request,) = alerting.hook.requests
    assert verify_signature(WEBHOOK_SECRET, request.body, request.headers)
    body = json.loads(request.body)
    assert (body["kind"], body["target"], body["run"]) == ("test", {"type": "channel", "name": "hook"}, None)
    cli.ok("alerts", "test", "mail")
    assert [m["Subject"] for _, m in alerting.smtp.mailbox.messages] == [
        "[offramp] production: test notice from offramp for alert channel 'mail'"
    ]
    assert [(d["channel"], d["kind"], d["status"]) for d in deliveries(cli)] == [
        ("hook", "test", "delivered"),
        ("mail", "test", "delivered"),
    ]


def test_alerts_test_of_a_failing_channel_exits_1_with_one_line(cli: Any, alerting: Channels) -> None:
    with receiving("/refuses") as refusing:
        refusing.script.append((403, {}, b""))
        cli.ok("alerts", "channels", "add", "refuses", "--type", "webhook", "--url", refusing.url,
               "--credential", "signer")  # fmt: skip
        cli("alerts", "test", "refuses").one_line_error(
            "alert channel 'refuses' (webhook) could not deliver the notice: the endpoint answered HTTP 403"
        )
    assert [(d["channel"], d["status"]) for d in deliveries(cli)] == [("refuses", "failed")]
    cli("alerts", "test", "nope").one_line_error(
        "no alert channel named 'nope'", "existing: hook, mail, refuses, slack"
    )


def test_bad_channel_settings_are_refused_naming_the_field(cli: Any, alerting: Channels) -> None:
    cli("alerts", "channels", "add", "x", "--type", "sms").one_line_error("alert channel type 'sms'")
    cli("alerts", "channels", "add", "x", "--type", "webhook", "--url", "http://example.com/h",
        "--credential", "signer").one_line_error("must be an https:// URL")  # fmt: skip
    cli("alerts", "channels", "add", "x", "--type", "webhook", "--url", "https://example.com/h",
        "--credential", "smtp-login").one_line_error("a webhook channel takes a hmac-secret credential")  # fmt: skip
    cli("alerts", "channels", "add", "x", "--type", "email", "--host", "mail.example.com", "--sender", "a@b.example",
        "--to", "c@d.example", "--no-starttls", "--credential", "smtp-login").one_line_error(
        "a password is sent only over STARTTLS"
    )  # fmt: skip
    cli("alerts", "channels", "add", "x", "--type", "slack", "--url", "https://hooks.slack.com/services/T/B/s"
        ).one_line_error("a Slack webhook URL is a secret")  # fmt: skip
    cli("alerts", "channels", "add", "x", "--type", "slack", "--url-env", "NOT_SET_ANYWHERE").one_line_error(
        "--url-env NOT_SET_ANYWHERE: the variable is not set"
    )
    names = [c["name"] for c in json.loads(cli.ok("alerts", "channels", "list", "--json").stdout)]
    assert names == ["hook", "mail", "slack"]


def test_update_changes_what_is_given_and_a_new_slack_url_is_kept_secret(
    cli: Any, alerting: Channels, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "port changed" in cli.ok("alerts", "channels", "update", "mail", "--port", "2600").stdout
    with receiving("/services/T9/B9/another-slack-secret") as other:
        monkeypatch.setenv("NEW_SLACK", other.url)
        assert "url changed" in cli.ok("alerts", "channels", "update", "slack", "--url-env", "NEW_SLACK").stdout
        cli.ok("alerts", "test", "slack")
        assert len(other.requests) == 1 and alerting.slack.requests == []
        assert other.url not in cli.ok("alerts", "channels", "show", "slack", "--json").stdout
    assert "env:NEW_SLACK" in cli.ok("export").stdout


def test_production_channels_are_shared_with_a_sandbox_by_reference(cli: Any, alerting: Channels) -> None:
    cli.ok("sandboxes", "create", "sb")
    listed = json.loads(cli.ok("alerts", "channels", "list", "-w", "sb", "--json").stdout)
    assert [(c["name"], c.get("shared_from")) for c in listed] == [
        ("hook", "production"), ("mail", "production"), ("slack", "production"),
    ]  # fmt: skip
    cli("alerts", "channels", "delete", "hook", "-w", "sb").one_line_error(
        "alert channel 'hook' belongs to production and is shared with sandbox 'sb'"
    )
    # The sandbox's copy of `orders` names production's channels: production's channel is in use there too.
    line = cli("alerts", "channels", "delete", "slack").one_line_error("alert channel 'slack' is used by")
    assert "orchestration orders (sandbox sb)" in line
    cli.ok("alerts", "test", "hook", "-w", "sb")
    assert json.loads(alerting.hook.requests[0].body)["workspace"] == "sb"
    assert "alert_channels" not in cli.ok("export", "-w", "sb").stdout  # never copied into the sandbox


def test_a_slack_channel_still_delivers_after_the_key_is_rotated(cli: Any, alerting: Channels) -> None:
    cli.ok("secrets", "rotate-key")
    cli.ok("alerts", "test", "slack")
    assert len(alerting.slack.requests) == 1


def test_the_smtp_password_is_only_in_its_credential(cli: Any, alerting: Channels, stored_secrets: Any) -> None:
    assert stored_secrets("smtp-login") == {"password": SMTP_PASSWORD}
    shown = cli.ok("credentials", "show", "smtp-login", "--json").stdout
    assert SMTP_PASSWORD not in shown and json.loads(shown)["settings"]["username"] == "alerts@example.com"


def test_a_sandbox_with_channels_of_its_own_is_deleted_with_them(cli: Any, alerting: Channels) -> None:
    cli.ok("sandboxes", "create", "sb")
    cli.ok("credentials", "add", "sb-signer", "--type", "hmac-secret", "--set", "secret=env:HOOK_SECRET", "-w", "sb")
    cli.ok("alerts", "channels", "add", "hook", "--type", "webhook", "--url", alerting.hook.url,
           "--credential", "sb-signer", "-w", "sb")  # fmt: skip
    listed = json.loads(cli.ok("alerts", "channels", "list", "-w", "sb", "--json").stdout)
    assert [(c["name"], c.get("shared_from"), c["credential"]) for c in listed][0] == ("hook", None, "sb-signer")
    cli.ok("sandboxes", "delete", "sb")
    audit = json.loads(cli.ok("audit", "--type", "alert_channel", "--json").stdout)
    assert (audit[0]["action"], audit[0]["object_name"], audit[0]["workspace"]) == ("delete", "hook", "sb")
    assert [c["name"] for c in json.loads(cli.ok("alerts", "channels", "list", "--json").stdout)] == [
        "hook", "mail", "slack",
    ]  # fmt: skip


def test_a_sandbox_rule_notifying_a_channel_production_lacks_blocks_promotion(cli: Any, alerting: Channels) -> None:
    cli.ok("sandboxes", "create", "sb")
    cli.ok("alerts", "channels", "add", "sb-hook", "--type", "webhook", "--url", alerting.hook.url,
           "--credential", "signer", "-w", "sb")  # fmt: skip
    cli.ok("alerts", "rules", "set", "orders", "--channel", "sb-hook", "-w", "sb")

    found = json.loads(cli("sandboxes", "validate", "sb", "--json").stdout)
    messages = [error["message"] for error in found["errors"]]
    assert any("notify channel 'sb-hook', which production does not have" in m for m in messages), messages
    assert cli("sandboxes", "promote", "sb", "--message", "alerts to the sandbox's hook").exit_code == 1
    rules = json.loads(cli.ok("alerts", "rules", "show", "orders", "--json").stdout)["rules"]
    assert rules["channels"] == ["hook", "slack", "mail"]  # production unchanged


def test_a_credential_an_alert_channel_uses_is_refused_deletion_naming_the_channels(
    cli: Any, alerting: Channels, tmp_path: Path
) -> None:
    cli.ok("sandboxes", "create", "sb")
    cli.ok("alerts", "channels", "add", "sb-hook", "--type", "webhook", "--url", alerting.hook.url,
           "--credential", "signer", "-w", "sb")  # fmt: skip
    used_by = json.loads(cli.ok("credentials", "show", "signer", "--json").stdout)["used_by"]
    assert used_by == ["alert channel hook", "alert channel sb-hook (sandbox sb)"]
    line = cli("credentials", "delete", "signer").one_line_error(
        "credential 'signer' is used by alert channels hook (workspace production), sb-hook (workspace sb)",
        "offramp alerts channels delete hook", "the sandboxes' channels in their sandbox",
    )  # fmt: skip
    assert "Traceback" not in line and "IntegrityError" not in line
    cli("credentials", "delete", "smtp-login").one_line_error("used by alert channel mail (workspace production)")

    # The same through apply: a file without the credential, whose channel still names it.
    document = yaml.safe_load(cli.ok("export").stdout)
    document["credentials"] = [c for c in document["credentials"] if c["name"] != "smtp-login"]
    path = tmp_path / "workspace.yaml"
    path.write_text(yaml.safe_dump(document))
    applied = cli("apply", "--file", str(path))
    assert applied.exit_code != 0 and "IntegrityError" not in applied.output
    assert json.loads(cli.ok("credentials", "show", "smtp-login", "--json").stdout)["name"] == "smtp-login"


def test_an_email_channel_must_send_to_its_logins_host(cli: Any, alerting: Channels) -> None:
    mail = ("--type", "email", "--sender", "a@b.example", "--to", "c@d.example", "--credential", "smtp-login")
    cli("alerts", "channels", "add", "x", "--host", "smtp.elsewhere.example", *mail).one_line_error(
        "alert channel 'x': --host smtp.elsewhere.example is not the SMTP server of credential 'smtp-login' "
        "(host 127.0.0.1)"
    )
    cli("alerts", "channels", "update", "mail", "--host", "smtp.elsewhere.example", "--starttls").one_line_error(
        "is not the SMTP server of credential 'smtp-login'"
    )
    # A sandbox's channel using production's login is held to the same host.
    cli.ok("sandboxes", "create", "sb")
    cli("alerts", "channels", "add", "x", "--host", "smtp.elsewhere.example", *mail, "-w", "sb").one_line_error(
        "is not the SMTP server of credential 'smtp-login'"
    )
    shown = json.loads(cli.ok("alerts", "channels", "show", "mail", "--json").stdout)
    assert shown["settings"]["host"] == "127.0.0.1"
    # The login's host moved (its password given again): the channel, still on the old one, no longer sends it.
    cli.ok("credentials", "update", "smtp-login", "--set", "host=smtp.elsewhere.example",
           "--set", "password=env:SMTP_PASSWORD")  # fmt: skip
    cli("alerts", "test", "mail").one_line_error("is not the SMTP server of credential 'smtp-login'")
    assert alerting.smtp.mailbox.messages == []


def test_flags_of_another_type_of_channel_are_refused(cli: Any, alerting: Channels) -> None:
    cli("alerts", "channels", "add", "x", "--type", "email", "--url", "https://example.com/h", "--host",
        "127.0.0.1", "--sender", "a@b.example", "--to", "c@d.example").one_line_error(
        "alert channel 'x': --url is not a setting of email channels"
    )  # fmt: skip
    cli("alerts", "channels", "add", "x", "--type", "webhook", "--url", alerting.hook.url, "--credential", "signer",
        "--to", "c@d.example").one_line_error("--to is not a setting of webhook channels")  # fmt: skip
    cli("alerts", "channels", "update", "hook", "--host", "127.0.0.1").one_line_error(
        "--host is not a setting of webhook channels"
    )
    cli("alerts", "channels", "update", "slack", "--sender", "a@b.example").one_line_error(
        "--sender is not a setting of slack channels"
    )
    cli("alerts", "channels", "update", "mail", "--url", "https://example.com/h").one_line_error(
        "--url is not a setting of email channels"
    )
    assert [c["name"] for c in json.loads(cli.ok("alerts", "channels", "list", "--json").stdout)] == [
        "hook", "mail", "slack",
    ]  # fmt: skip


def test_a_webhook_urls_login_and_query_are_masked_when_shown(cli: Any, alerting: Channels) -> None:
    port = alerting.hook.url.split(":")[2].split("/")[0]
    url = f"http://hookuser:hookpass-do-not-show@127.0.0.1:{port}/hooks/alerts?token=query-token-do-not-show"
    cli.ok("alerts", "channels", "add", "tokened", "--type", "webhook", "--url", url, "--credential", "signer")
    shown = "\n".join(
        cli.ok(*command).output
        for command in (
            ("alerts", "channels", "list"), ("alerts", "channels", "list", "--json"),
            ("alerts", "channels", "show", "tokened"), ("alerts", "channels", "show", "tokened", "--json"),
        )
    )  # fmt: skip
    for secret in ("hookuser", "hookpass-do-not-show", "query-token-do-not-show"):
        assert secret not in shown
    assert f"http://***@127.0.0.1:{port}/hooks/alerts?***" in shown


def test_alerts_test_json_prints_json_when_it_fails(cli: Any, alerting: Channels) -> None:
    with receiving("/refuses") as refusing:
        refusing.script.append((403, {}, b""))
        cli.ok("alerts", "channels", "add", "refuses", "--type", "webhook", "--url", refusing.url,
               "--credential", "signer")  # fmt: skip
        result = cli("alerts", "test", "refuses", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "channel": "refuses", "ok": False, "attempts": 1,
        "error": "alert channel 'refuses' (webhook) could not deliver the notice: the endpoint answered HTTP 403",
    }  # fmt: skip
