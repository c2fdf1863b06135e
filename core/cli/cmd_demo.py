"""`offramp demo`: everything that exists so far, on embedded defaults, in one command.

It initializes the store if needed, starts the TikTok emulator on loopback, applies a demo workspace (a TikTok
credential and destination pointed at the emulator, a dummy destination, an orchestration over inline sample
rows), authorizes the credential through the emulator's consent page (the real OAuth code exchange), checks what
the token reaches, and shows the workspace. The workspace is applied as configuration as code, so a second run
changes nothing but the authorization.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from offramp.core.cli import cmd_credentials, cmd_destinations, cmd_orchestrations
from offramp.core.cli.common import build_context
from offramp.core.cli.output import say
from offramp.core.environment import Environment
from offramp.core.errors import StoreNotInitializedError
from offramp.core.oauth_callback import check_state, new_state, parse_redirect
from offramp.core.services.config_io import ConfigDocument, apply_document
from offramp.core.services.context import Context
from offramp.core.state.store import open_store

DEMO_WORKSPACE = "demo"
DEMO_EMULATOR_PORT = 9321
# The emulator's seeded app (docs/emulator.md); the demo never talks to TikTok. Real secrets are given with
# --set key=env:VAR or at a prompt.
DEMO_APP_ID = "7100000000000000001"
DEMO_ADVERTISER_ID = "7200000000000000001"
DEMO_EVENT_SET_ID = "7300000000000000001"
DEMO_SECRETS = {"OFFRAMP_DEMO_APP_SECRET": "emulator-app-secret", "OFFRAMP_DEMO_TOKEN": "demo-token-not-real"}

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
            "source": "duckdb::memory:",
            "options": {"event_name_map": {"Order Completed": "CompletePayment"}, "timezone": "America/Los_Angeles"},
            "sql": DEMO_SQL,
        }
    ],
}


def _emulator_config(base_url: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(json.dumps(DEMO_CONFIG))  # a deep copy
    settings = config["credentials"][0]["settings"]
    settings.update(api_base_url=base_url, auth_url=f"{base_url}/portal/auth")
    return config


@contextmanager
def _emulator() -> Iterator[str]:
    from offramp.plugins.tiktok.emulator import run_emulator

    try:
        with run_emulator(port=DEMO_EMULATOR_PORT) as running:
            yield running.base_url
    except OSError:  # the demo's port is taken: any free port will do
        with run_emulator(port=0) as running:
            yield running.base_url


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


def demo() -> None:
    """Start the TikTok emulator, set up and authorize a demo workspace, and show it."""
    from offramp.core.cli.cmd_init import init

    try:
        open_store(Environment()).dispose()
    except StoreNotInitializedError:
        init()
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)
    ctx = build_context()
    with _emulator() as base_url:
        say(f"TikTok emulator listening on {base_url} (seeded app, advertisers and event set: docs/emulator.md)")
        with ctx.store.session() as session:
            document = ConfigDocument.model_validate(_emulator_config(base_url))
            plan = apply_document(session, ctx, document, dry_run=False)
        say(
            f"Workspace {DEMO_WORKSPACE}: {plan.summary}"
            if plan.items
            else f"Workspace {DEMO_WORKSPACE} is up to date."
        )
        for item in plan.items:
            say(f"  {item}")
        _authorize(ctx, base_url)
    say("")
    cmd_credentials.list_(workspace=DEMO_WORKSPACE)
    say("")
    cmd_destinations.list_(workspace=DEMO_WORKSPACE)
    say("")
    cmd_orchestrations.list_(workspace=DEMO_WORKSPACE)
    say("")
    say("Look closer: offramp orchestrations show demo-store-purchases -w demo")
    say("             offramp export -w demo        offramp plugins show tiktok-ads-offline-events")
    say("             offramp emulator tiktok       (then point a credential at it: docs/tiktok-credentials.md)")
    say("Not in this version yet: `offramp run` (the demo will send its events once the runner lands).")
