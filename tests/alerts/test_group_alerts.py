"""Alerts of a group: `offramp groups run` processes over failure -> failure -> recovery send one notice about the
group for its first failed group run and one on its recovery, each naming the group run and summing its members'
rows; the members' own rules alert on their own runs, independently."""

from __future__ import annotations

import json
from typing import Any

from alert_setup import ROWS, SQL, WEBHOOK_SECRET, Channels, break_vendor, deliveries, mend_vendor, offramp_process

from offramp.core.alerts import verify_signature


def group_run(name: str) -> tuple[int, dict[str, Any]]:
    """`offramp groups run NAME --json` in its own process: (exit status, the group run)."""
    done = offramp_process("groups", "run", name, "--json")
    return done.returncode, json.loads(done.stdout)


def test_a_group_alerts_once_on_failure_and_once_on_recovery(cli: Any, alerting: Channels) -> None:
    cli.ok("alerts", "rules", "clear", "orders")  # only the group's rules, here
    cli.ok("orchestrations", "add", "refunds", "--destination", "shop", "--sql", SQL)
    cli.ok("groups", "add", "nightly", "--orchestration", "orders", "--orchestration", "refunds")
    cli("alerts", "rules", "set", "nightly", "--group", "--channel", "pager").one_line_error(
        "no alert channel named 'pager'", "existing: hook, mail, slack"
    )
    cli.ok("alerts", "rules", "set", "nightly", "--group", "--channel", "hook")

    break_vendor(cli)
    first_code, first = group_run("nightly")
    second_code, second = group_run("nightly")
    mend_vendor(cli)
    third_code, third = group_run("nightly")
    assert (first_code, second_code, third_code) == (1, 1, 0)
    assert [first["status"], second["status"], third["status"]] == ["failed", "failed", "succeeded"]

    bodies = alerting.hook.bodies()
    assert [(b["kind"], b["target"], b["run"]) for b in bodies] == [
        ("failure", {"type": "group", "name": "nightly"}, {"id": first["id"], "status": "failed"}),
        ("recovery", {"type": "group", "name": "nightly"}, {"id": third["id"], "status": "succeeded"}),
    ]
    assert bodies[0]["headline"] == "group 'nightly' failed"
    # The group run's own hint (the member's fix, then the group's resume) and its error, not a member's line.
    assert bodies[0]["hint"].endswith("then send what is left with: offramp groups run nightly --resume")
    assert bodies[0]["error"].startswith(f"member orders failed (run {first['members'][0]['run_id']})")
    assert bodies[1]["rows"]["queried"] == 2 * ROWS and bodies[1]["rows"]["sent"] == 2 * ROWS
    assert bodies[1]["command"] == f"offramp runs show {third['id']}"
    assert all(verify_signature(WEBHOOK_SECRET, r.body, r.headers) for r in alerting.hook.requests)
    assert [(d["target_kind"], d["target"], d["kind"], d["status"]) for d in deliveries(cli)] == [
        ("group", "nightly", "failure", "delivered"),
        ("group", "nightly", "recovery", "delivered"),
    ]

    # A channel the group's rules name cannot be deleted; clearing them frees it.
    cli("alerts", "channels", "delete", "hook").one_line_error("used by the alert rules of group nightly")
    shown = json.loads(cli.ok("alerts", "rules", "show", "nightly", "--group", "--json").stdout)
    assert (shown["rules"]["channels"], shown["state"]["health"]) == (["hook"], "ok")
    cli.ok("alerts", "rules", "clear", "nightly", "--group")
    cli.ok("alerts", "channels", "delete", "hook")


def test_member_rules_and_group_rules_alert_on_their_own_runs(cli: Any, alerting: Channels) -> None:
    cli.ok("alerts", "rules", "set", "orders", "--channel", "hook")
    cli.ok("groups", "add", "nightly", "--orchestration", "orders")
    cli.ok("alerts", "rules", "set", "nightly", "--group", "--channel", "hook")
    break_vendor(cli)
    code, failed = group_run("nightly")
    assert code == 1
    kinds = [(b["kind"], b["target"]["type"]) for b in alerting.hook.bodies()]
    assert kinds == [("failure", "orchestration"), ("failure", "group")]
    assert alerting.hook.bodies()[1]["run"]["id"] == failed["id"]
