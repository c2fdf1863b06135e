"""`offramp demo`: one command sets up a demo workspace and shows it; running it again changes nothing.

The `demo` workspace is a sandbox, so its runs are test traffic (the orchestration's own test event code), and its
orchestration's mode is new, so that a rerun sends nothing again.
"""

from __future__ import annotations

import pytest

DEMO_VARIABLES = ("OFFRAMP_DEMO_APP_SECRET", "OFFRAMP_DEMO_TOKEN")


@pytest.fixture(autouse=True)
def demo_variables_do_not_leak(monkeypatch):
    """The demo sets its fake secrets in the process environment; take them out again after the test."""
    for name in DEMO_VARIABLES:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)  # undone in reverse order: back to placeholder, then to absent


def test_demo_in_a_fresh_home_creates_the_store_and_the_demo_workspace_and_shows_it(cli, cli_json, offramp_home):
    result = cli.ok("demo")

    assert (offramp_home / "offramp.db").exists()
    assert (offramp_home / "secret.key").exists()
    assert "Workspace demo: 6 to add, 0 to change, 0 to remove" in result.stdout
    for name in ("demo-tiktok", "demo-token", "demo-tiktok-offline", "demo-dummy", "demo-store-purchases"):
        assert name in result.stdout
    assert "offramp orchestrations show demo-store-purchases -w demo" in result.stdout

    assert [c["name"] for c in cli_json("credentials", "list", "-w", "demo")] == ["demo-tiktok", "demo-token"]
    assert [d["name"] for d in cli_json("destinations", "list", "-w", "demo")] == ["demo-dummy", "demo-tiktok-offline"]
    orchestration = cli_json("orchestrations", "show", "demo-store-purchases", "-w", "demo")
    assert orchestration["destination"] == "demo-tiktok-offline"
    assert orchestration["options"]["event_name_map"] == {"Order Completed": "Purchase"}
    # A sandbox's runs must carry a test event code: the demo's orchestration has its own.
    assert orchestration["options"]["test_event_code"] == "TEST-DEMO"
    assert orchestration["options"]["mode"] == "new"
    assert "its runs send test traffic" in result.stdout
    assert cli_json("credentials", "show", "demo-tiktok", "-w", "demo")["secrets"]["app_secret"].startswith("set")
    # The demo lives in its own workspace; production stays empty.
    assert cli_json("credentials", "list") == []


def test_demo_twice_changes_no_configuration_only_authorizes_again_and_sends_nothing_again(
    cli, cli_json, offramp_home, monkeypatch
):
    import re
    import socket

    # One port for both demos: the default (9321) may be taken by something else on a shared machine, and the
    # fallback port would then differ between the two runs and change the credential's API URL.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("OFFRAMP_DEMO_PORT", str(probe.getsockname()[1]))
    first = cli.ok("demo").stdout
    delivered = int(re.search(r"^queried \d+ rows -> \d+ events: sent (\d+) events", first, re.MULTILINE).group(1))
    audit = cli_json("audit")
    export = cli.ok("export", "-w", "demo").stdout

    result = cli.ok("demo")

    assert "Workspace demo is up to date." in result.stdout
    assert "to add" not in result.stdout
    assert "demo-store-purchases" in result.stdout  # still shows the objects
    new_events = cli_json("audit")[: -len(audit)]
    changes = [(e["action"], e["object_name"]) for e in new_events if e["object_type"] != "run"]
    assert changes == [("authorize", "demo-tiktok")]
    assert [e["action"] for e in new_events if e["object_type"] == "run"] == ["finish", "start"] * 2  # its 2 runs
    assert cli.ok("export", "-w", "demo").stdout == export

    # The orders keep their event ids: mode new skips every one the first demo delivered, in both runs, and the
    # demo says so rather than claiming that it sent something.
    out = result.stdout
    lines = re.findall(r"^queried \d+ rows -> \d+ events: (.*)$", out, flags=re.MULTILINE)
    assert len(lines) == 2
    for said in lines:
        assert said.startswith("sent 0, ") and f"skipped {delivered} events (" in said
    assert f"The run skipped {delivered} events (" in out and "that earlier runs delivered" in out
    assert "The emulator received 0 test events (code TEST-DEMO); the run sent 0 events (0 rows)." in out
    assert "The first event as TikTok received it" not in out  # nothing was received to show
    assert f"The emulator received 0 more test events; the run skipped {delivered} events (" in out
    runs = cli_json("runs", "list", "-w", "demo")
    assert [run["events"]["sent"] for run in runs] == [0, 0, 0, delivered]  # newest first
    assert cli_json("runs", "list") == []  # production ran nothing


