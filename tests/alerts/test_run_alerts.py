"""Alerts of real runs: `offramp run` processes over failure -> failure -> recovery send exactly one failure notice
and one recovery notice to each channel (a signed webhook, Slack, email with an SMTP login), record each delivery,
and a channel that cannot deliver records `failed` while the run exits as it would have without alerts."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from alert_servers import SMTP_USER, receiving
from alert_setup import ROWS, WEBHOOK_SECRET, Channels, break_vendor, deliveries, mend_vendor, run_process

from offramp.core.alerts import verify_signature
from offramp.core.alerts.channels import NOTICE_ID_HEADER


def test_failure_failure_recovery_sends_one_failure_and_one_recovery_to_every_channel(
    cli: Any, alerting: Channels
) -> None:
    break_vendor(cli)
    first_code, first, _ = run_process("orders")
    second_code, second, _ = run_process("orders")
    mend_vendor(cli)
    third_code, third, _ = run_process("orders")
    assert (first_code, second_code, third_code) == (1, 1, 0)
    assert [first["status"], second["status"], third["status"]] == ["failed", "failed", "succeeded"]

    # The webhook: one failure notice for the first failed run, none for the second, one recovery; each signed.
    bodies = alerting.hook.bodies()
    assert [(body["kind"], body["run"]["id"]) for body in bodies] == [
        ("failure", first["id"]),
        ("recovery", third["id"]),
    ]
    assert bodies[0]["headline"] == "orchestration 'orders' failed"
    assert bodies[0]["workspace"] == "production"
    assert bodies[0]["target"] == {"type": "orchestration", "name": "orders"}
    assert bodies[0]["run"]["status"] == "failed"
    assert bodies[0]["command"] == f"offramp runs show {first['id']}"
    assert bodies[1]["rows"]["queried"] == ROWS and bodies[1]["rows"]["sent"] == ROWS
    for request, body in zip(alerting.hook.requests, bodies, strict=True):
        assert verify_signature(WEBHOOK_SECRET, request.body, request.headers)
        assert request.headers[NOTICE_ID_HEADER.lower()] == body["id"]
    assert not verify_signature("another-secret-of-sixteen", alerting.hook.requests[0].body,
                                alerting.hook.requests[0].headers)  # fmt: skip

    # Slack: the same two notices, by headline.
    assert [m["blocks"][0]["text"]["text"] for m in alerting.slack.bodies()] == [
        "orchestration 'orders' failed",
        f"orchestration 'orders' recovered: run {third['id']} succeeded",
    ]

    # Email: two messages, to both recipients, after logging in with the credential's user.
    mails = alerting.smtp.mailbox.messages
    assert [message["Subject"] for _, message in mails] == [
        "[offramp] production: orchestration 'orders' failed",
        f"[offramp] production: orchestration 'orders' recovered: run {third['id']} succeeded",
    ]
    assert all(envelope.rcpt_tos == ["oncall@example.com", "data@example.com"] for envelope, _ in mails)
    assert alerting.smtp.mailbox.logins == [SMTP_USER, SMTP_USER]

    # Each delivery recorded: two notices times three channels, all delivered at the first attempt.
    recorded = deliveries(cli)
    assert [(d["channel"], d["kind"], d["run_id"], d["status"], d["attempts"]) for d in recorded] == [
        (channel, kind, run["id"], "delivered", 1)
        for kind, run in (("failure", first), ("recovery", third))
        for channel in ("hook", "slack", "mail")
    ]
    assert {d["channel_type"] for d in recorded} == {"webhook", "slack", "email"}

    # The rules' state: health back to ok, nothing owed.
    shown = json.loads(cli.ok("alerts", "rules", "show", "orders", "--json").stdout)
    assert shown["state"]["health"] == "ok" and shown["state"]["alerted"] is False


def test_a_channel_that_cannot_deliver_records_failed_and_the_run_exits_as_it_would(
    cli: Any, alerting: Channels
) -> None:
    with receiving("/gone") as gone:
        # 410 Gone: retrying cannot help, so the channel gives up at once (the retries are the channels' tests).
        gone.script.extend([(410, {}, b"")] * 10)
        cli.ok("alerts", "channels", "add", "gone", "--type", "webhook", "--url", gone.url, "--credential", "signer")
        cli.ok("alerts", "rules", "set", "orders", "--channel", "gone", "--channel", "hook")
        break_vendor(cli)
        failed_code, failed, failed_err = run_process("orders")
        mend_vendor(cli)
        ok_code, ok, ok_err = run_process("orders")

    assert (failed_code, failed["status"]) == (1, "failed")
    assert (ok_code, ok["status"]) == (0, "succeeded")
    recorded = [(d["channel"], d["kind"], d["status"]) for d in deliveries(cli)]
    assert recorded == [
        ("gone", "failure", "failed"),
        ("hook", "failure", "delivered"),
        ("gone", "recovery", "failed"),
        ("hook", "recovery", "delivered"),
    ]
    failures = [d for d in deliveries(cli) if d["status"] == "failed"]
    assert all(d["error"] == "alert channel 'gone' (webhook) could not deliver the notice: the endpoint answered "
               "HTTP 410" for d in failures)  # fmt: skip
    # The run's own record is untouched by the failed delivery.
    shown = json.loads(cli.ok("runs", "show", ok["id"], "--json").stdout)
    assert shown["status"] == "succeeded" and shown.get("error") is None
    assert "could not deliver the notice" in ok_err  # said as a warning, not as the run's error


def test_a_dry_run_after_a_failure_sends_no_recovery(cli: Any, alerting: Channels) -> None:
    break_vendor(cli)
    code, failed, _ = run_process("orders")
    assert (code, failed["status"]) == (1, "failed")
    mend_vendor(cli)
    code, dry, _ = run_process("orders", "--dry-run")
    assert (code, dry["dry_run"], dry["status"]) == (0, True, "succeeded")
    # Only the real run's failure: a succeeding dry run sent nothing, so it recovers nothing.
    assert [(b["kind"], b["run"]["id"]) for b in alerting.hook.bodies()] == [("failure", failed["id"])]
    assert [(d["kind"], d["run_id"]) for d in deliveries(cli)] == [("failure", failed["id"])] * 3
    shown = json.loads(cli.ok("alerts", "rules", "show", "orders", "--json").stdout)
    assert shown["state"]["health"] == "failed"


def test_rules_cleared_then_set_again_start_afresh(cli: Any, alerting: Channels) -> None:
    cli.ok("alerts", "rules", "set", "orders", "--channel", "hook")
    break_vendor(cli)
    _, first, _ = run_process("orders")
    cli.ok("alerts", "rules", "clear", "orders")
    assert json.loads(cli.ok("alerts", "rules", "show", "orders", "--json").stdout)["state"] is None
    mend_vendor(cli)
    assert run_process("orders")[0] == 0  # no rules: no notice
    break_vendor(cli)
    assert run_process("orders")[0] == 1
    cli.ok("alerts", "rules", "set", "orders", "--channel", "hook")
    _, again, _ = run_process("orders")
    mend_vendor(cli)
    _, recovered, _ = run_process("orders")
    # The failure after the rules were set again alerts (its state is new), then its recovery.
    assert [(b["kind"], b["run"]["id"]) for b in alerting.hook.bodies()] == [
        ("failure", first["id"]),
        ("failure", again["id"]),
        ("recovery", recovered["id"]),
    ]


def test_failure_notices_carry_the_runs_error_and_the_vendor_codes(cli: Any, alerting: Channels) -> None:
    cli.ok("alerts", "rules", "set", "orders", "--channel", "hook", "--channel", "mail", "--on-partial-failure")
    cli.ok("destinations", "update", "shop", "--set", "fail_prob=1")
    code, partial, _ = run_process("orders")
    assert (code, partial["status"]) == (0, "partially_failed")
    cli.ok("destinations", "update", "shop", "--unset", "fail_prob")
    break_vendor(cli)
    code, failed, _ = run_process("orders")
    assert (code, failed["status"]) == (1, "failed")

    partial_body, failed_body = alerting.hook.bodies()
    assert (partial_body["kind"], failed_body["kind"]) == ("partial_failure", "failure")
    assert partial_body["vendor_codes"] == [{"code": "dummy_refused", "rows": ROWS}]
    stored = json.loads(cli.ok("runs", "show", failed["id"], "--json").stdout)["error"]
    assert "terminal_after_batches" in stored and failed_body["error"] == stored
    _, (_, mail) = alerting.smtp.mailbox.messages
    text = " ".join(mail.get_body(("plain",)).get_content().split())
    assert f"Error: {' '.join(stored.split())}" in text
    _, partial_mail = alerting.smtp.mailbox.messages[0]
    assert f"dummy_refused ({ROWS} rows)" in partial_mail.get_body(("plain",)).get_content()


def test_a_reject_rate_rule_alerts_once_over_real_runs(cli: Any, alerting: Channels) -> None:
    cli.ok("alerts", "rules", "set", "orders", "--channel", "hook", "--reject-rate-above", "0.05",
           "--no-on-failure", "--no-on-partial-failure")  # fmt: skip
    cli.ok("destinations", "update", "shop", "--set", "reject_prob=0.5")
    _, first, _ = run_process("orders", "--max-reject-rate", "1")
    _, second, _ = run_process("orders", "--max-reject-rate", "1")
    assert first["rows"]["rejected"] > 0 and second["rows"]["rejected"] > 0
    cli.ok("destinations", "update", "shop", "--unset", "reject_prob")
    _, clean, _ = run_process("orders")
    assert clean["rows"]["rejected"] == 0
    cli.ok("destinations", "update", "shop", "--set", "reject_prob=0.5")
    _, again, _ = run_process("orders", "--max-reject-rate", "1")
    # Once while the rate stays above, and once more after it went back under the threshold.
    bodies = alerting.hook.bodies()
    assert [(b["kind"], b["run"]["id"]) for b in bodies] == [("reject_rate", first["id"]), ("reject_rate", again["id"])]
    assert "rejected" in bodies[0]["headline"] and "(alert above 5.0%)" in bodies[0]["headline"]


def test_a_run_that_ends_on_an_unexpected_exception_alerts(cli: Any, alerting: Channels) -> None:
    cli.ok("alerts", "rules", "set", "orders", "--channel", "hook")
    # A run started by a program whose progress callback breaks: the engine records the run failed and re-raises.
    script = (
        "from offramp.core.cli.common import build_context\n"
        "from offramp.core.runner.engine import run_orchestration\n"
        "from offramp.core.runner.types import RunRequest\n"
        "def progress(summary):\n"
        "    if summary.run_id:\n"
        "        raise RuntimeError('the caller broke')\n"
        "try:\n"
        "    run_orchestration(build_context(), RunRequest(workspace='production', orchestration='orders'),"
        " progress=progress)\n"
        "except RuntimeError:\n"
        "    print('raised')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.stdout.strip() == "raised", done.stderr
    (body,) = alerting.hook.bodies()
    assert body["kind"] == "failure"
    assert body["error"] == "the run stopped on an unexpected RuntimeError (its message is not stored)"
    assert "the caller broke" not in json.dumps(body)
