"""TikTok's closed value lists for event/track/ (docs/tiktok-api-facts.md, "Request body" and "Vocabularies"), as
types and as sets.

The `Literal` types drive the fast msgspec decoder; the sets drive the reference validator. Both come from here,
so the two cannot disagree about a value.
"""

from __future__ import annotations

from typing import Literal, get_args

EventSource = Literal["web", "app", "offline", "crm"]
Currency = Literal[
    "AED", "ARS", "AUD", "BDT", "BHD", "BIF", "BOB", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CRC", "CZK", "DKK",
    "DZD", "EGP", "EUR", "GBP", "GTQ", "HKD", "HNL", "HUF", "IDR", "ILS", "INR", "ISK", "JPY", "KES", "KHR", "KRW",
    "KWD", "KZT", "MAD", "MOP", "MXN", "MYR", "NGN", "NIO", "NOK", "NZD", "OMR", "PEN", "PHP", "PKR", "PLN", "PYG",
    "QAR", "RON", "RUB", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD", "VES", "VND", "ZAR",
]  # fmt: skip
ContentType = Literal["product", "product_group"]
# Documented for the legacy offline API; whether event/track reads it is UNCONFIRMED (EmulatorConfig switch).
EventChannel = Literal["email", "website", "phone_call", "in_store", "crm", "other"]
DeliveryCategory = Literal["in_store", "curbside", "home_delivery"]

EVENT_SOURCES: frozenset[str] = frozenset(get_args(EventSource))
CURRENCIES: frozenset[str] = frozenset(get_args(Currency))
CONTENT_TYPES: frozenset[str] = frozenset(get_args(ContentType))
EVENT_CHANNELS: frozenset[str] = frozenset(get_args(EventChannel))
DELIVERY_CATEGORIES: frozenset[str] = frozenset(get_args(DeliveryCategory))

# User fields TikTok wants as SHA-256 hex (a string or a list of strings), and the plain string ones.
HASHED_USER_FIELDS: frozenset[str] = frozenset({"email", "phone", "external_id"})
PLAIN_USER_FIELDS: frozenset[str] = frozenset(
    {"ip", "user_agent", "ttclid", "ttp", "locale", "lead_id", "first_name", "last_name", "zip_code", "city",
     "state", "country", "idfa", "idfv", "gaid", "att_status"}
)  # fmt: skip
STRING_PROPERTIES: frozenset[str] = frozenset({"order_id", "shop_id", "description", "query", "search_string"})
STRING_CONTENT_FIELDS: frozenset[str] = frozenset({"content_name", "content_category", "brand"})
# Event parts the emulator only checks to be JSON objects.
OBJECT_EVENT_PARTS: tuple[str, ...] = ("page", "lead", "app", "ad")

__all__ = [
    "CONTENT_TYPES",
    "CURRENCIES",
    "ContentType",
    "Currency",
    "DELIVERY_CATEGORIES",
    "DeliveryCategory",
    "EVENT_CHANNELS",
    "EVENT_SOURCES",
    "EventChannel",
    "EventSource",
    "HASHED_USER_FIELDS",
    "OBJECT_EVENT_PARTS",
    "PLAIN_USER_FIELDS",
    "STRING_CONTENT_FIELDS",
    "STRING_PROPERTIES",
]
