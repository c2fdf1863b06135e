"""`offramp demo`: everything that exists so far, on embedded defaults, in one command.

It initializes the store if needed and applies a demo workspace (a TikTok credential and destination pointed at
the local emulator's address, a dummy destination, and an orchestration over inline sample rows), then shows it.
Running it again changes nothing: the demo is applied as configuration as code.
"""

from __future__ import annotations

import os
from typing import Any

from offramp.core.cli import cmd_credentials, cmd_destinations, cmd_orchestrations
from offramp.core.cli.common import build_context
from offramp.core.cli.output import say
from offramp.core.environment import Environment
from offramp.core.errors import StoreNotInitializedError
from offramp.core.services.config_io import ConfigDocument, apply_document
from offramp.core.state.store import open_store

DEMO_WORKSPACE = "demo"
DEMO_EMULATOR_URL = "http://127.0.0.1:9321"
# Fake values: the demo never talks to TikTok. Real secrets are given with --set key=env:VAR or a prompt.
DEMO_SECRETS = {"OFFRAMP_DEMO_APP_SECRET": "demo-app-secret-not-real", "OFFRAMP_DEMO_TOKEN": "demo-token-not-real"}

DEMO_SQL = """\
-- Store purchases; one row per line item, grouped into one event per order by event_id.
SELECT order_id AS event_id, 'Order Completed' AS event, email, phone, purchased_at AS timestamp,
       sku AS content_id, price, quantity, 'USD' AS currency
FROM (VALUES
    ('ord-1001', 'Ada.Lovelace@Example.com ', '(415) 555-0101', TIMESTAMP '2026-11-20 10:15:00', 'sku-1', 19.99, 2),
    ('ord-1001', 'Ada.Lovelace@Example.com ', '(415) 555-0101', TIMESTAMP '2026-11-20 10:15:00', 'sku-7', 5.00, 1),
    ('ord-1002', 'grace@example.org', NULL, TIMESTAMP '2026-11-20 12:40:00', 'sku-3', 120.00, 1),
    ('ord-1003', NULL, '+44 20 7946 0958', TIMESTAMP '2026-11-21 09:05:00', 'sku-2', 42.50, 3)
) AS orders(order_id, email, phone, purchased_at, sku, price, quantity)
"""

DEMO_CONFIG: dict[str, Any] = {
    "workspace": DEMO_WORKSPACE,
    "credentials": [
        {
            "name": "demo-tiktok",
            "type": "tiktok-offline-events",
            "settings": {
                "app_id": "7000000000000000001",
                "app_secret": "env:OFFRAMP_DEMO_APP_SECRET",
                "api_base_url": DEMO_EMULATOR_URL,
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
                "advertiser_id": "7000000000000000002",
                "event_set_id": "7000000000000000003",
                "event_set_name": "Demo stores",
            },
        },
        {"name": "demo-dummy", "type": "dummy", "credential": "demo-token", "settings": {"reject_prob": 0.01}},
    ],
    "orchestrations": [
        {
            "name": "demo-store-purchases",
            "destination": "demo-tiktok-offline",
            "source": "duckdb::memory:",
            "options": {"event_name_map": {"Order Completed": "CompletePayment"}, "timezone": "America/Los_Angeles"},
            "sql": DEMO_SQL,
        }
    ],
}


def demo() -> None:
    """Set up a demo workspace with sample objects (store, key, credential, destinations, orchestration) and show it."""
    from offramp.core.cli.cmd_init import init

    try:
        open_store(Environment()).dispose()
    except StoreNotInitializedError:
        init()
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)
    ctx = build_context()
    with ctx.store.session() as session:
        plan = apply_document(session, ctx, ConfigDocument.model_validate(DEMO_CONFIG), dry_run=False)
    say(f"Workspace {DEMO_WORKSPACE}: {plan.summary}" if plan.items else f"Workspace {DEMO_WORKSPACE} is up to date.")
    for item in plan.items:
        say(f"  {item}")
    say("")
    cmd_credentials.list_(workspace=DEMO_WORKSPACE)
    say("")
    cmd_destinations.list_(workspace=DEMO_WORKSPACE)
    say("")
    cmd_orchestrations.list_(workspace=DEMO_WORKSPACE)
    say("")
    say("Look closer: offramp orchestrations show demo-store-purchases -w demo")
    say("             offramp export -w demo        offramp plugins show tiktok-ads-offline-events")
    say("Not in this version yet: the TikTok emulator and `offramp run` (the demo will run end to end once they land).")
