"""`offramp demo`: the main job on embedded defaults, in one command.

It initializes the store if needed, starts the TikTok emulator on loopback, applies a demo workspace (a TikTok
credential and destination pointed at the emulator, a dummy destination, an orchestration over a sample DuckDB
file of store orders with deliberate mistakes), authorizes the credential through the emulator's consent page (the
real OAuth code exchange), runs the orchestration, prints the report and what TikTok received, runs it again to
show that nothing is counted twice, and says what to try next. The workspace is applied as configuration as code,
so a second demo changes no configuration.

The `demo` workspace is a sandbox (every workspace but production is), and a sandbox's real runs must be test
traffic: the orchestration carries its own ``test_event_code``, so every event goes to TikTok's Test Events view.
Test events take no part in TikTok's deduplication, so the orchestration's mode is ``new``: a second run skips the
event ids already delivered (``skipped``) and sends nothing again, and so does a later demo's first run, since the
sample orders keep their ids.

Contributed to the CLI by this plugin (``DEMO`` in this package); it uses offramp only through
:class:`offramp.core.commands.Offramp`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from offramp.core import offramp_command
from offramp.core.commands import (
    Offramp,
    check_state,
    new_state,
    parse_redirect,
    progress_counts,
    run_report_lines,
    say,
)
from offramp.plugins.tiktok.commands.demo_data import DEMO_SQL, SOURCE_EVENT, write_demo_orders

if TYPE_CHECKING:
    from offramp.core.commands import RunSummary

# httpx and rich's progress bar are imported where they are used: `offramp --help` loads this module.

DEMO_WORKSPACE = "demo"
DEMO_ORCHESTRATION = "demo-store-purchases"
DEMO_TIMEZONE = "America/Los_Angeles"
DEMO_EMULATOR_PORT = 9321
# The emulator's seeded app (docs/emulator.md); the demo never talks to TikTok. Real secrets are given with
# --set key=env:VAR or at a prompt.
DEMO_APP_ID = "7100000000000000001"
DEMO_ADVERTISER_ID = "7200000000000000001"
DEMO_EVENT_SET_ID = "7300000000000000001"
DEMO_SECRETS = {"OFFRAMP_DEMO_APP_SECRET": "emulator-app-secret", "OFFRAMP_DEMO_TOKEN": "demo-token-not-real"}
# The demo's runs are a sandbox's, so they must carry a test event code (docs/sandboxes.md): on the orchestration
# itself, so that the exported workspace runs as the demo does. TikTok's Events Manager gives codes like TEST12345;
# the emulator takes any text, and this one says whose events they are.
DEMO_TEST_EVENT_CODE = "TEST-DEMO"

DEMO_CONFIG: dict[str, Any] = {
    "workspace": DEMO_WORKSPACE,
    "credentials": [
        {
            "name": "demo-tiktok",
            "type": "tiktok-offline-events",
            "settings": {
                "app_id": DEMO_APP_ID,
                "app_secret": "env:OFFRAMP_DEMO_APP_SECRET",
            },
        },
        {"name": "demo-token", "type": "static-token", "settings": {"token": "env:OFFRAMP_DEMO_TOKEN"}},
    ],
    "destinations": [
        {
            "name": "demo-tiktok-offline",
            "type": "tiktok-ads-offline-events",
            "credential": "demo-tiktok",
            "settings": {
                "advertiser_id": DEMO_ADVERTISER_ID,
                "event_set_id": DEMO_EVENT_SET_ID,
                "event_set_name": "Emulator stores",
            },
        },
        {"name": "demo-dummy", "type": "dummy", "credential": "demo-token", "settings": {"reject_prob": 0.01}},
    ],
    "orchestrations": [
        {
            "name": "demo-store-purchases",
            "destination": "demo-tiktok-offline",
            "source": "duckdb::memory:",  # replaced by the sample file's path
            "options": {
                "event_name_map": {SOURCE_EVENT: "Purchase"},
                "timezone": DEMO_TIMEZONE,
                "mode": "new",  # test events are not deduplicated: a rerun skips what was delivered instead
                "test_event_code": DEMO_TEST_EVENT_CODE,
            },
            "sql": DEMO_SQL,
        }
    ],
}


def _emulator_config(base_url: str, orders: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(json.dumps(DEMO_CONFIG))  # a deep copy
    settings = config["credentials"][0]["settings"]
    settings.update(api_base_url=base_url, auth_url=f"{base_url}/portal/auth")
    config["orchestrations"][0]["source"] = f"duckdb:{orders}"
    return config


@contextmanager
def _emulator() -> Iterator[Any]:
    from offramp.plugins.tiktok.emulator import run_emulator

    try:
        with run_emulator(port=int(os.environ.get("OFFRAMP_DEMO_PORT", DEMO_EMULATOR_PORT))) as running:
            yield running
    except OSError:  # the demo's port is taken: any free port will do
        with run_emulator(port=0) as running:
            yield running


def _authorize(offramp: Offramp, base_url: str) -> None:
    """What a person does in a browser, done by the demo: open the consent page, follow its redirect."""
    credential = offramp.credential(DEMO_WORKSPACE, "demo-tiktok")
    hooks = offramp.registry.credential_hooks(credential.type)
    assert hooks.authorization_url is not None and hooks.complete_authorization is not None
    assert hooks.describe_access is not None
    state = new_state()
    url = hooks.authorization_url(credential, state, "http://127.0.0.1:9/callback")
    import httpx

    consent = httpx.get(url, follow_redirects=False, timeout=30)
    code = check_state(parse_redirect(consent.headers["location"]), state)
    hooks.complete_authorization(credential, code)
    advertisers = hooks.describe_access(credential).items
    ids = ", ".join(str(advertiser["advertiser_id"]) for advertiser in advertisers)
    say(f"Authorized demo-tiktok through the emulator's consent page: advertisers {ids}.")
    for advertiser in advertisers:
        say(f"  {advertiser['advertiser_id']}  {advertiser['name']}  role {advertiser['role']}")


def _run(offramp: Offramp) -> RunSummary:
    """Run the demo orchestration with a progress bar on a terminal, quietly otherwise."""
    if not sys.stdout.isatty():
        return offramp.run(DEMO_WORKSPACE, DEMO_ORCHESTRATION)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[counts]}"),
                  TimeElapsedColumn(), transient=True) as bar:  # fmt: skip
        task = bar.add_task(DEMO_ORCHESTRATION, total=None, counts="")

        def show(summary: RunSummary) -> None:
            bar.update(task, completed=summary.settled, counts=progress_counts(summary))

        return offramp.run(DEMO_WORKSPACE, DEMO_ORCHESTRATION, progress=show)


def _test_events(state: Any) -> int:
    """Events the emulator received with the demo's test event code (its Test Events view, never deduplicated)."""
    return sum(1 for item in state.events() if item["test_event_code"] == DEMO_TEST_EVENT_CODE)


