"""event/track/ over real HTTP: TikTok's envelope, validation (one bad event fails the batch), dedup, inspection."""

from __future__ import annotations

import copy
import re
from typing import Any

import httpx
import pytest
from emulator_client import REQUEST_ID, TRACK, make_event, sha256, track_body

from offramp.plugins.tiktok.emulator import DEFAULT_EVENT_SET_ID, EmulatorConfig, Seed
from offramp.plugins.tiktok.emulator.seed import DEFAULT_SEED, EventSetSeed


def test_success_is_tiktoks_envelope_with_request_id_and_logid(api, token):
    response = api.client.post(TRACK, json=track_body([make_event()]), headers={"Access-Token": token})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["code"] == 0
    assert answer["message"] == "OK"
    assert answer["data"] == {}
    assert re.match(REQUEST_ID, answer["request_id"])
    assert response.headers["X-TT-LOGID"] == answer["request_id"]
    assert api.state.statistics()["events_accepted"] == 1


def test_request_ids_differ_and_start_with_the_utc_time(api, token, clock):
    first = api.track(token, [make_event(1)])["request_id"]
    second = api.track(token, [make_event(2)])["request_id"]

    assert first != second
    assert first[:14] == second[:14] == "20270115080000"  # ManualClock starts at 1_800_000_000


@pytest.mark.parametrize("path", ["/open_api/v1.3/event/track", "/open_api/v1.3/oauth2/access_token", "/nope/"])
def test_a_path_without_its_trailing_slash_is_404_page_not_found(api, path):
    response = api.client.post(path, json={})

    assert response.status_code == 404
    assert response.text == "404 page not found"


def test_a_missing_token_is_40104_before_the_body_is_read(api):
    answer = api.post(TRACK, "not even an object")

    assert answer["code"] == 40104
    assert "Access-Token" in answer["message"]


def test_an_unknown_token_is_40105(api):
    assert api.track("not-a-token", [make_event()])["code"] == 40105


def _bad(path: str, value: Any) -> Any:
    """A mutation of a valid 3-event body that spoils the middle event (or the top level) at `path`."""

    def mutate(body: dict[str, Any]) -> None:
        target: Any = body["data"][1] if not path.startswith("^") else body
        keys = path.lstrip("^").split(".")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is _DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value

    return mutate


_DELETE = object()

INVALID = [
    # (what is spoiled, the field the message names)
    (_bad("^event_source", "email"), "event_source"),
    (_bad("^event_source", _DELETE), "event_source"),
    (_bad("^event_source_id", "CM1I1K3C77U1A2B3C4D5"), "event_source_id"),
    (_bad("^event_source_id", 7300000000000000001), "event_source_id"),
    (_bad("^data", []), "data"),
    (_bad("^data", {"event": "Purchase"}), "data"),
    (_bad("^test_event_code", 12), "test_event_code"),
    (_bad("event", "Order Completed"), "event"),
    (_bad("event", "purchase"), "event"),
    (_bad("event", _DELETE), "event"),
    (_bad("event_time", "1795300000"), "event_time"),
    (_bad("event_time", 1795300000.5), "event_time"),
    (_bad("event_time", True), "event_time"),
    (_bad("event_time", _DELETE), "event_time"),
    (_bad("event_id", 123), "event_id"),
    (_bad("user", "someone"), "user"),
    (_bad("user.email", ["ada@example.com"]), "email"),
    (_bad("user.email", sha256("x").upper()), "email"),
    (_bad("user.email", [sha256("x")[:63]]), "email"),
    (_bad("user.phone", "+14155550101"), "phone"),
    (_bad("user.external_id", 42), "external_id"),
    (_bad("user.external_id", [sha256("x"), 42]), "external_id"),
    (_bad("user.ip", 127), "ip"),
    (_bad("properties", []), "properties"),
    (_bad("properties.contents.0.content_id", 1), "content_id"),
    (_bad("properties.contents.0.price", "29.99"), "price"),
    (_bad("properties.contents", {"content_id": "x"}), "contents"),
    (_bad("properties.currency", "XYZ"), "currency"),
    (_bad("properties.currency", "usd"), "currency"),
    (_bad("properties.currency", ["USD"]), "currency"),
    (_bad("properties.content_type", "sku"), "content_type"),
    (_bad("properties.event_channel", "telepathy"), "event_channel"),
    (_bad("properties.value", "59.98"), "value"),
    (_bad("properties.order_id", 100045), "order_id"),
    (_bad("limited_data_use", "no"), "limited_data_use"),
]


@pytest.mark.parametrize(("mutate", "field"), INVALID)
def test_one_invalid_event_fails_the_whole_batch_with_40002_naming_the_field(api, token, mutate, field):
    body = track_body([make_event(1), make_event(2), make_event(3)])
    mutate(body)

    answer = api.post(TRACK, body, token)

    assert answer["code"] == 40002, answer
    assert answer["message"].startswith(f"Invalid value for {field}: "), answer["message"]
    assert answer["data"] == {}
    assert api.state.events() == []
    stats = api.state.statistics()
    assert stats["events_received"] == stats["events_accepted"] == 0
    assert stats["errors"] == {"40002": 1}


