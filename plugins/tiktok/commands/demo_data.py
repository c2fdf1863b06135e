"""The demo's sample warehouse: store orders in a DuckDB file, one row per line item, with deliberate mistakes.

Deterministic (seeded), relative to the time it is written so that the dates stay inside TikTok's window. Most
orders are good; some are built to be rejected, one kind per reason, so the demo's report shows what offramp
does with each: no identifiers, invalid phones (dropped, the event still sent), dates older than 28 days, event
names the orchestration's map does not translate, and pre-hashed emails (sent as they are, not hashed again).
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from pathlib import Path

ORDERS = 1500
SOURCE_EVENT = "Order Completed"  # what the store's system calls a purchase; the demo maps it to Purchase
UNMAPPED_EVENT = "Gift Card Reloaded"  # not mapped, not a TikTok standard event: rejected
_PHONES = ("({a}) 555-{n:04d}", "+1 {a} 555 {n:04d}", "{a}.555.{n:04d}")
_AREAS = (206, 212, 305, 312, 415, 512, 617, 702)
_PRODUCTS = (("SKU-100", "Canvas tote", 18.0), ("SKU-200", "Wool socks", 12.5), ("SKU-300", "Rain jacket", 89.0),
             ("SKU-400", "Water bottle", 24.99), ("SKU-500", "Field notebook", 7.5))  # fmt: skip

DEMO_SQL = """\
-- Store orders, one row per line item; rows sharing an event_id become one event with its contents.
SELECT order_id AS event_id, event_name AS event, ordered_at AS timestamp, email, phone, store_id AS shop_id,
       order_id, sku AS content_id, product AS content_name, unit_price AS price, quantity
FROM orders
ORDER BY order_id, sku
"""


def write_demo_orders(path: Path, now: datetime, seed: int = 2026) -> int:
    """Write the sample orders to a DuckDB file at ``path`` (replacing it); returns the number of rows.

    ``now`` is naive local wall-clock time of the stores (the orchestration reads it in its timezone).
    """
    # Imported here: `offramp --help` loads this module (through the demo's command) and must stay light.
    import duckdb
    import pyarrow as pa

    rng = random.Random(seed)
    rows: dict[str, list[object]] = {name: [] for name in (
        "order_id", "event_name", "ordered_at", "email", "phone", "store_id", "sku", "product", "unit_price",
        "quantity",
    )}  # fmt: skip
    for number in range(1, ORDERS + 1):
        customer = rng.randrange(600)
        kind = number % 50
        email: str | None = f"  Customer.{customer}@Example.com " if rng.random() < 0.85 else None
        phone: str | None = None
        if rng.random() < 0.6:
            phone = rng.choice(_PHONES).format(a=rng.choice(_AREAS), n=customer)
        event, age = SOURCE_EVENT, timedelta(minutes=rng.randrange(20 * 24 * 60))
        if kind == 1:  # no identifiers at all
            email, phone = None, None
        elif kind == 2:  # a phone that is no phone number; the email carries the event
            phone, email = "n/a", email or f"customer.{customer}@example.com"
        elif kind == 3:  # older than the 28-day attribution window
            age = timedelta(days=40)
        elif kind == 4:  # an event name the map does not translate
            event = UNMAPPED_EVENT
        elif kind == 5:  # the warehouse already hashed the email
            email = hashlib.sha256(f"customer.{customer}@example.com".encode()).hexdigest()
        if email is None and phone is None and kind != 1:
            email = f"customer.{customer}@example.com"
        moment = (now - age).replace(microsecond=0)
        for sku, product, price in rng.sample(_PRODUCTS, rng.randint(1, 4)):
            rows["order_id"].append(f"ORD-{number:05d}")
            rows["event_name"].append(event)
            rows["ordered_at"].append(moment)
            rows["email"].append(email)
            rows["phone"].append(phone)
            rows["store_id"].append(f"store-{number % 12 + 1:02d}")
            rows["sku"].append(sku)
            rows["product"].append(product)
            rows["unit_price"].append(price)
            rows["quantity"].append(rng.randint(1, 3))
    table = pa.table(rows)
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.register("incoming", table)
        con.execute("CREATE TABLE orders AS SELECT * FROM incoming")
    return int(table.num_rows)


__all__ = ["DEMO_SQL", "ORDERS", "SOURCE_EVENT", "UNMAPPED_EVENT", "write_demo_orders"]
