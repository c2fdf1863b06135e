"""The TikTok destination under the destination conformance suite, over real HTTP on loopback to the emulator.

The harness stores a real `tiktok-offline-events` credential pointed at the emulator, authorizes it with the
emulator's seeded admin auth code (what `offramp credentials authorize` does), adds a destination bound to it and
opens the destination's hooks through its descriptor, as the runner does. Faults come from the emulator's own
controls: HTTP 503 pages (transient), a revoked grant (terminal) and poisoned field values (TikTok's 40002 for the
events that carry them). Nothing of the plugin is mocked.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest
from emulator_client import Api

from offramp.core import (
    CredentialHandle,
    DestinationContext,
    DestinationError,
    PreparedEvent,
    Preparer,
    Sender,
    Terminal,
)
from offramp.core.plugin_types import DestinationType
from offramp.core.testing import ConformanceHarness, DestinationConformance, PluginWorkspace
from offramp.core.testing.checks import prepare_all, record_batches
from offramp.credentials.tiktok_session import HOOKS as CREDENTIAL_HOOKS
from offramp.plugins.tiktok import DESTINATION_TYPE
from offramp.plugins.tiktok.destination import HOOKS
from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    run_emulator,
)

CREDENTIAL = "tt"
DESTINATION = "stores"
# Small, so the oversized-batch test prepares 11 events, not 1001, and the refusal test fits one request.
BATCH_SIZE = 10

SCHEMA = pa.schema(
    {
        "event_id": pa.string(),
        "event": pa.string(),
        "timestamp": pa.timestamp("s", tz="UTC"),
        "email": pa.string(),
        "phone": pa.string(),
        "order_id": pa.string(),
        "shop_id": pa.string(),
        "content_id": pa.string(),
        "content_name": pa.string(),
        "price": pa.float64(),
        "quantity": pa.int64(),
    }
)
LINE_ITEMS = (1, 2, 1, 3)  # rows of event n: LINE_ITEMS[n % 4]
PRODUCTS = (("SKU-TEE", "Organic tee", 24.5), ("SKU-SOCK", "Wool socks", 9.75), ("SKU-CAP", "Field cap", 18.25))


class TikTokHarness:
    """The TikTok destination with a stored, authorized credential, sending to one emulator on loopback."""

    def __init__(self, api: Api, workspace: PluginWorkspace) -> None:
        self.api = api
        self.workspace = workspace
        # The emulator does not check event times, but the preparer does: measure from the real clock.
        self.now = int(time.time())
        self._seen_secrets: set[str] = set()
        self.handle = self.store_credential()
        self.authorize()
        values = {
            "advertiser_id": DEFAULT_ADVERTISER_ID,
            "event_set_id": DEFAULT_EVENT_SET_ID,
            "partner_name": "offramp-conformance",
            "batch_size": BATCH_SIZE,
        }
        workspace.add_destination(DESTINATION, DESTINATION_TYPE.name, CREDENTIAL, values)

    # -- set-up ----------------------------------------------------------------------------------------------------

    def store_credential(self) -> CredentialHandle:
        base = self.api.emulator.base_url
        raw = {
            "app_id": DEFAULT_APP_ID,
            "app_secret": DEFAULT_APP_SECRET,
            "api_base_url": base,
            "auth_url": f"{base}/portal/auth",
        }
        return self.workspace.add_credential(CREDENTIAL, "tiktok-offline-events", raw)

    def authorize(self, auth_code: str = ADMIN_AUTH_CODE) -> None:
        """What `offramp credentials authorize tt` does once the consent page redirected with ``auth_code``."""
        assert CREDENTIAL_HOOKS.complete_authorization is not None
        CREDENTIAL_HOOKS.complete_authorization(self.handle, auth_code)
        self._remember_secrets()

    def credential(self) -> tuple[str, dict[str, str]]:
        """The stored credential's status and its secrets (app secret, access and refresh token), decrypted."""
        state = self.handle.read()
        settings, status = state.settings, state.status
        values = {name: getattr(settings, name) for name in ("app_secret", "access_token", "refresh_token")}
        return status, {name: value.get_secret_value() for name, value in values.items() if value is not None}

    def _remember_secrets(self) -> None:
        # The stored ones, and every token the emulator ever issued: a refreshed or replaced one must not leak either.
        self._seen_secrets.update(self.credential()[1].values())
        with self.api.state.lock:
            issued = list(self.api.state.auth.access_tokens)
        self._seen_secrets.update(issued)
        self._seen_secrets.update(grant["refresh_token"] for grant in self.api.state.grants())

    # -- the harness -----------------------------------------------------------------------------------------------

    @property
    def destination_type(self) -> DestinationType:
        return DESTINATION_TYPE

    def context(self) -> DestinationContext:
        # The run's clock fixed at the harness's `now`, which good_rows() and bad_rows() are measured from.
        return self.workspace.context(DESTINATION, now=self.now, timeout_seconds=5)

    def open_preparer(self) -> Preparer:
        """A preparer through the type's hook, for the TikTok-specific tests below."""
        preparer: Preparer = HOOKS.open_preparer(self.context())
        return preparer

    def open_sender(self) -> Sender:
        """A sender through the type's hook, for the TikTok-specific tests below."""
        sender: Sender = HOOKS.open_sender(self.context())
        return sender

    def _moment(self, n: int) -> datetime:
        # Spread over the last four days, whole seconds (TikTok's event_time is integer seconds).
        return datetime.fromtimestamp(self.now - 900 - (n * 3_541) % (4 * 86_400), tz=UTC)

    def good_rows(self, events: int) -> pa.Table:
        """Store orders: every other event has line items, 2 or 3 adjacent rows sharing its event_id."""
        rows: list[dict[str, Any]] = []
        for n in range(events):
            for item in range(LINE_ITEMS[n % len(LINE_ITEMS)]):
                content_id, name, price = PRODUCTS[(n + item) % len(PRODUCTS)]
                rows.append(
                    {
                        "event_id": f"order-{n:05d}",
                        "event": "Purchase",
                        "timestamp": self._moment(n),
                        "email": f" Customer.{n}@Example.com ",
                        "phone": f"(415) 555-01{n % 100:02d}",
                        "order_id": f"O-{n:05d}",
                        "shop_id": f"store-{n % 4}",
                        "content_id": content_id,
                        "content_name": name,
                        "price": price,
                        "quantity": 1 + item,
                    }
                )
        return pa.Table.from_pylist(rows, schema=SCHEMA)

    def bad_rows(self) -> tuple[pa.Table, set[str]]:
        recent = self._moment(3)
        rows: list[dict[str, Any]] = [
            # A source system's own name for a sale, not mapped to a TikTok standard event.
            {
                "event_id": "bad-unmapped", "event": "Order Completed", "timestamp": recent,
                "email": "maria.garcia@example.com", "phone": "(415) 555-0132", "order_id": "O-77001",
                "shop_id": "store-2", "content_id": "SKU-TEE", "content_name": "Organic tee", "price": 24.5,
                "quantity": 1,
            },
            # A till sale without a loyalty card: nothing to match the buyer by.
            {
                "event_id": "bad-anonymous", "event": "Purchase", "timestamp": recent, "email": None, "phone": None,
                "order_id": "O-77002", "shop_id": "store-1", "content_id": "SKU-SOCK", "content_name": "Wool socks",
                "price": 9.75, "quantity": 3,
            },
            # Two line items, one with a negative price (a refund line): the whole order is rejected.
            {
                "event_id": "bad-refund-line", "event": "Purchase", "timestamp": recent,
                "email": "jon.baker@example.org", "phone": "+1 646 555 0101", "order_id": "O-77003",
                "shop_id": "store-3", "content_id": "SKU-CAP", "content_name": "Field cap", "price": 18.25,
                "quantity": 1,
            },
            {
                "event_id": "bad-refund-line", "event": "Purchase", "timestamp": recent,
                "email": "jon.baker@example.org", "phone": "+1 646 555 0101", "order_id": "O-77003",
                "shop_id": "store-3", "content_id": "SKU-TEE", "content_name": "Organic tee", "price": -24.5,
                "quantity": 1,
            },
            # Seven weeks old: outside TikTok's 28-day attribution window.
            {
                "event_id": "bad-stale", "event": "Purchase",
                "timestamp": datetime.fromtimestamp(self.now - 49 * 86_400, tz=UTC),
                "email": "li.wei@example.net", "phone": "(312) 555-0188", "order_id": "O-77004",
                "shop_id": "store-0", "content_id": "SKU-SOCK", "content_name": "Wool socks", "price": 9.75,
                "quantity": 2,
            },
        ]  # fmt: skip
        reasons = {"unknown_event_name", "missing_identifiers", "invalid_value", "event_too_old"}
        return pa.Table.from_pylist(rows, schema=SCHEMA), reasons

    @contextlib.contextmanager
    def faults(self, **changes: Any) -> Iterator[None]:
        """While open, the emulator's faults have these changes; afterwards, their values from before."""
        before = self.api.state.faults.model_dump()
        self.api.state.patch_faults(changes)
        try:
            yield
        finally:
            self.api.state.patch_faults({name: before[name] for name in changes})

    def transient(self) -> contextlib.AbstractContextManager[None]:
        # nginx's 503 page in front of TikTok: no envelope at all. The sender does not retry; the runner does.
        return self.faults(http_503=1.0)

    @contextlib.contextmanager
    def terminal(self) -> Iterator[None]:
        # The advertiser cancels the authorization in TikTok: every token of the grant answers 40105.
        assert self.api.state.revoke_user("admin") == 1
        try:
            yield
        finally:
            # Someone re-authorizes on the consent page, which hands out a fresh code.
            self.authorize(self.api.state.issue_auth_code("admin"))
            assert self.credential()[0] == "ready"

    @contextlib.contextmanager
    def refusing(self, events: Sequence[PreparedEvent]) -> Iterator[set[str]]:
        # TikTok's 40002 names a field, not an event: poison one event by its event_id and another by its
        # order_id, so the sender has to find two events in one batch by splitting it.
        assert len(events) >= 3
        first, second = events[1], events[-2]
        order_id = orjson.loads(second.body)["properties"]["order_id"]
        with self.faults(poison={"event_id": first.event_id, "properties.order_id": order_id}):
            yield {first.event_id, second.event_id}

    def delivered(self) -> list[str]:
        # Every event the emulator took, duplicates included (their status says so), oldest first.
        return [str(item["payload"]["event_id"]) for item in self.api.state.events()]

    def secrets(self) -> Sequence[str]:
        self._remember_secrets()
        return sorted(self._seen_secrets)


