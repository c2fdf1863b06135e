"""`offramp demo`: the main job on embedded defaults, in one command.

It initializes the store if needed, starts the TikTok emulator on loopback, applies a demo workspace (a TikTok
credential and destination pointed at the emulator, a dummy destination, an orchestration over a sample DuckDB
file of store orders with deliberate mistakes), authorizes the credential through the emulator's consent page (the
real OAuth code exchange), runs the orchestration, prints the report and what TikTok received, runs it again to
show that nothing is counted twice, and says what to try next. The workspace is applied as configuration as code,
so a second demo changes no configuration.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from offramp.core.cli import cmd_orchestrations
from offramp.core.cli.cmd_run import _lines as cmd_run_lines
from offramp.core.cli.common import build_context
from offramp.core.cli.output import say
from offramp.core.demo_data import DEMO_SQL, SOURCE_EVENT, write_demo_orders
from offramp.core.environment import Environment
from offramp.core.errors import StoreNotInitializedError
from offramp.core.oauth_callback import check_state, new_state, parse_redirect
from offramp.core.runner import RunRequest, RunSummary, run_orchestration
from offramp.core.services.config_io import ConfigDocument, apply_document
from offramp.core.services.context import Context
from offramp.core.sources._allowed import DEMO_DATABASE
from offramp.core.state.store import open_store

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
            "options": {"event_name_map": {SOURCE_EVENT: "Purchase"}, "timezone": DEMO_TIMEZONE},
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


def _authorize(ctx: Context, base_url: str) -> None:
    """What a person does in a browser, done by the demo: open the consent page, follow its redirect."""
    from offramp.credentials.tiktok_session import TikTokCredentialSession

    credential = TikTokCredentialSession(ctx, DEMO_WORKSPACE, "demo-tiktok")
    state = new_state()
    url = credential.authorization_url(credential.settings(), state, "http://127.0.0.1:9/callback")
    consent = httpx.get(url, follow_redirects=False, timeout=30)
    code = check_state(parse_redirect(consent.headers["location"]), state)
    grant = credential.complete_authorization(code)
    say(f"Authorized demo-tiktok through the emulator's consent page: advertisers {', '.join(grant.advertiser_ids)}.")
    for advertiser in credential.describe_access():
        say(f"  {advertiser['advertiser_id']}  {advertiser['name']}  role {advertiser['role']}")


def _run(ctx: Context) -> RunSummary:
    """Run the demo orchestration with a progress bar on a terminal, quietly otherwise."""
    request = RunRequest(workspace=DEMO_WORKSPACE, orchestration=DEMO_ORCHESTRATION)
    if not sys.stdout.isatty():
        return run_orchestration(ctx, request)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[counts]}"),
                  TimeElapsedColumn(), transient=True) as bar:  # fmt: skip
        task = bar.add_task(DEMO_ORCHESTRATION, total=None, counts="")

        def show(summary: RunSummary) -> None:
            counts = f"{summary.rows_per_second:,.0f} rows/s  sent {summary.sent}  rejected {summary.rejected}"
            bar.update(task, completed=summary.settled, counts=counts)

        return run_orchestration(ctx, request, progress=show)


def _received(state: Any) -> tuple[int, int]:
    """(events the emulator accepted, duplicates it dropped)."""
    statuses = [item["status"] for item in state.events()]
    return statuses.count("accepted"), statuses.count("duplicate")


def demo() -> None:
    """Start the TikTok emulator, set up a demo workspace, run it twice and show what TikTok received."""
    from offramp.core.cli.cmd_init import init

    env = Environment()
    try:
        open_store(env).dispose()
    except StoreNotInitializedError:
        init()
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)
    ctx = build_context()
    orders = (env.home / DEMO_DATABASE).resolve()  # the one file in offramp's home a source may read
    with _emulator() as emulator:
        base_url = emulator.base_url
        say(f"TikTok emulator listening on {base_url} (seeded app, advertisers and event set: docs/emulator.md)")
        with ctx.store.session() as session:
            document = ConfigDocument.model_validate(_emulator_config(base_url, orders))
            plan = apply_document(session, ctx, document, dry_run=False)
        say(
            f"Workspace {DEMO_WORKSPACE}: {plan.summary}"
            if plan.items
            else f"Workspace {DEMO_WORKSPACE} is up to date."
        )
        for item in plan.items:
            say(f"  {item}")
        _authorize(ctx, base_url)
        now = datetime.now(ZoneInfo(DEMO_TIMEZONE)).replace(tzinfo=None)
        rows = write_demo_orders(orders, now)
        say(f"Sample warehouse: {rows} order lines in {orders} (some with mistakes on purpose).")
        say("")
        first = _run(ctx)
        for line in cmd_run_lines(first):
            say(line)
        accepted, duplicates = _received(emulator.state)
        received = [item["payload"] for item in emulator.state.events(status="accepted", limit=1)]
        if received:
            say("")
            say("The first event as TikTok received it (identifiers hashed, line items in contents):")
            say(json.dumps(received[0], indent=2))
        say(f"The emulator accepted {accepted} events.")
        say("")
        say("Running it again: the same rows give the same event ids, which TikTok deduplicates.")
        second = _run(ctx)
        for line in cmd_run_lines(second)[:2]:
            say(line)
        accepted_after, duplicates_after = _received(emulator.state)
        say(
            f"The emulator accepted {accepted_after - accepted} new events and dropped "
            f"{duplicates_after - duplicates} duplicates: nothing is counted twice."
        )
    say("")
    cmd_orchestrations.list_(workspace=DEMO_WORKSPACE)
    say("")
    say("What to try next:")
    say(f"  offramp runs show {first.run_id} --rejects     every rejected order and why")
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
