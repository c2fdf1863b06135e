"""Fault injection over real HTTP: rate limit, error fractions, gateway pages, latency, token expiry, poison."""

from __future__ import annotations

import time

import pytest
from emulator_client import ACCESS_TOKEN, TRACK, make_event, track_body

from offramp.plugins.tiktok.emulator import DEFAULT_APP_ID, DEFAULT_APP_SECRET, EmulatorConfig, Faults
from offramp.plugins.tiktok.emulator.faults import FaultInjector


def _codes(api, token, count):
    return [api.track(token, [make_event(n)])["code"] for n in range(count)]


def test_a_qps_limit_answers_40100_in_a_200_without_retry_after(start_api):
    api = start_api(EmulatorConfig(faults=Faults(qps=3)))
    token = api.token()

    responses = [
        api.client.post(TRACK, json=track_body([make_event(n)]), headers={"Access-Token": token}) for n in range(6)
    ]

    assert [r.json()["code"] for r in responses] == [0, 0, 0, 40100, 40100, 40100]
    limited = responses[-1]
    assert limited.status_code == 200
    assert limited.json()["message"] == "Too many requests. Please retry in some time."
    assert "retry-after" not in limited.headers
    assert api.state.statistics()["errors"] == {"40100": 3}
    assert api.state.statistics()["events_accepted"] == 3
    time.sleep(1.05)
    assert api.track(token, [make_event(9)])["code"] == 0


def test_error_fractions_are_deterministic_for_a_seed(api, token):
    api.control("POST", "faults", json={"fail": {"50000": 0.3, "40100": 0.2}, "random_seed": 7})
    first = _codes(api, token, 30)
    api.control("POST", "faults", json={"random_seed": 7})  # setting faults restarts the sequence
    second = _codes(api, token, 30)

    assert first == second
    assert set(first) == {0, 50000, 40100}
    stats = api.state.statistics()
    assert stats["errors"]["50000"] == 2 * first.count(50000)


def test_a_fraction_of_one_fails_every_request(api, token):
    api.state.set_faults(Faults(fail={50002: 1.0}))

    assert _codes(api, token, 3) == [50002, 50002, 50002]
    assert api.state.events() == []


def test_http_502_is_nginxs_html_page_and_503_too(api, token):
    api.state.set_faults(Faults(http_502=1.0))
    response = api.client.post(TRACK, json=track_body([make_event()]), headers={"Access-Token": token})
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>502 Bad Gateway</title>" in response.text
    assert "nginx" in response.text

    api.state.set_faults(Faults(http_503=1.0))
    response = api.client.post(TRACK, json=track_body([make_event()]), headers={"Access-Token": token})
    assert response.status_code == 503
    assert "503 Service Temporarily Unavailable" in response.text
    assert api.state.statistics()["http_errors"] == {"502": 1, "503": 1}
    assert api.state.events() == []


def test_faults_apply_to_event_track_unless_told_otherwise(api, token):
    api.state.set_faults(Faults(http_503=1.0))
    body = {"app_id": DEFAULT_APP_ID, "secret": DEFAULT_APP_SECRET, "auth_code": api.state.issue_auth_code("admin")}
    assert api.post(ACCESS_TOKEN, body)["code"] == 0

    api.state.set_faults(Faults(http_503=1.0, paths=("*",)))
    assert api.client.post(ACCESS_TOKEN, json=body).status_code == 503


def test_fixed_latency_and_slow_requests(api, token):
    api.state.set_faults(Faults(latency_ms=150))
    started = time.monotonic()
    assert api.track(token, [make_event(1)])["code"] == 0
    assert time.monotonic() - started >= 0.15

    api.state.set_faults(Faults(slow_fraction=1.0, slow_ms=250))
    started = time.monotonic()
    assert api.track(token, [make_event(2)])["code"] == 0
    assert time.monotonic() - started >= 0.25


def test_delays_are_drawn_from_the_seed():
    faults = Faults(latency_ms=10, jitter_ms=40, slow_fraction=0.25, slow_ms=2000, random_seed=3)

    first = [d.delay for d in _draws(FaultInjector(faults), 200)]
    again = [d.delay for d in _draws(FaultInjector(faults), 200)]

    assert first == again
    slow = [d for d in first if d >= 2.0]
    assert 25 <= len(slow) <= 75  # about a quarter of 200
    assert all(0.010 <= d <= 0.050 or 2.010 <= d <= 2.050 for d in first)