def test_tiktoks_observed_messages_word_for_word(api, token):
    answer = api.post(TRACK, track_body([make_event()], event_source_id="CM1I1K3C77U1A2B3C4D5"), token)
    assert answer["message"] == "Invalid value for event_source_id: not a valid string."

    answer = api.track(token, [make_event(event_id=100045)])
    assert answer["message"] == "Invalid value for event_id: not a valid string."


def test_more_than_1000_events_is_refused(api, token):
    answer = api.track(token, [make_event(n) for n in range(1001)])

    assert answer["code"] == 40002
    assert answer["message"] == "Invalid value for data: length must be between 1 and 1000."


def test_1000_events_are_accepted(api, token):
    assert api.track(token, [make_event(n) for n in range(1000)])["code"] == 0
    assert api.state.statistics()["events_accepted"] == 1000


def test_a_body_that_is_not_json_is_40002(api, token):
    response = api.client.post(TRACK, content=b"{nope", headers={"Access-Token": token})

    assert response.json()["code"] == 40002
    assert "body" in response.json()["message"]


def test_path_style_names_the_event_and_item(start_api):
    api = start_api(EmulatorConfig(error_field_style="path"))
    token = api.token()
    event = make_event(2)
    event["properties"]["contents"].append({"content_id": 7})

    answer = api.track(token, [make_event(1), event])

    assert answer["message"] == "Invalid value for data.1.properties.contents.1.content_id: not a valid string."


def test_identifiers_may_be_a_string_or_a_list_and_other_fields_are_optional(api, token):
    events = [
        make_event(1, user={"email": sha256("a"), "phone": [sha256("b"), sha256("c")], "external_id": [sha256("d")]}),
        make_event(2, user={"email": [], "ip": "2001:db8::1", "user_agent": "pos/1.0", "lead_id": "l-1"}),
        {"event": "Contact", "event_time": 1_795_300_000},
        make_event(3, properties={"currency": "JPY", "value": 5000, "content_ids": ["a", "b"], "num_items": 2}),
        make_event(4, limited_data_use=False, page={"url": "https://shop.example"}, unknown_key={"ignored": True}),
        make_event(5, user={"email": None, "phone": sha256("p")}, properties=None, event_id=None),
    ]

    assert api.track(token, events, partner_name="offramp", test_event_code=None)["code"] == 0
    assert api.state.statistics()["events_accepted"] == 6


def test_legacy_event_names_are_accepted_for_offline_by_default_behind_a_switch(start_api):
    api = start_api()
    assert api.track(api.token(), [make_event(event="CompletePayment")])["code"] == 0

    strict = start_api(EmulatorConfig(accept_legacy_events=False))
    answer = strict.track(strict.token(), [make_event(event="CompletePayment")])
    assert answer["code"] == 40002
    assert "CompletePayment is not a standard event" in answer["message"]


def test_unhashed_identifiers_pass_when_the_switch_is_off(start_api):
    api = start_api(EmulatorConfig(require_hashed_identifiers=False))

    answer = api.track(api.token(), [make_event(user={"email": "ada@example.com", "phone": ["+14155550101"]})])

    assert answer["code"] == 0


def test_event_channel_is_not_checked_when_the_switch_is_off(start_api):
    api = start_api(EmulatorConfig(check_event_channel=False))
    event = make_event()
    event["properties"]["event_channel"] = "carrier-pigeon"

    assert api.track(api.token(), [event])["code"] == 0


def test_web_event_sets_take_custom_event_names(start_api):
    pixel = EventSetSeed(
        event_set_id="CM1I1K3C77U1A2B3C4D5", advertiser_id="7200000000000000001", name="Web", event_source="web"
    )
    api = start_api(EmulatorConfig(seed=Seed(**{**DEFAULT_SEED.model_dump(), "event_sets": [pixel]})))

    event = make_event(event="MyCustomThing")
    answer = api.track(api.token(), [event], event_source="web", event_source_id=pixel.event_set_id)

    assert answer["code"] == 0


def test_an_unknown_event_set_is_40001_or_40007_as_configured(start_api):
    api = start_api()
    answer = api.track(api.token(), [make_event()], event_source_id="7300000000000009999")
    assert answer["code"] == 40001
    assert "You must be an admin or operator of this advertiser account" in answer["message"]

    other = start_api(EmulatorConfig(unknown_event_set_code=40007))
    assert other.track(other.token(), [make_event()], event_source_id="7300000000000009999")["code"] == 40007