def test_demo_authorizes_its_credential_through_the_emulator(cli, cli_json):
    result = cli.ok("demo")

    assert "TikTok emulator listening on http://127.0.0.1:" in result.stdout
    assert "Authorized demo-tiktok through the emulator's consent page" in result.stdout
    assert "7200000000000000001  Emulator Store Co  role ADMIN" in result.stdout
    credential = cli_json("credentials", "show", "demo-tiktok", "-w", "demo")
    assert credential["status"] == "ready"
    assert credential["secrets"]["refresh_token"].startswith("set")


def test_demo_in_an_initialized_store(cli, cli_json, initialized):
    cli.ok("demo")

    assert {w["name"] for w in cli_json("workspaces", "list")} == {"demo", "production"}


def test_the_demo_export_holds_no_secret_values(cli):
    cli.ok("demo")

    text = cli.ok("export", "-w", "demo").stdout

    assert "env:OFFRAMP_DEMO_APP_SECRET" in text
    assert "env:OFFRAMP_DEMO_TOKEN" in text
    assert "not-real" not in text


def test_demo_runs_the_orchestration_twice_as_test_traffic_and_nothing_is_sent_twice(cli, cli_json, offramp_home):
    import json
    import re
    import socket

    import duckdb

    result = cli.ok("demo")
    out = result.stdout

    # Expectations from the sample data itself, by SQL, not by offramp's preparer.
    with duckdb.connect(str(offramp_home / "demo-orders.duckdb"), read_only=True) as con:
        total = con.sql("SELECT count(*) FROM orders").fetchall()[0][0]
        no_ids = con.sql("SELECT count(*) FROM orders WHERE email IS NULL AND phone IS NULL").fetchall()[0][0]
        unmapped = con.sql("SELECT count(*) FROM orders WHERE event_name = 'Gift Card Reloaded'").fetchall()[0][0]
        orders = con.sql("SELECT count(DISTINCT order_id) FROM orders").fetchall()[0][0]
        bad_orders = con.sql(
            "SELECT count(DISTINCT order_id) FROM orders WHERE (email IS NULL AND phone IS NULL) "
            "OR event_name <> 'Order Completed' OR ordered_at < now()::TIMESTAMP - INTERVAL 28 DAY"
        ).fetchall()[0][0]
    lines = re.findall(r"^queried (\d+) rows -> (\d+) events: (.*)$", out, flags=re.MULTILINE)
    assert len(lines) == 2
    outcome = re.compile(r"(sent|rejected|failed|skipped|unknown) (?:(\d+) events? \((\d+) rows?\)|0)")
    runs = []
    for queried, prepared, said in lines:
        counts = {name: (int(events or 0), int(rows or 0)) for name, events, rows in outcome.findall(said)}
        assert set(counts) == {"sent", "rejected", "failed", "skipped", "unknown"}
        assert int(queried) == total == sum(rows for _, rows in counts.values())  # rows add up
        assert int(prepared) == orders == sum(events for events, _ in counts.values())  # and events do
        runs.append(counts)
    reasons = dict(re.findall(r"(\w+) (\d+)", out.split("rejected by reason: ")[1].splitlines()[0]))
    assert int(reasons["missing_identifiers"]) == no_ids
    assert int(reasons["unknown_event_name"]) == unmapped
    assert set(reasons) == {"missing_identifiers", "unknown_event_name", "event_too_old"}
    tested = int(re.search(r"The emulator received (\d+) test events \(code TEST-DEMO\);", out).group(1))
    assert tested == orders - bad_orders == runs[0]["sent"][0]  # the summary's events sent: what TikTok got
    assert "that earlier runs delivered" not in out  # a first demo skips nothing
    # The second run sends nothing again: mode new skips every event id the first one delivered.
    assert runs[1]["sent"] == (0, 0)
    assert runs[1]["skipped"] == runs[0]["sent"]
    assert runs[1]["rejected"] == runs[0]["rejected"]
    assert f"The emulator received 0 more test events; the run skipped {tested} events (" in out
    assert "nothing is counted twice" in out
    sample = out.split("The first event as TikTok received it")[1].split("The emulator received")[0]
    event = json.loads(sample[sample.index("{") :])
    assert event["event"] == "Purchase" and "@" not in sample
    assert all(len(value) == 64 for value in event["user"]["email"])
    port = int(re.search(r"listening on http://127.0.0.1:(\d+)", out).group(1))
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # the demo stopped its server

    # The hint the demo prints works as printed: `runs show RUN --rejects` from the default workspace.
    hint = re.search(r"offramp (runs show \w+ --rejects -w demo)", out).group(1).split()
    listed = cli.ok(*hint).stdout
    assert "missing_identifiers" in listed and "unknown_event_name" in listed
