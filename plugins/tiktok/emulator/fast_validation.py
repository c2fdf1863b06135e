"""The fast path of `event/track/` validation: msgspec decodes and checks a body in one pass, in C.

It implements the same rules as validation.py for the default switches, and it only ever says "valid" or "ask
the reference validator": a body it refuses (or cannot judge) goes to `validation.check_body`/`check_events`,
which find the problem and word the 40002. So it may be stricter than the reference rules, never looser; a test
checks the two agree. Structs are declared with gc=False: a decoded body holds thousands of objects that the
cyclic garbage collector would otherwise keep scanning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, NamedTuple

import msgspec

from offramp.plugins.tiktok.emulator.validation import is_digits
from offramp.plugins.tiktok.emulator.vocabulary import (
    ContentType,
    Currency,
    DeliveryCategory,
    EventChannel,
    EventSource,
)
from offramp.plugins.tiktok.settings import MAX_EVENTS_PER_REQUEST

_Hash = Annotated[str, msgspec.Meta(min_length=64, max_length=64)]
_Hashed = _Hash | list[_Hash] | None
_Object = dict[str, Any] | None


class _Content(msgspec.Struct, gc=False):
    content_id: str | None = None
    price: float | None = None
    quantity: float | None = None
    content_name: str | None = None
    content_category: str | None = None
    brand: str | None = None
    content_type: ContentType | None = None


class _Properties(msgspec.Struct, gc=False):
    contents: list[_Content] | None = None
    currency: Currency | None = None
    value: float | None = None
    predicted_ltv: float | None = None
    content_type: ContentType | None = None
    event_channel: EventChannel | None = None
    order_id: str | None = None
    shop_id: str | None = None
    description: str | None = None
    query: str | None = None
    search_string: str | None = None
    content_ids: list[str] | None = None
    num_items: int | None = None
    delivery_category: DeliveryCategory | None = None


class _User(msgspec.Struct, gc=False):
    email: _Hashed = None
    phone: _Hashed = None
    external_id: _Hashed = None
    ip: str | None = None
    user_agent: str | None = None
    ttclid: str | None = None
    ttp: str | None = None
    locale: str | None = None
    lead_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    zip_code: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    idfa: str | None = None
    idfv: str | None = None
    gaid: str | None = None
    att_status: str | None = None


class _Event(msgspec.Struct, gc=False):
    event: Annotated[str, msgspec.Meta(min_length=1)]
    event_time: int
    event_id: str | None = None
    user: _User | None = None
    properties: _Properties | None = None
    limited_data_use: bool | None = None
    page: _Object = None
    lead: _Object = None
    app: _Object = None
    ad: _Object = None


class _Body(msgspec.Struct, gc=False):
    event_source: EventSource
    event_source_id: str
    data: Annotated[list[_Event], msgspec.Meta(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)]
    test_event_code: str | None = None
    partner_name: str | None = None


_decode: Callable[[bytes], _Body] = msgspec.json.Decoder(_Body).decode
_HEX_DIGITS = b"0123456789abcdef"


def _all_lowercase_hex(text: str) -> bool:
    # Deleting every hex digit leaves nothing only if that is all there was. The hashes are each exactly 64
    # characters (the decoder saw to that), so one pass over them joined does it: six times faster than a regex.
    return not text.encode("utf-8", "surrogatepass").translate(None, _HEX_DIGITS)


class FastTrack(NamedTuple):
    """A body the fast path found valid: what recording and deduplication need."""

    event_source: str
    event_source_id: str
    test_event_code: str | None
    # (event name, event_id) per event, in order.
    keys: list[tuple[str, str | None]]


def fast_check(raw: bytes, offline_events: frozenset[str]) -> FastTrack | None:
    """The valid body's essentials, or None when the reference validator must judge it."""
    try:
        body = _decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    source_id = body.event_source_id
    offline = body.event_source == "offline"
    if not source_id or (offline and not is_digits(source_id)):
        return None
    events = body.data
    if offline and not offline_events.issuperset([event.event for event in events]):
        return None
    hashes: list[str] = []
    add = hashes.append
    extend = hashes.extend
    # Unrolled over the three hashed fields: this loop runs for every event the emulator receives.
    for user in [event.user for event in events]:
        if user is None:
            continue
        value = user.email
        if value is not None:
            if type(value) is str:
                add(value)
            else:
                extend(value)
        value = user.phone
        if value is not None:
            if type(value) is str:
                add(value)
            else:
                extend(value)
        value = user.external_id
        if value is not None:
            if type(value) is str:
                add(value)
            else:
                extend(value)
    if hashes and not _all_lowercase_hex("".join(hashes)):
        return None
    keys = [(event.event, event.event_id) for event in events]
    return FastTrack(body.event_source, source_id, body.test_event_code, keys)


__all__ = ["FastTrack", "fast_check"]