def test_duplicates_within_48_hours_are_dropped_counted_and_still_answered_ok(api, token, clock):
    assert api.track(token, [make_event(1), make_event(2)])["code"] == 0
    assert api.track(token, [make_event(1), make_event(3), make_event(3)])["code"] == 0
    # Same event_id with another event name is another event.
    assert api.track(token, [make_event(1, event="Contact")])["code"] == 0

    stats = api.state.statistics()
    assert (stats["events_received"], stats["events_accepted"], stats["duplicates_dropped"]) == (6, 4, 2)
    statuses = [(e["payload"]["event_id"], e["status"]) for e in api.state.events(event="Purchase")]
    assert statuses == [
        ("order-1", "accepted"),
        ("order-2", "accepted"),
        ("order-1", "duplicate"),
        ("order-3", "accepted"),
        ("order-3", "duplicate"),
    ]

    clock.advance(48 * 3600 - 1)
    token = api.token(api.state.issue_auth_code("admin"))  # the first one expired after 24 hours
    api.track(token, [make_event(2)])
    clock.advance(2)
    api.track(token, [make_event(1)])
    assert api.state.events(event_id="order-2")[-1]["status"] == "duplicate"
    assert api.state.events(event_id="order-1", event="Purchase")[-1]["status"] == "accepted"


def test_events_without_event_id_are_never_duplicates(api, token):
    event = make_event(event_id=None)
    api.track(token, [event, event])

    assert api.state.statistics()["duplicates_dropped"] == 0


def test_test_events_are_recorded_but_take_no_part_in_dedup(api, token):
    api.track(token, [make_event(1)], test_event_code="TEST123")
    api.track(token, [make_event(1)])

    stats = api.state.statistics()
    assert (stats["test_events"], stats["events_accepted"], stats["duplicates_dropped"]) == (1, 2, 0)
    assert [e["test_event_code"] for e in api.state.events()] == ["TEST123", None]


def test_inspection_filters_over_http(api, token):
    api.track(token, [make_event(1), make_event(2, event="Contact"), make_event(1)])

    def events(**params: str) -> list[dict[str, Any]]:
        answer = api.control("GET", "events", params=params)
        assert answer["count"] == len(answer["events"])
        return list(answer["events"])

    assert len(events()) == 3
    assert len(events(event_set_id=DEFAULT_EVENT_SET_ID)) == 3
    assert events(event_set_id="7300000000000000999") == []
    assert [e["payload"]["event_id"] for e in events(event="Contact")] == ["order-2"]
    assert len(events(event_id="order-1")) == 2
    assert len(events(status="duplicate")) == 1
    assert len(events(limit="2")) == 2
    first = events()[0]
    assert first["event_source"] == "offline"
    assert first["event_source_id"] == DEFAULT_EVENT_SET_ID
    assert first["payload"] == make_event(1)
    assert re.match(REQUEST_ID, first["request_id"])
    assert api.client.get("/_emulator/events", params={"status": "lost"}).status_code == 400


def test_stats_count_requests_events_and_errors_by_code(api, token):
    api.track(token, [make_event(1)])
    api.track(token, [make_event(1)])
    api.track(token, [make_event(event_id=5)])
    api.track("nope", [make_event()])

    stats = api.control("GET", "stats")

    assert stats["requests"] == 5  # with the token exchange
    assert stats["requests_by_path"] == {"event/track/": 4, "oauth2/access_token/": 1}
    assert (stats["events_received"], stats["events_accepted"], stats["duplicates_dropped"]) == (2, 1, 1)
    assert stats["errors"] == {"40002": 1, "40105": 1}
    assert stats["http_errors"] == {}


def test_reset_forgets_events_stats_and_tokens_and_restores_seeded_auth_codes(api, token):
    api.track(token, [make_event()])

    assert api.control("POST", "reset") == {"reset": True}

    assert api.state.events() == []
    assert api.state.statistics()["requests"] == 0
    assert api.track(token, [make_event()])["code"] == 40105
    fresh = api.token()  # auth-code-admin works again
    assert api.track(fresh, [make_event()])["code"] == 0


def test_keep_events_bounds_what_is_kept_for_inspection(start_api):
    api = start_api(EmulatorConfig(keep_events=3))
    token = api.token()
    for n in range(4):
        api.track(token, [make_event(2 * n), make_event(2 * n + 1)])

    assert [e["payload"]["event_id"] for e in api.state.events()] == ["order-6", "order-7"]
    assert api.state.statistics()["events_accepted"] == 8


def test_many_connections_at_once(api, token):
    import concurrent.futures

    def send(n: int) -> int:
        with httpx.Client(base_url=api.emulator.base_url) as client:
            body = track_body([make_event(n * 100 + i) for i in range(50)])
            return int(client.post(TRACK, json=body, headers={"Access-Token": token}).json()["code"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(16))) == {0}
    assert api.state.statistics()["events_accepted"] == 800


def test_the_input_is_not_modified(api, token):
    events = [make_event(1)]
    before = copy.deepcopy(events)

    api.track(token, events)

    assert api.state.events()[0]["payload"] == before[0]