@pytest.fixture(scope="module")
def shared_api() -> Iterator[Api]:
    """One emulator for the module (stopping a server takes a while), reset to its seed for each harness."""
    with run_emulator() as emulator, httpx.Client(base_url=emulator.base_url, timeout=10) as client:
        yield Api(emulator, client)


@pytest.fixture
def harness(shared_api: Api, plugin_workspace: PluginWorkspace) -> TikTokHarness:
    shared_api.state.reset()  # events, counters, tokens, grants and faults back to the seed
    return TikTokHarness(shared_api, plugin_workspace)


@pytest.fixture
def conformance_harness(harness: TikTokHarness) -> ConformanceHarness:
    return harness


class TestTikTokConformance(DestinationConformance):
    """The TikTok destination passes every test of the conformance suite."""


# -- what the suite leaves to each destination ---------------------------------------------------------------------


def test_the_harness_is_what_it_claims(harness: TikTokHarness) -> None:
    """The harness's own promises: line items grouped, real secrets listed, faults undone after their block."""
    table = harness.good_rows(6)
    assert table.num_rows == 1 + 2 + 1 + 3 + 1 + 2
    events = prepare_all(harness.open_preparer(), record_batches(table)).events
    assert [(event.event_id, event.rows) for event in events] == [
        (f"order-{n:05d}", rows) for n, rows in enumerate((1, 2, 1, 3, 1, 2))
    ]
    status, stored = harness.credential()
    assert status == "ready" and set(stored) == {"app_secret", "access_token", "refresh_token"}
    assert set(stored.values()) <= set(harness.secrets())
    before = harness.api.state.faults
    with harness.transient(), harness.refusing(events):
        assert harness.api.state.faults != before
    assert harness.api.state.faults == before


