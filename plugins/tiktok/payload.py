"""One event's JSON exactly as TikTok's `event/track` takes it (docs/tiktok-api-facts.md, "Request body").

The reference preparer (``reference.py``) writes its events here, from their normalized fields: keys in a fixed
order, no null fields, no empty arrays or objects, `event_id` a string, `event_time` an integer, `value` 0 kept,
`limited_data_use` only when set. The vectorized preparer writes the same bytes in SQL (``prepare._event_json_sql``);
the golden and property tests compare the two byte for byte, so this module is the specification of the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

# (key in the event's `user` object, key in the fields mapping), in the order they are written.
_USER_KEYS = (
    ("email", "email"), ("phone", "phone"), ("external_id", "external_id"), ("ttclid", "ttclid"), ("ttp", "ttp"),
    ("ip", "ip"), ("user_agent", "user_agent"), ("locale", "locale"), ("lead_id", "lead_id"),
)  # fmt: skip
_PROPERTY_KEYS = (
    "contents",
    "content_type",
    "currency",
    "value",
    "order_id",
    "shop_id",
    "description",
    "event_channel",
)
_PAGE_KEYS = (("url", "url"), ("referrer", "referrer"))
_CONTENT_KEYS = ("content_id", "content_name", "content_category", "price", "quantity", "brand")


def _present(value: object) -> bool:
    # 0 and False are values; None, "" and empty containers are not.
    if value is None:
        return False
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def content_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """One `contents` entry with its present fields, in TikTok's order; quantity as an integer when whole."""
    result: dict[str, Any] = {}
    for key in _CONTENT_KEYS:
        value = item.get(key)
        if not _present(value):
            continue
        if key == "quantity" and isinstance(value, float) and value.is_integer():
            value = int(value)
        result[key] = value
    return result


def event_object(fields: Mapping[str, Any], *, limited_data_use: bool = False) -> dict[str, Any]:
    """The event as a dict, from its normalized fields (see ``event_json``)."""
    event: dict[str, Any] = {"event": fields["event"], "event_time": int(fields["event_time"])}
    event["event_id"] = str(fields["event_id"])
    user = {key: list(fields[name]) if isinstance(fields.get(name), tuple) else fields.get(name)
            for key, name in _USER_KEYS}  # fmt: skip
    user = {key: value for key, value in user.items() if _present(value)}
    if user:
        event["user"] = user
    properties: dict[str, Any] = {}
    for key in _PROPERTY_KEYS:
        value = fields.get(key)
        if key == "contents" and value:
            value = [item for item in (content_item(raw) for raw in value) if item]
        if _present(value):
            properties[key] = value
    if properties:
        event["properties"] = properties
    page = {key: fields.get(name) for key, name in _PAGE_KEYS if _present(fields.get(name))}
    if page:
        event["page"] = page
    if limited_data_use:
        event["limited_data_use"] = True
    return event


def event_json(fields: Mapping[str, Any], *, limited_data_use: bool = False) -> bytes:
    """The event's JSON bytes.

    ``fields`` holds: event, event_time, event_id; email, phone, external_id (sequences of hashes); ttclid, ttp,
    ip, user_agent, locale, lead_id; contents (sequence of item mappings), content_type, currency, value,
    order_id, shop_id, description, event_channel; url, referrer. Missing or empty ones are left out.
    """
    return orjson.dumps(event_object(fields, limited_data_use=limited_data_use))


__all__ = ["content_item", "event_json", "event_object"]
