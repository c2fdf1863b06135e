"""Golden cases of turning query rows into TikTok events, held against both preparers.

Every case runs through the per-row reference and the vectorized preparer; they must give the same events, and
the events must be exactly what TikTok asks for (docs/tiktok-api-facts.md, "Request body", "Hashing", "Vocabularies").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest

from offramp.core import PreparedBatch
from offramp.core.errors import ConfigError
from offramp.plugins.tiktok.options import TikTokPrepareOptions as PrepareOptions
from offramp.plugins.tiktok.prepare import VectorizedPreparer
from offramp.plugins.tiktok.reference import ReferencePreparer
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings

NOW = int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp())
YESTERDAY = "2026-11-19T10:00:00Z"
YESTERDAY_EPOCH = int(datetime(2026, 11, 19, 10, 0, tzinfo=UTC).timestamp())

ALICE = " ALICE_abc@gmail.com "
ALICE_HASH = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"
PHONE = "(+1)2133734253"
PHONE_HASH = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"
USER_123_HASH = "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b"

Rows = pa.Table | list[pa.RecordBatch]
Preparer = ReferencePreparer | VectorizedPreparer


def settings(**overrides: Any) -> TikTokOfflineEventsDestinationSettings:
    values: dict[str, Any] = {"advertiser_id": "7200000000000000001", "event_set_id": "7300000000000000001"}
    return TikTokOfflineEventsDestinationSettings(**(values | overrides))


def options(**overrides: Any) -> PrepareOptions:
    return PrepareOptions(**({"now": NOW} | overrides))


@pytest.fixture(params=["reference", "vectorized"])
def make(request: pytest.FixtureRequest) -> Callable[..., Preparer]:
    kind = ReferencePreparer if request.param == "reference" else VectorizedPreparer

    def build(destination: TikTokOfflineEventsDestinationSettings | None = None, **option: Any) -> Preparer:
        return kind(destination or settings(), options(**option))

    return build


def run(preparer: Preparer, rows: Rows) -> PreparedBatch:
    batches = rows if isinstance(rows, list) else [rows]
    total = PreparedBatch()
    for batch in [*(preparer.prepare(b) for b in batches), preparer.finish()]:
        total.events.extend(batch.all_events())
        total.rejected.extend(batch.all_rejected())
    return total


def events(result: PreparedBatch) -> list[dict[str, Any]]:
    return [orjson.loads(event.body) for event in result.events]


def table(**columns: list[Any]) -> pa.Table:
    return pa.table(columns)


def one(**columns: Any) -> pa.Table:
    base: dict[str, Any] = {"event": "Purchase", "timestamp": YESTERDAY, "email": ALICE}
    return pa.table({key: [value] for key, value in (base | columns).items()})


def query(sql: str) -> pa.Table:
    with duckdb.connect() as con:
        return con.sql(sql).to_arrow_table()


# -- TikTok's documented vectors and the defects peers shipped (peers.md section F) ------------------------------


def test_tiktok_documented_vectors(make: Callable[..., Preparer]) -> None:
    [event] = events(run(make(), one(phone=PHONE, external_id="user_123", event_id="order-1")))
    assert event["user"] == {"email": [ALICE_HASH], "phone": [PHONE_HASH], "external_id": [USER_123_HASH]}


def test_local_number_gets_the_regions_country_code(make: Callable[..., Preparer]) -> None:
    [event] = events(run(make(), one(phone="(206) 555-0100", email=None)))
    assert event["user"]["phone"] == [hashlib.sha256(b"+12065550100").hexdigest()]
    assert event["user"]["phone"] != [hashlib.sha256(b"+2065550100").hexdigest()]


def test_phone_region_is_the_orchestrations(make: Callable[..., Preparer]) -> None:
    [event] = events(run(make(default_phone_region="GB"), one(phone="020 7946 0018", email=None)))
    assert event["user"]["phone"] == [hashlib.sha256(b"+442079460018").hexdigest()]


def test_phone_without_digits_is_dropped_not_hashed_as_plus(make: Callable[..., Preparer]) -> None:
    result = run(make(), one(phone="call me"))
    [event] = events(result)
    assert "phone" not in event["user"]
    assert result.events[0].warnings == ("invalid_phone",)
    assert hashlib.sha256(b"+").hexdigest() not in result.events[0].body.decode()


def test_possible_but_invalid_phone_is_dropped(make: Callable[..., Preparer]) -> None:
    # architecture.md: "5552671" parses as +15552671, possible but not valid: it must not be sent.
    [event] = events(run(make(), one(phone="5552671")))
    assert "phone" not in event["user"]


def test_email_with_spaces_is_trimmed_and_lowercased(make: Callable[..., Preparer]) -> None:
    [event] = events(run(make(), one(email="\t Alice_ABC@Gmail.com \n")))
    assert event["user"]["email"] == [hashlib.sha256(b"alice_abc@gmail.com").hexdigest()]


def test_prehashed_values_are_not_hashed_again(make: Callable[..., Preparer]) -> None:
    upper = ALICE_HASH.upper()
    [event] = events(run(make(), one(email=upper, phone=PHONE_HASH, external_id=USER_123_HASH)))
    assert event["user"] == {"email": [ALICE_HASH], "phone": [PHONE_HASH], "external_id": [USER_123_HASH]}


def test_empty_identifiers_are_dropped_never_hashed(make: Callable[..., Preparer]) -> None:
    [event] = events(run(make(), one(email="   ", phone=PHONE, external_id="")))
    assert event["user"] == {"phone": [PHONE_HASH]}
    assert hashlib.sha256(b"").hexdigest() not in str(event)


def test_external_id_keeps_its_case(make: Callable[..., Preparer]) -> None:
    [event] = events(run(make(), one(external_id=" User_123 ")))
    assert event["user"]["external_id"] == [hashlib.sha256(b"User_123").hexdigest()]


def test_value_zero_is_kept(make: Callable[..., Preparer]) -> None:
    [event] = events(run(make(), one(value=0, currency="EUR")))
    assert event["properties"]["value"] == 0
    assert event["properties"]["currency"] == "EUR"


def test_list_identifiers_from_duckdb_lists(make: Callable[..., Preparer]) -> None:
    rows = query(
        "SELECT 'Purchase' AS event, TIMESTAMP '2026-11-19 10:00:00' AS timestamp, "
        f"['{ALICE}', 'bob@example.com', 'ALICE_abc@gmail.com', NULL, ''] AS email, "
        f"['{PHONE}', 'nonsense'] AS phone"
    )
    result = run(make(), rows)
    [event] = events(result)
    bob = hashlib.sha256(b"bob@example.com").hexdigest()
    assert event["user"] == {"email": [ALICE_HASH, bob], "phone": [PHONE_HASH]}
    assert result.events[0].warnings == ("invalid_phone",)


# -- columns, renames and the request shape -----------------------------------------------------------------------


def test_every_column_lands_in_its_place(make: Callable[..., Preparer]) -> None:
    rows = one(
        EVENT="Purchase",  # names are case-insensitive
        event_id=" order-7 ",
        agent="Mozilla/5.0",
        cookie_id="ttp-cookie",
        tiktok_click_id="click-1",
        referrer_url="https://ref.example/",
        page_url="https://shop.example/p",
        ip="203.0.113.9",
        locale="en-US",
        lead_id="lead-9",
        order_id="A-1",
        shop_id="store-17",
        description="in-store sale",
        content_type="product",
        event_channel="in_store",
        currency="usd",
        value="59.98",
        content_id="SKU-1",
        content_name="Socks",
        content_category="Apparel",
        brand="Acme",
        price=29.99,
        quantity=2,
    ).drop_columns(["event"])
    [event] = events(run(make(destination=settings(limited_data_use=True)), rows))
    assert event == {
        "event": "Purchase",
        "event_time": YESTERDAY_EPOCH,
        "event_id": "order-7",
        "user": {
            "email": [ALICE_HASH],
            "ttclid": "click-1",
            "ttp": "ttp-cookie",
            "ip": "203.0.113.9",
            "user_agent": "Mozilla/5.0",
            "locale": "en-US",
            "lead_id": "lead-9",
        },
        "properties": {
            "contents": [
                {
                    "content_id": "SKU-1",
                    "content_name": "Socks",
                    "content_category": "Apparel",
                    "price": 29.99,
                    "quantity": 2,
                    "brand": "Acme",
                }
            ],
            "content_type": "product",
            "currency": "USD",
            "value": 59.98,
            "order_id": "A-1",
            "shop_id": "store-17",
            "description": "in-store sale",
            "event_channel": "in_store",
        },
        "page": {"url": "https://shop.example/p", "referrer": "https://ref.example/"},
        "limited_data_use": True,
    }


def test_bytes_on_the_wire(make: Callable[..., Preparer]) -> None:
    rows = one(event_id=12345, order_id=100045, price="29.99", quantity=2.0, content_id="SKU-1")
    [prepared] = run(make(), rows).events
    assert prepared.event_id == "12345"
    assert prepared.body == (
        b'{"event":"Purchase","event_time":' + str(YESTERDAY_EPOCH).encode() + b',"event_id":"12345",'
        b'"user":{"email":["' + ALICE_HASH.encode() + b'"]},'
        b'"properties":{"contents":[{"content_id":"SKU-1","price":29.99,"quantity":2}],'
        b'"currency":"USD","value":59.98,"order_id":"100045"}}'
    )


def test_no_nulls_and_no_empty_objects(make: Callable[..., Preparer]) -> None:
    rows = one(order_id=None, description="", page_url="  ", content_id=None, currency=None, value=None)
    [event] = events(run(make(), rows))
    assert event == {
        "event": "Purchase",
        "event_time": YESTERDAY_EPOCH,
        "event_id": event["event_id"],
        "user": {"email": [ALICE_HASH]},
    }
    assert isinstance(event["event_id"], str)


def test_unknown_columns_are_reported_once(make: Callable[..., Preparer]) -> None:
    preparer = make()
    rows = one(loyalty_tier="gold", Store_Region="west")
    run(preparer, [rows.to_batches()[0], rows.to_batches()[0]])
    assert preparer.unknown_columns == ("loyalty_tier", "Store_Region")


def test_two_columns_for_one_field_are_refused(make: Callable[..., Preparer]) -> None:
    rows = pa.table({"email": ["a@b.c"], "EMAIL": ["d@e.f"], "event": ["Purchase"], "timestamp": [YESTERDAY]})
    with pytest.raises(ConfigError, match="two columns for 'email'"):
        run(make(), rows)


def test_event_name_map_and_fixed_event_name(make: Callable[..., Preparer]) -> None:
    rows = table(event=["Order Completed", "Signup"], timestamp=[YESTERDAY] * 2, email=["a@b.c", "d@e.f"])
    mapped = make(event_name_map={"Order Completed": "CompletePayment", "Signup": "CompleteRegistration"})
    assert [event["event"] for event in events(run(mapped, rows))] == ["CompletePayment", "CompleteRegistration"]
    fixed = make(destination=settings(fixed_event_name="Purchase"))
    assert [event["event"] for event in events(run(fixed, rows))] == ["Purchase", "Purchase"]


# -- derived fields ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql_value", "timezone", "expected"),
    [
        ("TIMESTAMP '2026-11-19 10:00:00'", "UTC", "2026-11-19T10:00:00+00:00"),
        ("TIMESTAMP '2026-11-19 10:00:00'", "America/New_York", "2026-11-19T10:00:00-05:00"),
        ("TIMESTAMPTZ '2026-11-19 10:00:00+01:00'", "America/New_York", "2026-11-19T10:00:00+01:00"),
        ("DATE '2026-11-19'", "Europe/Paris", "2026-11-19T00:00:00+01:00"),
        ("'2026-11-19T10:00:00Z'", "America/New_York", "2026-11-19T10:00:00+00:00"),
        ("'2026-11-19 10:00:00.75'", "Asia/Tokyo", "2026-11-19T10:00:00+09:00"),
        ("'2026-11-19T10:00:00+05:30'", "UTC", "2026-11-19T10:00:00+05:30"),
        ("'2026-11-19'", "UTC", "2026-11-19T00:00:00+00:00"),
        ("1795082400", "Asia/Tokyo", "2026-11-19T10:00:00+00:00"),
        ("1795082400123", "UTC", "2026-11-19T10:00:00+00:00"),
        ("1795082400.9::DOUBLE", "UTC", "2026-11-19T10:00:00+00:00"),
        ("'1795082400'", "UTC", "2026-11-19T10:00:00+00:00"),
    ],
)
def test_event_time_from_every_kind_of_timestamp(
    make: Callable[..., Preparer], sql_value: str, timezone: str, expected: str
) -> None:
    rows = query(f"SELECT 'Purchase' AS event, {sql_value} AS timestamp, 'a@b.c' AS email")
    [event] = events(run(make(timezone=timezone), rows))
    assert event["event_time"] == int(datetime.fromisoformat(expected).timestamp())


def test_ambiguous_local_time_reads_as_the_later_instant(make: Callable[..., Preparer]) -> None:
    rows = query("SELECT 'Purchase' AS event, TIMESTAMP '2026-11-01 01:30:00' AS timestamp, 'a@b.c' AS email")
    [event] = events(run(make(timezone="America/New_York", now=NOW - 10 * 86_400), rows))
    assert event["event_time"] == int(datetime.fromisoformat("2026-11-01T01:30:00-05:00").timestamp())


def test_derived_event_id_is_the_documented_hash(make: Callable[..., Preparer]) -> None:
    rows = one(order_id="A-1", phone=PHONE)
    [event] = events(run(make(), rows))
    parts = ["offramp.event_id.v1", "Purchase", str(YESTERDAY_EPOCH), "A-1", "", ALICE_HASH, PHONE_HASH, ""]
    assert event["event_id"] == hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    [again] = events(run(make(), rows))
    assert again["event_id"] == event["event_id"]


def test_line_items_become_one_event_with_contents_and_a_total(make: Callable[..., Preparer]) -> None:
    rows = table(
        event=["Purchase"] * 3 + ["Purchase"],
        timestamp=[YESTERDAY] * 4,
        email=["a@b.c", "a@b.c", "A@B.C ", "z@y.x"],
        order_id=["A", "A", "A", "B"],
        content_id=["SKU-1", "SKU-2", "SKU-3", "SKU-9"],
        price=[10.5, 2.25, None, 3.0],
        quantity=[2, None, 4, 1],
    )
    result = run(make(), rows)
    first, second = events(result)
    assert [event.rows for event in result.events] == [3, 1]
    assert first["user"] == {"email": [hashlib.sha256(b"a@b.c").hexdigest()]}
    assert first["properties"]["contents"] == [
        {"content_id": "SKU-1", "price": 10.5, "quantity": 2},
        {"content_id": "SKU-2", "price": 2.25},
        {"content_id": "SKU-3", "quantity": 4},
    ]
    assert first["properties"]["value"] == 10.5 * 2 + 2.25  # a missing quantity counts as 1
    assert first["properties"]["currency"] == "USD"
    assert second["properties"]["value"] == 3.0


def test_line_items_group_across_batches_and_out_of_order(make: Callable[..., Preparer]) -> None:
    rows = table(
        event_id=["A", "B", "A", "C", "C"],
        event=["Purchase"] * 5,
        timestamp=[YESTERDAY] * 5,
        email=["a@b.c"] * 5,
        content_id=["1", "2", "3", "4", "5"],
    )
    batches = [rows.slice(0, 4).to_batches()[0], rows.slice(4).to_batches()[0]]
    result = run(make(), batches)
    assert [(event.event_id, event.rows) for event in result.events] == [("A", 2), ("B", 1), ("C", 2)]
    contents = {event["event_id"]: event["properties"]["contents"] for event in events(result)}
    assert contents["C"] == [{"content_id": "4"}, {"content_id": "5"}]


def test_line_item_total_carries_no_float_noise(make: Callable[..., Preparer]) -> None:
    rows = query(
        "SELECT 'A' AS event_id, 'Purchase' AS event, TIMESTAMP '2026-11-19 10:00:00' AS timestamp, 'a@b.c' AS email, "
        "price::DECIMAL(10, 2) AS price, quantity FROM (VALUES (35.00, 1), (9.99, 2)) AS t(price, quantity)"
    )
    [prepared] = run(make(), rows).events
    assert b'"value":54.98}' in prepared.body  # not 54.980000000000004


def test_a_given_value_wins_over_the_line_item_total(make: Callable[..., Preparer]) -> None:
    rows = table(
        event_id=["A", "A"], event=["Purchase"] * 2, timestamp=[YESTERDAY] * 2, email=["a@b.c"] * 2,
        price=[10.0, 5.0], quantity=[1, 1], value=[None, 12.0],
    )  # fmt: skip
    [event] = events(run(make(), rows))
    assert event["properties"]["value"] == 12.0


# -- validation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "reason", "in_detail"),
    [
        ({"event": None}, "missing_event_name", "fixed_event_name"),
        ({"event": "Order Completed"}, "unknown_event_name", "event-name map"),
        ({"timestamp": None}, "missing_timestamp", "timestamp"),
        ({"timestamp": "last tuesday"}, "invalid_timestamp", "ISO-8601"),
        ({"timestamp": 1e300}, "invalid_timestamp", "ISO-8601"),  # epoch seconds beyond 64 bits
        ({"timestamp": -1e25}, "invalid_timestamp", "ISO-8601"),
        ({"timestamp": "2026-10-01T00:00:00Z"}, "event_too_old", "28-day"),
        ({"timestamp": "2026-11-20T12:30:00Z"}, "event_in_future", "timezone"),
        ({"value": -5}, "invalid_value", "value"),
        ({"value": float("nan")}, "invalid_value", "value"),
        ({"value": "$20"}, "invalid_value", "value"),
        ({"price": "1,000"}, "invalid_value", "price"),
        ({"quantity": 1e16}, "invalid_value", "quantity"),
        ({"currency": "XYZ"}, "unsupported_currency", "ISO 4217"),
        ({"content_type": "sku"}, "invalid_content_type", "product_group"),
        ({"event_channel": "fax"}, "invalid_event_channel", "phone_call"),
        ({"email": None, "external_id": "user_123"}, "missing_identifiers", "email or phone"),
    ],
)
def test_reason_codes(make: Callable[..., Preparer], columns: dict[str, Any], reason: str, in_detail: str) -> None:
    result = run(make(), one(event_id="E-1", **columns))
    assert result.events == []
    [rejected] = result.rejected
    assert (rejected.event_id, rejected.reason, rejected.rows) == ("E-1", reason, 1)
    assert in_detail in rejected.detail
    # Details name fields and fixes, never the row's values.
    values = [value for value in columns.values() if isinstance(value, str)] + ["alice", "E-1"]
    assert not [value for value in values if value.lower() in rejected.detail.lower()]


def test_web_events_accept_an_external_id_alone_and_custom_names(make: Callable[..., Preparer]) -> None:
    web = settings(event_source="web", event_set_id="CPIXEL0123456789")
    [event] = events(run(make(destination=web), one(email=None, external_id="user_123", event="LoyaltySignup")))
    assert event["user"] == {"external_id": [USER_123_HASH]}
    assert event["event"] == "LoyaltySignup"


def test_legacy_names_are_accepted(make: Callable[..., Preparer]) -> None:
    names = ["CompletePayment", "PlaceAnOrder", "SubmitForm", "ClickButton", "PageView"]
    rows = table(event=names, timestamp=[YESTERDAY] * 5, email=[f"{n}@b.c" for n in names])
    assert [event["event"] for event in events(run(make(), rows))] == names


def test_line_items_that_disagree_are_rejected_together(make: Callable[..., Preparer]) -> None:
    rows = table(
        event_id=["A", "A", "B"],
        event=["Purchase", "Contact", "Purchase"],
        timestamp=[YESTERDAY] * 3,
        email=["a@b.c"] * 3,
    )
    result = run(make(), rows)
    assert [(item.event_id, item.reason, item.rows) for item in result.rejected] == [("A", "conflicting_line_items", 2)]
    assert [event.event_id for event in result.events] == ["B"]


def test_one_bad_line_item_rejects_its_event(make: Callable[..., Preparer]) -> None:
    rows = table(
        event_id=["A", "A"], event=["Purchase"] * 2, timestamp=[YESTERDAY] * 2, email=["a@b.c"] * 2,
        price=[1.0, -2.0],
    )  # fmt: skip
    [rejected] = run(make(), rows).rejected
    assert (rejected.reason, rejected.rows) == ("invalid_value", 2)


def test_the_first_problem_in_check_order_is_reported(make: Callable[..., Preparer]) -> None:
    [rejected] = run(make(), one(event="Nope", timestamp="garbage", currency="XYZ", email=None)).rejected
    assert rejected.reason == "unknown_event_name"


def test_attribution_window_is_configurable(make: Callable[..., Preparer]) -> None:
    rows = one(timestamp="2026-11-10T00:00:00Z")
    assert run(make(attribution_window_days=7), rows).rejected[0].reason == "event_too_old"
    assert len(run(make(attribution_window_days=28), rows).events) == 1


def test_every_row_is_accounted_for(make: Callable[..., Preparer]) -> None:
    rows = table(
        event_id=["A", "A", "B", "C", None, None],
        event=["Purchase", "Purchase", "Bogus", "Purchase", "Purchase", "Contact"],
        timestamp=[YESTERDAY, YESTERDAY, YESTERDAY, None, YESTERDAY, "2026-11-19"],
        email=["a@b.c", None, "b@c.d", "c@d.e", None, "e@f.g"],
    )
    result = run(make(), [rows.slice(0, 3).to_batches()[0], rows.slice(3).to_batches()[0]])
    assert result.rows == rows.num_rows
    assert sorted(item.reason for item in result.rejected) == ["missing_identifiers", "missing_timestamp",
                                                              "unknown_event_name"]  # fmt: skip


def test_numbers_are_written_as_orjson_writes_them(make: Callable[..., Preparer]) -> None:
    # Both preparers write every number as payload.event_json (orjson) does: an exponent below 1e-5 (3e-6, where
    # SQL and Arrow write 0.000003) and none up to 1e16; ".0" on a whole float; a whole quantity as an integer.
    rows = table(
        event_id=["A", "A", "B"], event=["Purchase"] * 3, timestamp=[YESTERDAY] * 3, email=["a@b.c"] * 3,
        price=[0.000003, 0.0000015, 123456789012.5], quantity=[0.000002, 2.0, 1.0], value=[None, None, 0.000004],
    )  # fmt: skip
    first, second = (event.body for event in run(make(), rows).events)
    assert b'"contents":[{"price":3e-6,"quantity":2e-6},{"price":1.5e-6,"quantity":2}],"currency":"USD",' in first
    assert b'"value":0.0}' in first  # the total, 6e-6 rounded to 3 decimals
    assert b'"contents":[{"price":123456789012.5,"quantity":1}],"currency":"USD","value":4e-6}' in second
