"""What the alert tests share: the loopback stand-ins' channels, the secrets that must never show, and helpers
that run `offramp` in processes of its own and make the dummy vendor fail and recover."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from alert_servers import SMTP_PASSWORD, Receiver, SmtpServer

WEBHOOK_SECRET = "whsec-alerts-0123456789abcdef-do-not-leak"
SLACK_PATH = "/services/T0ALERT/B0ALERT/xoxSlackAlertTokenDoNotLeak"
ROWS = 12
SQL = f"SELECT 'E-' || i AS event_id, 'Order Completed' AS event FROM range({ROWS}) AS t(i)"


@dataclass
class Channels:
    """The three stand-ins, by the name of the channel that sends to each."""

    hook: Receiver
    slack: Receiver
    smtp: SmtpServer

    @property
    def slack_url(self) -> str:
        return self.slack.url

    def secrets(self) -> list[str]:
        """What must never appear in output, logs, exports or the store unencrypted."""
        return [WEBHOOK_SECRET, SLACK_PATH.rsplit("/", 1)[1], SLACK_PATH, self.slack.url, SMTP_PASSWORD]


def break_vendor(cli: Any) -> None:
    """Make the dummy destination fail every run (a terminal error at its first batch)."""
    cli.ok("destinations", "update", "shop", "--set", "terminal_after_batches=0")


def mend_vendor(cli: Any) -> None:
    """Make the dummy destination deliver again."""
    cli.ok("destinations", "update", "shop", "--unset", "terminal_after_batches")


def offramp_process(*args: str) -> subprocess.CompletedProcess[str]:
    """`offramp ARGS` in a process of its own (the test's OFFRAMP_* settings and variables are in its environment),
    as a user's shell or a scheduler runs it."""
    command = [sys.executable, "-m", "offramp.core.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ), check=False)


def run_process(*args: str) -> tuple[int, dict[str, Any], str]:
    """`offramp run ARGS --json` in its own process: (exit status, summary, stderr)."""
    done = offramp_process("run", *args, "--json")
    return done.returncode, json.loads(done.stdout), done.stderr


def deliveries(cli: Any) -> list[dict[str, Any]]:
    """`alerts history --json`, oldest first."""
    rows: list[dict[str, Any]] = json.loads(cli.ok("alerts", "history", "--json").stdout)
    return list(reversed(rows))
