"""A workspace whose orchestration alerts three channels, each delivered to a loopback stand-in: a webhook receiver
(signed with an hmac-secret credential), a Slack stand-in (its URL a secret), and an SMTP server (aiosmtpd) that
takes a username-password login; and a dummy destination whose knob makes runs fail and recover."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alert_servers import SMTP_PASSWORD, SMTP_USER, receiving, smtp_server
from alert_setup import SLACK_PATH, SQL, WEBHOOK_SECRET, Channels


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The state store: SQLite, then PostgreSQL when OFFRAMP_TEST_POSTGRES_URL is set."""
    if request.param == "postgresql":
        monkeypatch.setenv("OFFRAMP_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return str(request.param)


@pytest.fixture
def stand_ins() -> Iterator[Channels]:
    # AUTH over plain SMTP only because the server is on loopback (the channel refuses a password elsewhere).
    with (
        receiving() as hook,
        receiving(SLACK_PATH) as slack,
        smtp_server(login=True) as smtp,
    ):
        yield Channels(hook, slack, smtp)


@pytest.fixture
def alerting(
    cli: Any, store: str, offramp_home: Path, stand_ins: Channels, monkeypatch: pytest.MonkeyPatch
) -> Channels:
    """Production with channels `hook`, `slack` and `mail`, and orchestration `orders` (12 rows to the dummy
    destination `shop`) whose alert rules notify all three (the defaults: failure, recovery, re-authorization)."""
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("SLACK_URL", stand_ins.slack.url)
    monkeypatch.setenv("SHOP_TOKEN", "shop-token-value")
    cli.ok("init")
    cli.ok("credentials", "add", "signer", "--type", "hmac-secret", "--set", "secret=env:HOOK_SECRET")
    cli.ok(
        "credentials", "add", "smtp-login", "--type", "username-password", "--set", "host=127.0.0.1",
        "--set", f"username={SMTP_USER}", "--set", "password=env:SMTP_PASSWORD",
    )  # fmt: skip
    cli.ok("alerts", "channels", "add", "hook", "--type", "webhook", "--url", stand_ins.hook.url,
           "--credential", "signer")  # fmt: skip
    cli.ok("alerts", "channels", "add", "slack", "--type", "slack", "--url-env", "SLACK_URL")
    cli.ok(
        "alerts", "channels", "add", "mail", "--type", "email", "--host", "127.0.0.1",
        "--port", str(stand_ins.smtp.port), "--no-starttls", "--sender", "offramp@example.com",
        "--to", "oncall@example.com", "--to", "data@example.com", "--credential", "smtp-login",
    )  # fmt: skip
    cli.ok("credentials", "add", "shop-token", "--type", "static-token", "--set", "token=env:SHOP_TOKEN")
    cli.ok("destinations", "add", "shop", "--type", "dummy", "--credential", "shop-token", "--set", "batch_size=5")
    cli.ok("orchestrations", "add", "orders", "--destination", "shop", "--sql", SQL)
    cli.ok("alerts", "rules", "set", "orders", "--channel", "hook", "--channel", "slack", "--channel", "mail")
    return stand_ins
