"""A store-orders query, end to end: DuckDB -> Arrow record batches -> the TikTok preparer -> batches -> the sender ->
the emulator over loopback, with a real stored, authorized credential.

The events the emulator received are compared, field for field, with events this module computes on its own from the
fixture rows, following the documented rules (docs/tiktok-destination.md and docs/tiktok-api-facts.md, "Hashing"):
emails trimmed and lower-cased, phones in E.164 (the fixture lists each number's E.164 form), SHA-256 hex;
``event_time`` the Unix seconds of the local timestamp; one event per order with its line items as ``contents``,
``value`` their sum of price times quantity and USD when no currency is given. Nothing expected is computed with the
code under test.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx
import orjson
import pyarrow as pa
import pytest
from emulator_client import Api

from offramp.core import DeliveryResult, PreparedEvent, RejectedEvent
from offramp.core.testing import PluginWorkspace
from offramp.credentials.tiktok_session import HOOKS as CREDENTIAL_HOOKS
from offramp.plugins.tiktok.destination import HOOKS
from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    run_emulator,
)

TIMEZONE = "America/New_York"
EVENT_NAME_MAP = {"Store Sale": "Purchase"}
READ_BATCH_ROWS = 7  # record batches from DuckDB: orders straddle them
SEND_BATCH_SIZE = 5  # events per request
PARTNER = "offramp-e2e"

# Every phone number of the fixture and its E.164 form in the default region (US); None: not a valid number.
E164: dict[str, str | None] = {
    "(415) 555-0132": "+14155550132",
    "+44 20 7946 0018": "+442079460018",
    "415.555.0102": "+14155550102",
    "+1 646 555 0101": "+16465550101",
    "(312) 555-0188": "+13125550188",
    "n/a": None,
}

# (order, hours before now, event, emails, phone, store, currency, [(sku, product, unit price, quantity)])
Order = tuple[str, float, str | None, list[str | None] | None, str | None, str, str | None, list[tuple[Any, ...]]]
ORDERS: list[Order] = [
    ("ORD-1001", 2.0, "Purchase", ["Ann.Lee@Example.com ", "ann.lee@example.com"], "(415) 555-0132", "store-7", None,
     [("SKU-TEE", "Organic tee", "24.50", 2), ("SKU-SOCK", "Wool socks", "9.99", 3),
      ("SKU-CAP", "Field cap", "18.00", 1)]),
    ("ORD-1002", 5.5, "Purchase", ["raj.patel@example.org"], None, "store-2", None,
     [("SKU-MUG", "Camp mug", "12.00", 1)]),
    ("ORD-1003", 9.0, "Purchase", None, "+44 20 7946 0018", "store-9", "gbp",
     [("SKU-SCARF", "Merino scarf", "35.00", 1), ("SKU-SOCK", "Wool socks", "9.99", 2)]),
    ("ORD-1004", 20.25, "Store Sale", ["m.garcia@example.com", "Maria.Garcia@Example.net"], "415.555.0102", "store-7",
     None, [("SKU-BOOT", "Trail boot", "129.95", 1), ("SKU-LACE", "Laces", "3.49", 2)]),
    ("ORD-1005", 26.0, "Gift Card Reload", ["kim.ng@example.com"], "(312) 555-0188", "store-2", None,
     [("GIFT-50", "Gift card", "50.00", 1)]),
    ("ORD-1006", 30.0, "Purchase", None, None, "store-9", None,
     [("SKU-TEE", "Organic tee", "24.50", 1), ("SKU-CAP", "Field cap", "18.00", 1)]),
    ("ORD-1007", 33.5, "Purchase", ["lee.chan@example.com"], "+1 646 555 0101", "store-7", None,
     [("SKU-BOOT", "Trail boot", "129.95", 1), ("SKU-BOOT", "Trail boot (return)", "-129.95", 1)]),
    ("ORD-1008", 41.0, "Purchase", ["noor.haddad@example.com"], "n/a", "store-2", "EUR",
     [("SKU-MUG", "Camp mug", "11.50", 4)]),
    ("ORD-1009", 47.75, "Purchase", ["", None, " Zoe@Example.COM"], None, "store-9", None,
     [("SKU-SOCK", "Wool socks", "9.99", 1), ("SKU-TEE", "Organic tee", "24.50", 1),
      ("SKU-LACE", "Laces", "3.49", 5)]),
    ("ORD-1010", 52.0, "Purchase", ["omar.said@example.com"], "(312) 555-0188", "store-7", None,
     [("SKU-SCARF", "Merino scarf", "35.00", 2)]),
    ("ORD-1011", 24 * 40, "Purchase", ["old.customer@example.com"], "(415) 555-0132", "store-2", None,
     [("SKU-CAP", "Field cap", "18.00", 1)]),
    ("ORD-1012", 60.0, "Store Sale", ["pat.quinn@example.com"], "+1 646 555 0101", "store-9", None,
     [("SKU-TEE", "Organic tee", "24.50", 1), ("SKU-MUG", "Camp mug", "12.00", 2)]),
    ("ORD-1013", 71.0, "Purchase", ["SAM.ROSS@EXAMPLE.COM"], None, "store-7", None,
     [("SKU-LACE", "Laces", "3.49", 1)]),
    ("ORD-1014", 80.5, "Purchase", ["ivy.tran@example.com"], "415.555.0102", "store-2", "usd",
     [("SKU-BOOT", "Trail boot", "129.95", 1), ("SKU-SOCK", "Wool socks", "9.99", 2)]),
    ("ORD-1015", 95.0, "Purchase", ["eli.moss@example.com"], "(415) 555-0132", "store-9", None,
     [("SKU-SCARF", "Merino scarf", "35.00", 1)]),
]  # fmt: skip
EXPECTED_REJECTIONS = {
    "ORD-1005": ("unknown_event_name", 1),  # "Gift Card Reload" is not in the event-name map
    "ORD-1006": ("missing_identifiers", 2),  # no email, no phone
    "ORD-1007": ("invalid_value", 2),  # a negative price on one line rejects the whole order
    "ORD-1011": ("event_too_old", 1),  # 40 days: outside the 28-day window
}
EXPECTED_WARNINGS = {"ORD-1008": ("invalid_phone",)}

QUERY = """
    SELECT order_no AS event_id, event, sold_at AS timestamp, emails AS email, phone, store AS shop_id,
           order_no AS order_id, 'in_store' AS event_channel, sku AS content_id, product AS content_name,
           unit_price AS price, qty AS quantity, currency
    FROM store_orders
    ORDER BY order_no, line_no
