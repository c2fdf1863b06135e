"""The fast msgspec path never accepts what the reference validator refuses (no HTTP: the two functions directly)."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
from emulator_client import make_event, sha256, track_body
from hypothesis import given, settings
from hypothesis import strategies as st

from offramp.plugins.tiktok.emulator.fast_validation import fast_check
from offramp.plugins.tiktok.emulator.validation import Problem, TrackRules, check_body, check_events

RULES = TrackRules.build(accept_legacy_events=True)

# Every place a client can put a value, in the top level and in an event.
PATHS = [
    ("event_source",), ("event_source_id",), ("test_event_code",), ("partner_name",), ("data",),
    ("data", 0), ("data", 0, "event"), ("data", 0, "event_time"), ("data", 0, "event_id"), ("data", 0, "user"),
    ("data", 0, "user", "email"), ("data", 0, "user", "phone"), ("data", 0, "user", "external_id"),
    ("data", 0, "user", "ip"), ("data", 0, "user", "locale"), ("data", 0, "properties"),
    ("data", 0, "properties", "currency"), ("data", 0, "properties", "value"),
    ("data", 0, "properties", "content_type"), ("data", 0, "properties", "event_channel"),
    ("data", 0, "properties", "order_id"), ("data", 0, "properties", "content_ids"),
    ("data", 0, "properties", "num_items"), ("data", 0, "properties", "delivery_category"),
    ("data", 0, "properties", "contents"), ("data", 0, "properties", "contents", 0),
    ("data", 0, "properties", "contents", 0, "content_id"), ("data", 0, "properties", "contents", 0, "price"),
    ("data", 0, "properties", "contents", 0, "quantity"), ("data", 0, "properties", "contents", 0, "content_type"),
    ("data", 0, "properties", "contents", 0, "brand"), ("data", 0, "limited_data_use"), ("data", 0, "page"),
    ("data", 0, "lead"),
]  # fmt: skip

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.sampled_from(
        ["", "offline", "web", "USD", "usd", "product", "in_store", "Purchase", "CompletePayment", "curbside",
         "7300000000000000001", "١٢٣", sha256("x"), sha256("x").upper(), sha256("x")[:63], sha256("x") + " "]
    ),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
)


def _set(body: Any, path: tuple[Any, ...], value: Any) -> bool:
    target = body
    for key in path[:-1]:
        if isinstance(target, dict) and key in target:
            target = target[key]
        elif isinstance(target, list) and isinstance(key, int) and key < len(target):
            target = target[key]
        else:
            return False
    last = path[-1]
    if isinstance(target, dict) or (isinstance(target, list) and isinstance(last, int) and last < len(target)):
        target[last] = value
        return True
    return False


def _reference_accepts(body: Any) -> bool:
    checked = check_body(body)
    if isinstance(checked, Problem):
        return False
    return check_events(checked.events, checked.event_source, RULES) is None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3))
def test_the_fast_path_accepts_only_what_the_reference_accepts(changes):
    body = track_body([make_event(1), make_event(2)])
    for path, value in changes:
        _set(body, path, copy.deepcopy(value))

    # The stdlib encoder: orjson refuses integers beyond 64 bits, which a client may still send.
    if fast_check(json.dumps(body).encode(), RULES.offline_events) is not None:
        assert _reference_accepts(body), body


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "event": st.sampled_from(["Purchase", "Contact", "Lead", "CompletePayment", "SubmitForm"]),
                "event_time": st.integers(min_value=0, max_value=2**40),
                "event_id": st.none() | st.text(max_size=8),
                "user": st.fixed_dictionaries(
                    {},
                    optional={
                        "email": st.just(sha256("e")) | st.lists(st.just(sha256("f")), max_size=2),
                        "external_id": st.lists(st.just(sha256("g")), max_size=2),
                        "ip": st.just("10.0.0.1"),
                    },
                ),
                "properties": st.fixed_dictionaries(
                    {},
                    optional={
                        "currency": st.sampled_from(["USD", "EUR", "JPY"]),
                        "value": st.integers(0, 1000) | st.floats(0, 1e6),
                        "content_type": st.sampled_from(["product", "product_group"]),
                        "contents": st.lists(st.fixed_dictionaries({"content_id": st.text(max_size=4)}), max_size=2),
                    },
                ),
            }
        ),
        min_size=1,
        max_size=20,
    )
)
def test_the_fast_path_takes_the_valid_bodies_it_was_built_for(events):
    body = track_body(events)
    assert _reference_accepts(body)

    fast = fast_check(orjson.dumps(body), RULES.offline_events)

    assert fast is not None
    assert fast.keys == [(e["event"], e["event_id"]) for e in events]


def test_rules_with_poison_or_relaxed_switches_skip_the_fast_path():
    assert RULES.fast
    assert not TrackRules.build(accept_legacy_events=True, poison={"event_id": "x"}).fast
    assert not TrackRules.build(accept_legacy_events=True, require_hashed=False).fast
    assert not TrackRules.build(accept_legacy_events=True, check_event_channel=False).fast


def test_ascii_digits_only_for_an_offline_event_set_id():
    body = track_body([make_event()], event_source_id="١٢٣")  # Arabic-Indic digits: str.isdigit() says True

    assert fast_check(orjson.dumps(body), RULES.offline_events) is None
    assert check_body(body) == Problem(("event_source_id",), "not a valid string")
