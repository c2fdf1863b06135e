"""Validation of an `event/track/` body, as docs/tiktok-api-facts.md ("Request body") describes it: the reference
rules.

It checks plain dicts with precomputed sets and exact type tests and reports the first problem, in a fixed order;
the first invalid event fails the whole request, as TikTok does. Valid requests usually take the faster msgspec
path (fast_validation.py); any request that path refuses comes here, so every error message is produced here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from offramp.plugins.tiktok.emulator.vocabulary import (
    CONTENT_TYPES,
    CURRENCIES,
    DELIVERY_CATEGORIES,
    EVENT_CHANNELS,
    EVENT_SOURCES,
    HASHED_USER_FIELDS,
    OBJECT_EVENT_PARTS,
    PLAIN_USER_FIELDS,
    STRING_CONTENT_FIELDS,
    STRING_PROPERTIES,
)
from offramp.plugins.tiktok.events import LEGACY_EVENTS, STANDARD_EVENTS
from offramp.plugins.tiktok.settings import MAX_EVENTS_PER_REQUEST

_is_sha256_hex: Callable[[str], object] = re.compile(r"[0-9a-f]{64}").fullmatch
_NUMBER = (int, float)


def is_digits(text: str) -> bool:
    """ASCII digits only (str.isdigit alone also takes other scripts' digits and superscripts)."""
    return text.isascii() and text.isdigit()


class Problem(NamedTuple):
    """What is wrong and where: ``path`` runs from the body down, e.g. ``("data", 3, "user", "email")``."""

    path: tuple[str | int, ...]
    reason: str

    def field(self, style: str) -> str:
        """The field as a 40002 message names it: its name (``email``) or its path (``data.3.user.email``)."""
        if style == "path":
            return ".".join(map(str, self.path))
        return next((part for part in reversed(self.path) if isinstance(part, str)), "body")


@dataclass(frozen=True)
class TrackRules:
    """The switches validation depends on, computed once per config (and per fault change)."""

    offline_events: frozenset[str]
    require_hashed: bool = True
    check_event_channel: bool = True
    # (dotted path split into keys, value) pairs from `Faults.poison`.
    poison: tuple[tuple[tuple[str, ...], str], ...] = ()

    @property
    def fast(self) -> bool:
        """Whether the msgspec fast path implements these rules (it is built for the defaults, without poison)."""
        return self.require_hashed and self.check_event_channel and not self.poison

    @classmethod
    def build(
        cls,
        *,
        accept_legacy_events: bool,
        require_hashed: bool = True,
        check_event_channel: bool = True,
        poison: dict[str, str] | None = None,
    ) -> TrackRules:
        names = STANDARD_EVENTS | LEGACY_EVENTS if accept_legacy_events else STANDARD_EVENTS
        pairs = tuple((tuple(path.split(".")), value) for path, value in (poison or {}).items())
        return cls(names, require_hashed, check_event_channel, pairs)


class TrackBody(NamedTuple):
    """The parts of a valid-looking body that the emulator acts on."""

    event_source: str
    event_source_id: str
    events: list[dict[str, Any]]
    test_event_code: str | None


def check_body(body: Any) -> TrackBody | Problem:
    """Check the top level of the body (everything but the events themselves)."""
    if type(body) is not dict:
        return Problem(("body",), "not a valid JSON object")
    source = body.get("event_source")
    if source is None:
        return Problem(("event_source",), "missing data for required field")
    if type(source) is not str or source not in EVENT_SOURCES:
        return Problem(("event_source",), "must be one of app, crm, offline, web")
    source_id = body.get("event_source_id")
    if source_id is None:
        return Problem(("event_source_id",), "missing data for required field")
    # TikTok's real answer for a pixel code sent as an offline set id (docs/tiktok-api-facts.md, "Request body").
    if type(source_id) is not str or not source_id or (source == "offline" and not is_digits(source_id)):
        return Problem(("event_source_id",), "not a valid string")
    test_event_code = body.get("test_event_code")
    if test_event_code is not None and type(test_event_code) is not str:
        return Problem(("test_event_code",), "not a valid string")
    partner_name = body.get("partner_name")
    if partner_name is not None and type(partner_name) is not str:
        return Problem(("partner_name",), "not a valid string")
    events = body.get("data")
    if events is None:
        return Problem(("data",), "missing data for required field")
    if type(events) is not list:
        return Problem(("data",), "not a valid list")
    if not 1 <= len(events) <= MAX_EVENTS_PER_REQUEST:
        return Problem(("data",), f"length must be between 1 and {MAX_EVENTS_PER_REQUEST}")
    return TrackBody(source, source_id, events, test_event_code)


def check_events(events: list[Any], event_source: str, rules: TrackRules) -> Problem | None:
    """The first problem among the events, or None when every one is valid."""
    offline = event_source == "offline"
    names = rules.offline_events
    for index, event in enumerate(events):
        if type(event) is not dict:
            return Problem(("data", index), "not a valid object")
        name = event.get("event")
        if type(name) is not str or not name:
            reason = "missing data for required field" if name is None else "not a valid string"
            return Problem(("data", index, "event"), reason)
        if offline and name not in names:
            return Problem(("data", index, "event"), f"{name} is not a standard event (offline accepts those only)")
        event_time = event.get("event_time")
        if type(event_time) is not int:
            reason = "missing data for required field" if event_time is None else "not a valid integer"
            return Problem(("data", index, "event_time"), reason)
        event_id = event.get("event_id")
        if event_id is not None and type(event_id) is not str:
            return Problem(("data", index, "event_id"), "not a valid string")
        user = event.get("user")
        if user is not None:
            problem = _check_user(user, rules.require_hashed)
            if problem is not None:
                return Problem(("data", index, *problem.path), problem.reason)
        properties = event.get("properties")
        if properties is not None:
            problem = _check_properties(properties, rules.check_event_channel)
            if problem is not None:
                return Problem(("data", index, *problem.path), problem.reason)
        problem = _check_other_parts(event)
        if problem is not None:
            return Problem(("data", index, *problem.path), problem.reason)
        if rules.poison:
            problem = _check_poison(event, rules.poison)
            if problem is not None:
                return Problem(("data", index, *problem.path), problem.reason)
    return None


def _check_user(user: Any, require_hashed: bool) -> Problem | None:
    if type(user) is not dict:
        return Problem(("user",), "not a valid object")
    for key, value in user.items():
        if value is None:
            continue
        if key in HASHED_USER_FIELDS:
            if type(value) is str:
                if require_hashed and not _is_sha256_hex(value):
                    return Problem(("user", key), "not a SHA-256 hash (64 lowercase hex characters)")
            elif type(value) is list:
                for position, item in enumerate(value):
                    if type(item) is not str:
                        return Problem(("user", key, position), "not a valid string")
                    if require_hashed and not _is_sha256_hex(item):
                        return Problem(("user", key, position), "not a SHA-256 hash (64 lowercase hex characters)")
            else:
                return Problem(("user", key), "not a valid string or list of strings")
        elif key in PLAIN_USER_FIELDS and type(value) is not str:
            return Problem(("user", key), "not a valid string")
    return None


def _check_properties(properties: Any, check_event_channel: bool) -> Problem | None:
    if type(properties) is not dict:
        return Problem(("properties",), "not a valid object")
    for key, value in properties.items():
        if value is None:
            continue
        if key == "contents":
            problem = _check_contents(value)
            if problem is not None:
                return Problem(("properties", *problem.path), problem.reason)
        elif key == "currency":
            if type(value) is not str or value not in CURRENCIES:
                return Problem(("properties", "currency"), "not a currency TikTok supports")
        elif key == "value" or key == "predicted_ltv":
            if type(value) not in _NUMBER:
                return Problem(("properties", key), "not a valid number")
        elif key == "content_type":
            if type(value) is not str or value not in CONTENT_TYPES:
                return Problem(("properties", "content_type"), "must be one of product, product_group")
        elif key == "event_channel":
            if check_event_channel and (type(value) is not str or value not in EVENT_CHANNELS):
                return Problem(
                    ("properties", "event_channel"), "must be one of crm, email, in_store, other, phone_call, website"
                )
        elif key in STRING_PROPERTIES:
            if type(value) is not str:
                return Problem(("properties", key), "not a valid string")
        elif key == "content_ids":
            if type(value) is not list or any(type(item) is not str for item in value):
                return Problem(("properties", "content_ids"), "not a valid list of strings")
        elif key == "num_items":
            if type(value) is not int:
                return Problem(("properties", "num_items"), "not a valid integer")
        elif key == "delivery_category" and (type(value) is not str or value not in DELIVERY_CATEGORIES):
            return Problem(("properties", key), "must be one of curbside, home_delivery, in_store")
    return None


def _check_contents(contents: Any) -> Problem | None:
    if type(contents) is not list:
        return Problem(("contents",), "not a valid list")
    for position, item in enumerate(contents):
        if type(item) is not dict:
            return Problem(("contents", position), "not a valid object")
        for key, value in item.items():
            if value is None:
                continue
            if key == "content_id":
                if type(value) is not str:
                    return Problem(("contents", position, "content_id"), "not a valid string")
            elif key == "price" or key == "quantity":
                if type(value) not in _NUMBER:
                    return Problem(("contents", position, key), "not a valid number")
            elif key in STRING_CONTENT_FIELDS:
                if type(value) is not str:
                    return Problem(("contents", position, key), "not a valid string")
            elif key == "content_type" and (type(value) is not str or value not in CONTENT_TYPES):
                return Problem(("contents", position, key), "must be one of product, product_group")
    return None


def _check_other_parts(event: dict[str, Any]) -> Problem | None:
    limited_data_use = event.get("limited_data_use")
    if limited_data_use is not None and type(limited_data_use) is not bool:
        return Problem(("limited_data_use",), "not a valid boolean")
    for key in OBJECT_EVENT_PARTS:
        part = event.get(key)
        if part is not None and type(part) is not dict:
            return Problem((key,), "not a valid object")
    return None


def _check_poison(event: dict[str, Any], poison: tuple[tuple[tuple[str, ...], str], ...]) -> Problem | None:
    for path, poisoned in poison:
        value: Any = event
        for key in path:
            value = value.get(key) if type(value) is dict else None
        candidates = value if type(value) is list else (value,)
        if any(candidate is not None and str(candidate) == poisoned for candidate in candidates):
            return Problem(path, "value refused (poisoned by the emulator's fault injection)")
    return None


__all__ = [
    "Problem",
    "TrackBody",
    "TrackRules",
    "check_body",
    "check_events",
    "is_digits",
]