"""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def local_time(instant: int, zone: ZoneInfo) -> datetime:
    """The wall-clock time of ``instant`` in ``zone``, without zone: what a till writes in a TIMESTAMP column.

    Moved back an hour while the wall-clock time is ambiguous (the hour DST ends), so it names one instant."""
    while True:
        local = datetime.fromtimestamp(instant, zone).replace(tzinfo=None)
        if local.replace(tzinfo=zone, fold=0).utcoffset() == local.replace(tzinfo=zone, fold=1).utcoffset():
            return local
        instant -= 3600


@dataclass
class Fixture:
    """The store orders in DuckDB, and what they must become."""

    con: duckdb.DuckDBPyConnection
    now: int
    instants: dict[str, int]

    def expected_events(self) -> list[dict[str, Any]]:
        """TikTok events for the orders that are not rejected, in order, computed from the fixture alone."""
        events = []
        for order, _, name, emails, phone, store, currency, lines in ORDERS:
            if order in EXPECTED_REJECTIONS:
                continue
            user: dict[str, Any] = {}
            hashed = [sha256(e.strip().lower()) for e in emails or [] if e is not None and e.strip()]
            if hashed:
                user["email"] = list(dict.fromkeys(hashed))
            e164 = E164[phone] if phone is not None else None
            if e164 is not None:
                user["phone"] = [sha256(e164)]
            contents = [
                {"content_id": sku, "content_name": product, "price": float(Decimal(price)), "quantity": quantity}
                for sku, product, price, quantity in lines
            ]
            total = sum(Decimal(price) * quantity for _, _, price, quantity in lines)
            properties = {
                "contents": contents,
                "currency": (currency or "USD").upper(),
                # Exact: the sum is rounded to 3 decimals, so 35.00 + 2 * 9.99 is 54.98, not 54.980000000000004.
                "value": float(total),
                "order_id": order,
                "shop_id": store,
                "event_channel": "in_store",
            }
            event_name = EVENT_NAME_MAP.get(name, name) if name is not None else None
            events.append(
                {
                    "event": event_name,
                    "event_time": self.instants[order],
                    "event_id": order,
                    "user": user,
                    "properties": properties,
                }
            )
        return events

    def rows_queried(self) -> int:
        [(count,)] = self.con.sql(f"SELECT count(*) FROM ({QUERY})").fetchall()
        return int(count)


@pytest.fixture
def fixture() -> Iterator[Fixture]:
    """An in-memory DuckDB with a `store_orders` table: one row per line item, the order's columns repeated."""
    now = int(time.time())
    zone = ZoneInfo(TIMEZONE)
    con = duckdb.connect()
    con.execute(
        """
        CREATE TABLE store_orders (
            order_no VARCHAR, line_no INTEGER, event VARCHAR, sold_at TIMESTAMP, emails VARCHAR[], phone VARCHAR,
            store VARCHAR, currency VARCHAR, sku VARCHAR, product VARCHAR, unit_price DECIMAL(10, 2), qty INTEGER
        )
        """
    )
    instants: dict[str, int] = {}
    rows = []
    for order, hours_ago, name, emails, phone, store, currency, lines in ORDERS:
        sold_at = local_time(now - int(hours_ago * 3600), zone)
        instants[order] = int(sold_at.replace(tzinfo=zone).timestamp())
        for line_no, (sku, product, price, quantity) in enumerate(lines, start=1):
            rows.append([order, line_no, name, sold_at, emails, phone, store, currency, sku, product, price, quantity])
    con.executemany("INSERT INTO store_orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    try:
        yield Fixture(con, now, instants)
    finally:
        con.close()


# -- the credential, the destination and the emulator --------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_api() -> Iterator[Api]:
    with run_emulator() as emulator, httpx.Client(base_url=emulator.base_url, timeout=10) as client:
        yield Api(emulator, client)


@pytest.fixture
def api(shared_api: Api) -> Api:
    shared_api.state.reset()
    return shared_api


@pytest.fixture
def services(plugin_workspace: PluginWorkspace, api: Api) -> PluginWorkspace:
    """A fresh store with credential `tt` (the emulator's app), authorized as the emulator's admin."""
    base = api.emulator.base_url
    raw = {"app_id": DEFAULT_APP_ID, "app_secret": DEFAULT_APP_SECRET, "api_base_url": base,
           "auth_url": f"{base}/portal/auth"}  # fmt: skip
    handle = plugin_workspace.add_credential("tt", "tiktok-offline-events", raw)
    assert CREDENTIAL_HOOKS.complete_authorization is not None
    CREDENTIAL_HOOKS.complete_authorization(handle, ADMIN_AUTH_CODE)
    return plugin_workspace


def add_stores_destination(workspace: PluginWorkspace, name: str, **settings: Any) -> None:
    values = {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_id": DEFAULT_EVENT_SET_ID,
              "batch_size": SEND_BATCH_SIZE, **settings}  # fmt: skip
    workspace.add_destination(name, "tiktok-ads-offline-events", "tt", values)


# -- one run -------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one pass over the query did, as a runner would record it."""

    record_batches: list[pa.RecordBatch] = field(default_factory=list)
    prepared: list[PreparedEvent] = field(default_factory=list)
    rejected: list[RejectedEvent] = field(default_factory=list)
    results: list[DeliveryResult] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    unknown_columns: tuple[str, ...] = ()

    @property
    def sent(self) -> list[str]:
        return [event_id for result in self.results for event_id in result.sent]


def run_query(
    fixture: Fixture, workspace: PluginWorkspace, destination: str, options: dict[str, Any] | None = None
) -> Run:
    """Query -> preparer (record batches of 7 rows) -> batches of at most the sender's maximum -> sender, opened
    through the type's hooks with the context of an orchestration with these (flat) options."""
    shared = {"timezone": TIMEZONE, "default_phone_region": "US", "event_name_map": EVENT_NAME_MAP}
    context = workspace.context(destination, options={**shared, **(options or {})}, now=fixture.now, timeout_seconds=5)
    preparer = HOOKS.open_preparer(context)
    sender = HOOKS.open_sender(context)
    run = Run()
    pending: list[PreparedEvent] = []

    def send(events: list[PreparedEvent]) -> None:
        result = sender.send(events)
        run.results.append(result)
        run.batch_sizes.append(len(events))
        assert result.error is None and not result.failed and not result.unsent, result

    def take(part: Any) -> None:
        events = part.all_events()  # the preparer gives columns; the sender takes objects as well
        run.prepared.extend(events)
        run.rejected.extend(part.all_rejected())
        pending.extend(events)
        while len(pending) >= sender.max_batch_size:
            send(pending[: sender.max_batch_size])
            del pending[: sender.max_batch_size]

    try:
        reader = fixture.con.sql(QUERY).to_arrow_reader(READ_BATCH_ROWS)
        for batch in reader:
            run.record_batches.append(batch)
            take(preparer.prepare(batch))
        take(preparer.finish())
        if pending:
            send(pending)
        run.unknown_columns = preparer.unknown_columns
    finally:
        sender.close()
        preparer.close()
    return run


def received_bodies(api: Api) -> list[dict[str, Any]]:
    """The accepted request bodies, oldest first. The control API shows events, not the bodies' top level, so
    this reads the emulator's log directly (as test_sender.py does)."""
    with api.state.lock:
        return [orjson.loads(received.raw) for received in api.state.log._batches]


# -- the tests -----------------------------------------------------------------------------------------------------


def test_store_orders_reach_tiktok_as_the_documented_events(
    fixture: Fixture, services: PluginWorkspace, api: Api
) -> None:
    add_stores_destination(services, "stores", partner_name=PARTNER)

    run = run_query(fixture, services, "stores")

    # The fixture does what it is for: record batches of 7 rows, with orders cut across two of them.
    assert {batch.num_rows for batch in run.record_batches[:-1]} == {READ_BATCH_ROWS}
    straddling = [
        batch.column("event_id")[-1].as_py()
        for batch, following in zip(run.record_batches, run.record_batches[1:], strict=False)
        if batch.column("event_id")[-1].as_py() == following.column("event_id")[0].as_py()
    ]
    assert straddling, "no order straddles two record batches"
    assert run.unknown_columns == ()

    # Every row queried is accounted for: in an event sent, or rejected with the expected reason.
    expected = fixture.expected_events()
    rows_by_event = {event.event_id: event.rows for event in run.prepared}
    rows_sent = sum(rows_by_event[event_id] for event_id in run.sent)
    rows_rejected = sum(item.rows for item in run.rejected)
    assert rows_sent + rows_rejected == fixture.rows_queried() == sum(len(order[-1]) for order in ORDERS)
    assert {item.event_id: (item.reason, item.rows) for item in run.rejected} == EXPECTED_REJECTIONS
    assert all(item.detail for item in run.rejected)
    # The unmapped event name is named (a category label the report lists); no other rejection carries a value.
    assert {item.event_id: item.label for item in run.rejected if item.label} == {"ORD-1005": "Gift Card Reload"}
    assert {event.event_id: event.warnings for event in run.prepared if event.warnings} == EXPECTED_WARNINGS
    assert run.sent == [event["event_id"] for event in expected]

    # What TikTok received: the expected events, field for field, in query order, each once.
    received = api.state.events()
    assert [item["status"] for item in received] == ["accepted"] * len(expected)
    assert [item["payload"] for item in received] == expected

    # The requests: batches of at most 5 events in TikTok's top level, the destination's partner name, no test code.
    assert run.batch_sizes == [5, 5, 1]
    bodies = received_bodies(api)
    assert [len(body["data"]) for body in bodies] == run.batch_sizes
    for body in bodies:
        assert list(body) == ["event_source", "event_source_id", "partner_name", "data"]
        assert (body["event_source"], body["event_source_id"], body["partner_name"]) == (
            "offline", DEFAULT_EVENT_SET_ID, PARTNER,
        )  # fmt: skip
    assert [event for body in bodies for event in body["data"]] == expected
    request_ids = [request_id for result in run.results for request_id in result.request_ids]
    assert sorted(request_ids) == sorted({item["request_id"] for item in received})

    # A second identical run sends the same ids; TikTok deduplicates them (still answering OK).
    again = run_query(fixture, services, "stores")
    assert again.sent == run.sent
    assert [e.body for e in again.prepared] == [e.body for e in run.prepared]
    assert {item.event_id: (item.reason, item.rows) for item in again.rejected} == EXPECTED_REJECTIONS
    statuses = Counter((item["payload"]["event_id"], item["status"]) for item in api.state.events())
    assert statuses == Counter([(i, "accepted") for i in run.sent] + [(i, "duplicate") for i in run.sent])
    stats = api.state.statistics()
    assert (stats["events_received"], stats["events_accepted"], stats["duplicates_dropped"]) == (
        2 * len(expected), len(expected), len(expected),
    )  # fmt: skip


def test_a_test_event_code_goes_in_the_top_level_and_test_events_are_not_deduplicated(
    fixture: Fixture, services: PluginWorkspace, api: Api
) -> None:
    add_stores_destination(services, "stores-plain")  # no partner name

    first = run_query(fixture, services, "stores-plain", {"test_event_code": "TEST31337"})
    second = run_query(fixture, services, "stores-plain", {"test_event_code": "TEST31337"})

    expected = fixture.expected_events()
    assert first.sent == second.sent == [event["event_id"] for event in expected]
    bodies = received_bodies(api)
    assert len(bodies) == 6
    for body in bodies:
        assert list(body) == ["event_source", "event_source_id", "test_event_code", "data"]
        assert (body["event_source"], body["event_source_id"], body["test_event_code"]) == (
            "offline", DEFAULT_EVENT_SET_ID, "TEST31337",
        )  # fmt: skip
    received = api.state.events()
    assert [item["payload"] for item in received] == expected + expected
    assert {(item["status"], item["test_event_code"]) for item in received} == {("accepted", "TEST31337")}
    stats = api.state.statistics()
    assert (stats["test_events"], stats["duplicates_dropped"]) == (2 * len(expected), 0)
