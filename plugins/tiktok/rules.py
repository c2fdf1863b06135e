"""The column contract, TikTok's vocabularies and the reason codes of the TikTok destination.

Both preparation paths (the per-row reference in ``reference.py`` and the vectorized one in ``prepare.py``) read
their rules from here, so they cannot drift apart on a list or a message.
"""

from __future__ import annotations

import re
from typing import Final

# The query's columns this destination reads (case-insensitive, any order); anything else is reported once.
CONTRACT_COLUMNS: Final[tuple[str, ...]] = (
    "agent", "brand", "content_category", "content_id", "content_name", "content_type", "cookie_id", "currency",
    "description", "email", "event", "event_channel", "event_id", "external_id", "ip", "lead_id", "locale",
    "order_id", "page_url", "phone", "price", "quantity", "referrer_url", "shop_id", "tiktok_click_id",
    "timestamp", "value",
)  # fmt: skip

IDENTIFIER_COLUMNS: Final = ("email", "phone", "external_id")
CONTENT_COLUMNS: Final = ("content_id", "content_name", "content_category", "price", "quantity", "brand")
NUMERIC_COLUMNS: Final = ("price", "quantity", "value")

# Column -> place in the event, for plain (unhashed) text, in the order the keys are written.
USER_TEXT: Final = (("tiktok_click_id", "ttclid"), ("cookie_id", "ttp"), ("ip", "ip"), ("agent", "user_agent"),
                    ("locale", "locale"), ("lead_id", "lead_id"))  # fmt: skip
PROPERTY_TEXT: Final = (("order_id", "order_id"), ("shop_id", "shop_id"), ("description", "description"))
PAGE_TEXT: Final = (("page_url", "url"), ("referrer_url", "referrer"))
CONTENT_TEXT: Final = (("content_id", "content_id"), ("content_name", "content_name"),
                       ("content_category", "content_category"))  # fmt: skip

# The 62 ISO 4217 codes TikTok accepts (docs/tiktok-api-facts.md, "Vocabularies").
CURRENCIES: Final[frozenset[str]] = frozenset(
    "AED ARS AUD BDT BHD BIF BOB BRL CAD CHF CLP CNY COP CRC CZK DKK DZD EGP EUR GBP GTQ HKD HNL HUF IDR ILS INR ISK "
    "JPY KES KHR KRW KWD KZT MAD MOP MXN MYR NGN NIO NOK NZD OMR PEN PHP PKR PLN PYG QAR RON RUB SAR SEK SGD THB TRY "
    "TWD UAH USD VES VND ZAR".split()
)
DEFAULT_CURRENCY: Final = "USD"  # what Amperity sends when a value has no currency
CONTENT_TYPES: Final[frozenset[str]] = frozenset({"product", "product_group"})
EVENT_CHANNELS: Final[frozenset[str]] = frozenset({"email", "website", "phone_call", "in_store", "crm", "other"})

# Trimmed from event names, currencies and vocabularies. Explicit, so SQL and Python trim the same characters.
ASCII_WHITESPACE: Final = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"

# A number written as text: digits, an optional fraction, an optional sign. No currency symbols, commas, exponents
# or underscores (Python's float() would take "1_000", DuckDB would take "1e3"; TikTok wants plain decimals).
NUMBER_TEXT: Final = re.compile(r"^[ \t]*[-+]?[0-9]+(\.[0-9]+)?[ \t]*$")
NUMBER_TEXT_SQL: Final = r"[ \t]*[-+]?[0-9]+(\.[0-9]+)?[ \t]*"

# Amounts at or above this are refused as typos (and stay exact as integers in JSON).
MAX_NUMBER: Final = 1e15

# Epoch values at or above this are milliseconds (1e11 seconds is the year 5138).
EPOCH_MILLIS_FROM: Final = 100_000_000_000

# Reason codes, in the order they are checked: a row with several problems is rejected with the first. A detail
# names the field and the fix, never the row's values: reports and logs carry no input data.
REASONS: Final[dict[str, str]] = {
    "conflicting_line_items": "rows sharing this event_id disagree on the event name or time; give each event its "
    "own event_id, or make its line items agree",
    "missing_event_name": "no event name; add an `event` column or set the destination's fixed_event_name",
    "unknown_event_name": "the event name is not a TikTok standard event; translate it with the orchestration's "
    "event-name map (--map 'SOURCE=STANDARD')",
    "missing_timestamp": "no timestamp; add a `timestamp` column (TIMESTAMP, DATE, ISO-8601 text or epoch seconds)",
    "invalid_timestamp": "the timestamp is not a date, ISO-8601 text or epoch seconds/milliseconds",
    "event_too_old": "the event is older than the {days}-day attribution window; TikTok would not attribute it",
    "event_in_future": "the event time is more than {minutes} minutes in the future; check the timezone",
    "invalid_value": "{field} is negative, too large, NaN or not a number; write a plain decimal such as 19.99",
    "unsupported_currency": "the currency is not one TikTok accepts; use an ISO 4217 code from TikTok's list",
    "invalid_content_type": "content_type must be product or product_group",
    "invalid_event_channel": "event_channel must be one of " + ", ".join(sorted(EVENT_CHANNELS)),
    "missing_identifiers": "no usable {needed}; TikTok cannot match the event to a person",
}
REASON_ORDER: Final[dict[str, int]] = {code: rank for rank, code in enumerate(REASONS)}
# Reasons judged on the event as a whole (its rows together); every other reason is judged row by row. The
# vectorized preparer's SQL CASE checks ROW_REASONS in this order; the reference preparer sorts by REASON_ORDER.
EVENT_REASONS: Final = ("conflicting_line_items", "missing_identifiers")
ROW_REASONS: Final[tuple[str, ...]] = tuple(code for code in REASONS if code not in EVENT_REASONS)

# Warnings: the event is sent, without the offending value.
WARNINGS: Final[dict[str, str]] = {
    "invalid_phone": "a phone number is not valid for its region and was left out",
}


# A category value kept with a rejection (``RejectedEvent.label``) is cut to this many characters.
LABEL_LENGTH: Final = 64


def invalid_timestamp_detail(fix: str | None) -> str:
    """The detail of ``invalid_timestamp``, with how to read the text in the query when it is text."""
    return REASONS["invalid_timestamp"] if fix is None else f"{REASONS['invalid_timestamp']}; {fix}"


def needed_identifiers(event_source: str) -> tuple[str, ...]:
    """The identifier columns of which an event needs at least one (offline matching reads email and phone)."""
    return ("email", "phone") if event_source == "offline" else IDENTIFIER_COLUMNS


__all__ = [
    "ASCII_WHITESPACE",
    "CONTENT_COLUMNS",
    "CONTENT_TEXT",
    "CONTENT_TYPES",
    "CONTRACT_COLUMNS",
    "CURRENCIES",
    "DEFAULT_CURRENCY",
    "EPOCH_MILLIS_FROM",
    "EVENT_CHANNELS",
    "EVENT_REASONS",
    "IDENTIFIER_COLUMNS",
    "LABEL_LENGTH",
    "MAX_NUMBER",
    "NUMBER_TEXT",
    "NUMBER_TEXT_SQL",
    "NUMERIC_COLUMNS",
    "PAGE_TEXT",
    "PROPERTY_TEXT",
    "REASONS",
    "REASON_ORDER",
    "ROW_REASONS",
    "USER_TEXT",
    "WARNINGS",
    "invalid_timestamp_detail",
    "needed_identifiers",
]