def test_a_revoked_grant_names_the_reauthorization_and_marks_the_credential(harness: TikTokHarness) -> None:
    """TikTok-specific: the terminal error of the suite's terminal() carries TikTok's code and the fix."""
    events = prepare_all(harness.open_preparer(), record_batches(harness.good_rows(2))).events
    with contextlib.closing(harness.open_sender()) as sender:
        harness.api.state.revoke_user("admin")
        result = sender.send(events)
        error = result.error
        assert isinstance(error, DestinationError) and isinstance(error, Terminal) and error.fields["code"] == 40105
        assert result.unsent == events and not result.sent and not result.failed
        assert error.hint is not None
        assert "offramp credentials authorize tt" in error.hint
        assert harness.credential()[0] == "needs_reauth"
        # After re-authorizing, a sender opened afterwards sends again.
        harness.authorize(harness.api.state.issue_auth_code("admin"))
    with contextlib.closing(harness.open_sender()) as sender:
        assert sorted(sender.send(events).sent) == [event.event_id for event in events]
    assert harness.delivered() == [event.event_id for event in events]


def test_a_rate_limit_is_transient_with_tiktoks_advised_wait(harness: TikTokHarness) -> None:
    """The other transient answer TikTok gives (HTTP 200, code 40100): unsent, with a wait to honour."""
    events = prepare_all(harness.open_preparer(), record_batches(harness.good_rows(4))).events
    with contextlib.closing(harness.open_sender()) as sender:
        with harness.faults(fail={40100: 1.0}):
            result = sender.send(events)
        assert [event.event_id for event in result.unsent] == [event.event_id for event in events]
        assert result.error is not None and result.error.fields.get("code") == 40100
        assert result.retry_after_seconds is not None and result.retry_after_seconds > 0
        assert sorted(sender.send(result.unsent).sent) == sorted(event.event_id for event in events)


def test_a_resent_batch_is_deduplicated_by_tiktok_not_delivered_twice(harness: TikTokHarness) -> None:
    """At-least-once delivery is safe because the ids are stable: TikTok keeps the first of each."""
    events = prepare_all(harness.open_preparer(), record_batches(harness.good_rows(5))).events
    again = prepare_all(harness.open_preparer(), record_batches(harness.good_rows(5), (2, 3))).events
    with contextlib.closing(harness.open_sender()) as sender:
        assert len(sender.send(events).sent) == 5
        assert len(sender.send(again).sent) == 5
    statuses = [(item["payload"]["event_id"], item["status"]) for item in harness.api.state.events()]
    ids = [event.event_id for event in events]
    assert statuses == [(i, "accepted") for i in ids] + [(i, "duplicate") for i in ids]
    stats = harness.api.state.statistics()
    assert (stats["events_accepted"], stats["duplicates_dropped"]) == (5, 5)