def _events_rows(summary: RunSummary, outcome: str) -> str:
    events, rows = summary.events[outcome], getattr(summary, outcome)
    return f"{events} events ({rows} rows)"


def demo() -> None:
    """Start the TikTok emulator, set up a demo workspace, run it twice and show what TikTok received."""
    Offramp.ensure_initialized()
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)
    offramp = Offramp.from_environment()
    orders = offramp.demo_database  # the one file in offramp's home a source may read
    with _emulator() as emulator:
        base_url = emulator.base_url
        say(f"TikTok emulator listening on {base_url} (seeded app, advertisers and event set: docs/emulator.md)")
        applied = offramp.apply(_emulator_config(base_url, orders))
        say(
            f"Workspace {DEMO_WORKSPACE}: {applied.summary}"
            if applied.changes
            else f"Workspace {DEMO_WORKSPACE} is up to date."
        )
        for change in applied.changes:
            say(f"  {change}")
        _authorize(offramp, base_url)
        now = datetime.now(ZoneInfo(DEMO_TIMEZONE)).replace(tzinfo=None)
        rows = write_demo_orders(orders, now)
        say(f"Sample warehouse: {rows} order lines in {orders} (some with mistakes on purpose).")
        say(
            f"Workspace {DEMO_WORKSPACE} is a sandbox, so its runs send test traffic: the orchestration's test event "
            f"code {DEMO_TEST_EVENT_CODE} puts its events in TikTok's Test Events view, never attributed "
            "(docs/sandboxes.md)."
        )
        say("")
        first = _run(offramp)
        for line in run_report_lines(first):
            say(line)
        received = [item["payload"] for item in emulator.state.events(status="accepted", limit=1)]
        if received:
            say("")
            say("The first event as TikTok received it (identifiers hashed, line items in contents):")
            say(json.dumps(received[0], indent=2))
        tested = _test_events(emulator.state)
        if first.events["skipped"]:
            # A demo before this one, in this home, delivered these orders: they keep their ids, and mode new sends
            # an id once.
            say(
                f"The run skipped {_events_rows(first, 'skipped')} that earlier runs delivered: the sample orders "
                "keep their event ids from demo to demo, and the orchestration's mode new sends an event id once "
                "(a demo in an empty folder sends them again)."
            )
        # The run's count of events sent and the emulator's count of test events received are the same number.
        say(
            f"The emulator received {tested} test events (code {DEMO_TEST_EVENT_CODE}); "
            f"the run sent {_events_rows(first, 'sent')}."
        )
        say("")
        say("Running it again: mode new skips the event ids already delivered instead of sending them again.")
        second = _run(offramp)
        for line in run_report_lines(second)[:2]:
            say(line)
        say(
            f"The emulator received {_test_events(emulator.state) - tested} more test events; the run skipped "
            f"{_events_rows(second, 'skipped')}: nothing is sent twice."
        )
        say(
            "Test events take no part in the emulator's deduplication, so mode new is what holds them back; live "
            "events (production's, without a test code) that repeat an event's name and id within 48 hours are "
            "dropped by TikTok, so nothing is counted twice (docs/tiktok-api-facts.md)."
        )
    say("")
    offramp.print_orchestrations(DEMO_WORKSPACE)
    say("")
    say("What to try next:")
    rejects = offramp_command("runs", "show", first.run_id, "--rejects", workspace=DEMO_WORKSPACE)
    say(f"  {rejects}     every rejected order and why")
    say("  offramp orchestrations show demo-store-purchases -w demo")
    say("  A real TikTok account (docs/tiktok-credentials.md):")
    say("    offramp credentials add tiktok --type tiktok-offline-events \\")
    say("        --set app_id=... --set app_secret=env:TT_SECRET")
    say("    offramp credentials authorize tiktok --listen")
    say("    offramp destinations add stores --type tiktok-ads-offline-events --credential tiktok \\")
    say("        --set advertiser_id=... --set event_set_id=...     (runs `destinations test` first)")
    say("  A real warehouse (docs/user-guide.md, run):")
    say("    export WAREHOUSE_URL='postgresql+psycopg://reader:...@db/analytics'")
    say("    offramp orchestrations add store-orders --destination stores --source env:WAREHOUSE_URL \\")
    say("        --sql-file store_orders.sql --map 'Order Completed=Purchase'")
    say("    offramp run store-orders --dry-run      then: offramp run store-orders")
