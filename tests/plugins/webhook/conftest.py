"""The webhook destination's conformance harness: the real hooks, a real workspace, a loopback receiver."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from webhook_receiver import Answer, Receiver, running

from offramp.core import DestinationContext, DestinationType, PreparedEvent
from offramp.core.testing import ConformanceHarness, PluginWorkspace
from offramp.plugins.webhook import DESTINATION_TYPE
from offramp.plugins.webhook.runtime import MISSING_EVENT_ID, UNENCODABLE_VALUE

SECRET = "whsec-5b1f0c9e7a2d4e8f"


class WebhookHarness:
    """One `webhook` destination bound to an `hmac-secret` credential, sending to a fresh receiver."""

    def __init__(self, workspace: PluginWorkspace, receiver: Receiver) -> None:
        self.workspace = workspace
        self.receiver = receiver
        workspace.add_credential("signing", "hmac-secret", {"secret": SECRET})
        workspace.add_destination(
            "hooks", "webhook", "signing", {"url": receiver.url, "batch_size": 50, "hash_columns": ["email"]}
        )

    @property
    def destination_type(self) -> DestinationType:
        return DESTINATION_TYPE

    def context(self) -> DestinationContext:
        return self.workspace.context("hooks", timeout_seconds=5.0)

    def good_rows(self, events: int) -> pa.Table:
        return pa.table(
            {
                "event_id": [f"evt-{number:05d}" for number in range(events)],
                "email": [f"Customer.{number}@Example.com" for number in range(events)],
                "value": [number * 1.5 for number in range(events)],
                "ordered_at": [datetime(2026, 11, 30, 12, number % 60) for number in range(events)],
            }
        )

    def bad_rows(self) -> tuple[pa.Table, set[str]]:
        table = pa.table(
            {
                "event_id": [None, "   ", "evt-bad-1"],
                "email": ["jane.doe@example.com", "+33612345678", "john.roe@example.org"],
                "value": [1.0, 2.0, float("nan")],
                "ordered_at": [datetime(2026, 11, 30, 12, 0)] * 3,
            }
        )
        return table, {MISSING_EVENT_ID, UNENCODABLE_VALUE}

    def transient(self) -> AbstractContextManager[None]:
        return self.receiver.forced(Answer(503, {"Retry-After": "0"}))

    def terminal(self) -> AbstractContextManager[None]:
        return self.receiver.forced(Answer(401, body=b'{"error": "unknown key"}'))

    @contextmanager
    def refusing(self, events: Sequence[PreparedEvent]) -> Iterator[set[str]]:
        refused = {event.event_id for event in events[::3]}
        with self.receiver.refusing(refused):
            yield refused

    def delivered(self) -> list[str]:
        return self.receiver.delivered()

    def secrets(self) -> Sequence[str]:
        return [SECRET]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver(secret=SECRET)) as served:
        yield served


@pytest.fixture
def conformance_harness(tmp_path: Path, receiver: Receiver) -> Iterator[ConformanceHarness]:
    with PluginWorkspace(tmp_path / "store") as workspace:
        yield WebhookHarness(workspace, receiver)