def _draws(injector, count):
    return [injector.draw(float(n)) for n in range(count)]


def test_the_rate_limiter_window_slides():
    injector = FaultInjector(Faults(qps=2))

    codes = [injector.draw(at).code for at in (0.0, 0.1, 0.2, 0.95, 1.05, 1.11, 1.2)]

    assert codes == [None, None, 40100, 40100, None, None, 40100]


def test_access_tokens_expire_after_the_fault_ttl_even_long_term_ones(start_api, clock):
    api = start_api(EmulatorConfig(refresh_tokens=False))
    token = api.token()

    api.control("POST", "faults", json={"access_token_ttl": 30})
    assert api.track(token, [make_event(1)])["code"] == 0
    clock.advance(30)
    assert api.track(token, [make_event(2)])["code"] == 40102

    api.control("POST", "faults", json={"access_token_ttl": None})
    assert api.track(token, [make_event(3)])["code"] == 0


def test_the_token_ttl_fault_shows_in_expires_in(start_api):
    api = start_api(EmulatorConfig(faults=Faults(access_token_ttl=5)))

    assert api.exchange()["expires_in"] == 5


@pytest.mark.parametrize(
    ("poison", "event", "field"),
    [
        ({"event_id": "order-2"}, make_event(2), "event_id"),
        ({"properties.order_id": "13"}, make_event(13), "order_id"),
        ({"properties.value": "59.98"}, make_event(5), "value"),
        ({"user.email": "e" * 64}, make_event(7, user={"email": ["a" * 64, "e" * 64]}), "email"),
    ],
)
def test_a_poisoned_value_fails_its_batch_with_40002(api, token, poison, event, field):
    api.control("POST", "faults", json={"poison": poison})

    answer = api.track(token, [make_event(1), event])

    assert answer["code"] == 40002
    assert answer["message"].startswith(f"Invalid value for {field}: ")
    assert api.state.events() == []
    clean = make_event(3, properties={"currency": "EUR", "value": 1.5, "order_id": "3"})
    assert api.track(token, [clean])["code"] == 0


def test_faults_from_the_control_api_patch_or_replace(api):
    assert api.control("GET", "faults") == Faults().model_dump(mode="json")

    patched = api.control("POST", "faults", json={"qps": 50, "fail": {"50000": 0.1}})
    assert (patched["qps"], patched["fail"]) == (50, {"50000": 0.1})
    patched = api.control("POST", "faults", json={"http_502": 0.2})
    assert (patched["qps"], patched["http_502"]) == (50, 0.2)

    replaced = api.control("POST", "faults", params={"replace": "1"}, json={"latency_ms": 5})
    assert replaced == Faults(latency_ms=5).model_dump(mode="json")


@pytest.mark.parametrize(
    "body",
    [{"fail": {"50000": 1.5}}, {"fail": {"12345": 0.1}}, {"http_502": 0.8, "http_503": 0.8}, {"nope": 1}, [1]],
)
def test_invalid_faults_are_refused_and_change_nothing(api, body):
    response = api.client.post("/_emulator/faults", json=body)

    assert response.status_code in (400, 422)
    assert "error" in response.json()
    assert api.control("GET", "faults") == Faults().model_dump(mode="json")


def test_reset_restores_the_faults_of_the_start(start_api):
    api = start_api(EmulatorConfig(faults=Faults(qps=10)))
    api.control("POST", "faults", json={"qps": 1, "http_503": 1.0})

    api.control("POST", "reset")

    assert api.control("GET", "faults") == Faults(qps=10).model_dump(mode="json")


def test_the_clock_can_be_moved_from_the_control_api(api, clock):
    before = api.control("GET", "clock")["now"]

    after = api.control("POST", "clock", json={"advance_seconds": 3601})["now"]

    assert after == before + 3601 == clock.now()
    assert api.client.post("/_emulator/clock", json={"advance_seconds": -1}).status_code == 400
