"""OAuth and account endpoints over real HTTP: auth codes, token lifetimes, rotation, revocation, roles, event sets."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from emulator_client import ACCESS_TOKEN, REVOKE_TOKEN, TRACK, make_event, track_body

from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    ANALYST_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    OPERATOR_AUTH_CODE,
    SECOND_ADVERTISER_ID,
    EmulatorConfig,
)

ADMIN_OR_OPERATOR = "You must be an admin or operator of this advertiser account"
ADVERTISER_GET = "/open_api/v1.3/oauth2/advertiser/get/"
ADVERTISER_INFO = "/open_api/v1.3/advertiser/info/"
USER_INFO = "/open_api/v1.3/user/info/"
OFFLINE = "/open_api/v1.3/offline/"


def _exchange_body(code: str, **overrides: str) -> dict[str, str]:
    return {"app_id": DEFAULT_APP_ID, "secret": DEFAULT_APP_SECRET, "auth_code": code, **overrides}


def test_an_auth_code_gives_a_token_and_a_refresh_token(api):
    data = api.exchange(ADMIN_AUTH_CODE)

    assert set(data) == {
        "access_token", "advertiser_ids", "scope", "token_type", "expires_in", "refresh_token",
        "refresh_token_expires_in",
    }  # fmt: skip
    assert data["advertiser_ids"] == [DEFAULT_ADVERTISER_ID, SECOND_ADVERTISER_ID]
    assert data["token_type"] == "Bearer"
    assert (data["expires_in"], data["refresh_token_expires_in"]) == (86_400, 31_536_000)
    assert all(isinstance(s, int) for s in data["scope"])
    assert api.track(data["access_token"], [make_event()])["code"] == 0


def test_the_operator_sees_only_the_advertiser_it_has_a_role_on(api):
    assert api.exchange(OPERATOR_AUTH_CODE)["advertiser_ids"] == [DEFAULT_ADVERTISER_ID]


def test_extra_keys_such_as_grant_type_are_ignored(api):
    body = _exchange_body(ADMIN_AUTH_CODE, grant_type="authorization_code")

    assert api.post(ACCESS_TOKEN, body)["code"] == 0


@pytest.mark.parametrize(
    "body",
    [
        _exchange_body(ADMIN_AUTH_CODE, secret="wrong"),
        _exchange_body(ADMIN_AUTH_CODE, app_id="7100000000000000999"),
        {"auth_code": ADMIN_AUTH_CODE},
    ],
)
def test_a_wrong_app_or_secret_is_40101(api, body):
    assert api.post(ACCESS_TOKEN, body)["code"] == 40101


def test_an_auth_code_works_once(api):
    api.exchange(ADMIN_AUTH_CODE)

    answer = api.post(ACCESS_TOKEN, _exchange_body(ADMIN_AUTH_CODE))

    assert answer["code"] == 40110
    assert api.post(ACCESS_TOKEN, _exchange_body("auth-code-never-issued"))["code"] == 40110


def test_an_auth_code_expires_after_an_hour(api, clock):
    fresh = api.state.issue_auth_code("admin")
    clock.advance(3599)
    assert api.post(ACCESS_TOKEN, _exchange_body(fresh))["code"] == 0

    clock.advance(2)  # the seeded codes are 3601 s old now
    assert api.post(ACCESS_TOKEN, _exchange_body(ADMIN_AUTH_CODE))["code"] == 40110


def test_refresh_rotates_the_refresh_token_and_the_used_one_then_fails_with_40107(api):
    first = api.exchange()

    answer = api.refresh(first["refresh_token"])

    assert answer["code"] == 0
    second = answer["data"]
    assert {"access_token", "refresh_token", "expires_in", "refresh_token_expires_in", "advertiser_ids"} <= set(second)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert api.refresh(first["refresh_token"])["code"] == 40107
    # The grant keeps the newest refresh token; the previous access token still works until it expires.
    (grant,) = api.control("GET", "grants")["grants"]
    assert (grant["user"], grant["refresh_token"], grant["revoked"]) == ("admin", second["refresh_token"], False)
    assert api.track(first["access_token"], [make_event(1)])["code"] == 0
    assert api.track(second["access_token"], [make_event(2)])["code"] == 0
    assert api.refresh(second["refresh_token"])["code"] == 0


def test_an_access_token_expires_with_40102_and_refreshing_gives_a_working_one(api, clock):
    data = api.exchange()
    clock.advance(data["expires_in"])

    assert api.track(data["access_token"], [make_event()])["code"] == 40102
    refreshed = api.refresh(data["refresh_token"])["data"]
    assert api.track(refreshed["access_token"], [make_event()])["code"] == 0


def test_an_expired_refresh_token_is_40103(start_api, clock):
    api = start_api(EmulatorConfig(refresh_token_ttl=600))
    data = api.exchange()
    clock.advance(600)

    assert api.refresh(data["refresh_token"])["code"] == 40103


def test_unknown_refresh_tokens_and_wrong_grant_types(api):
    data = api.exchange()

    assert api.refresh("not-a-refresh-token")["code"] == 40107
    body = {"app_id": DEFAULT_APP_ID, "secret": DEFAULT_APP_SECRET, "refresh_token": data["refresh_token"]}
    assert api.post("/open_api/v1.3/oauth2/refresh_token/", {**body, "grant_type": "password"})["code"] == 40108
    assert api.post("/open_api/v1.3/oauth2/refresh_token/", {**body, "secret": "wrong"})["code"] == 40101


def test_without_refresh_tokens_the_token_is_long_term_and_refresh_is_40008(start_api, clock):
    api = start_api(EmulatorConfig(refresh_tokens=False))

    data = api.exchange()

    assert set(data) == {"access_token", "advertiser_ids", "scope"}
    clock.advance(10 * 365 * 86_400)
    assert api.track(data["access_token"], [make_event()])["code"] == 0
    assert api.refresh("anything")["code"] == 40008


def test_revoke_token_revokes_the_grant(api):
    data = api.exchange()
    body = {"app_id": DEFAULT_APP_ID, "secret": DEFAULT_APP_SECRET, "access_token": data["access_token"]}

    answer = api.post(REVOKE_TOKEN, body)

    assert answer["code"] == 0
    assert answer["data"] == {"app_id": DEFAULT_APP_ID, "advertiser_ids": data["advertiser_ids"]}
    assert api.track(data["access_token"], [make_event()])["code"] == 40105
    assert api.refresh(data["refresh_token"])["code"] == 40107
    assert api.post(REVOKE_TOKEN, body)["code"] == 40105


def test_revoking_a_users_grants_from_the_control_api(api):
    admin, operator = api.exchange(), api.exchange(OPERATOR_AUTH_CODE)

    assert api.control("POST", "revoke", json={"user": "admin"}) == {"revoked": 1}

    assert api.track(admin["access_token"], [make_event()])["code"] == 40105
    assert api.refresh(admin["refresh_token"])["code"] == 40107
    assert api.track(operator["access_token"], [make_event()])["code"] == 0
    grants = {g["user"]: g["revoked"] for g in api.control("GET", "grants")["grants"]}
    assert grants == {"admin": True, "operator": False}
    assert api.client.post("/_emulator/revoke", json={"user": "nobody"}).status_code == 404


def test_an_analyst_may_read_but_not_send_events_or_change_event_sets(api):
    token = api.token(ANALYST_AUTH_CODE)

    answer = api.track(token, [make_event()])
    assert answer["code"] == 40001
    assert ADMIN_OR_OPERATOR in answer["message"]
    create = api.post(OFFLINE + "create/", {"advertiser_id": DEFAULT_ADVERTISER_ID, "name": "x"}, token)
    assert create["code"] == 40001
    assert ADMIN_OR_OPERATOR in create["message"]
    assert api.get(OFFLINE + "get/", {"advertiser_id": DEFAULT_ADVERTISER_ID}, token)["code"] == 0
    assert api.get(ADVERTISER_INFO, {"advertiser_ids": json.dumps([DEFAULT_ADVERTISER_ID])}, token)["code"] == 0
    assert api.state.events() == []


def test_an_advertiser_outside_the_grant_is_40001(api):
    token = api.token(OPERATOR_AUTH_CODE)

    answer = api.get(ADVERTISER_INFO, {"advertiser_ids": json.dumps([SECOND_ADVERTISER_ID])}, token)

    assert answer["code"] == 40001


def test_the_authorization_page_redirects_with_a_fresh_code_and_the_state(api):
    params = {"app_id": DEFAULT_APP_ID, "state": "s-42", "redirect_uri": "http://127.0.0.1:8765/callback"}

    response = api.client.get("/portal/auth", params=params)

    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("http", "127.0.0.1:8765", "/callback")
    query = parse_qs(location.query)
    assert query["state"] == ["s-42"]
    data = api.exchange(query["auth_code"][0])
    assert data["advertiser_ids"] == [DEFAULT_ADVERTISER_ID, SECOND_ADVERTISER_ID]


def test_the_authorization_page_takes_a_user_and_keeps_the_redirect_uris_query(api):
    params = {"app_id": DEFAULT_APP_ID, "state": "s", "redirect_uri": "http://localhost:9/cb?x=1", "user": "operator"}

    location = api.client.get("/portal/auth", params=params).headers["location"]

    assert location.startswith("http://localhost:9/cb?x=1&auth_code=")
    code = parse_qs(urlsplit(location).query)["auth_code"][0]
    assert api.exchange(code)["advertiser_ids"] == [DEFAULT_ADVERTISER_ID]


@pytest.mark.parametrize(
    "params",
    [
        {"app_id": "7100000000000000999", "redirect_uri": "http://127.0.0.1:1/cb"},
        {"app_id": DEFAULT_APP_ID, "redirect_uri": "not a url"},
        {"app_id": DEFAULT_APP_ID, "redirect_uri": "http://127.0.0.1:1/cb", "user": "nobody"},
    ],
)
def test_the_authorization_page_refuses_unknown_apps_users_and_bad_redirects(api, params):
    assert api.client.get("/portal/auth", params=params).status_code == 400


def test_auth_codes_from_the_control_api(api):
    code = api.control("POST", "auth-codes", json={"user": "operator"})["auth_code"]

    assert api.exchange(code)["advertiser_ids"] == [DEFAULT_ADVERTISER_ID]
    assert api.client.post("/_emulator/auth-codes", json={"user": "nobody"}).status_code == 404


def test_advertiser_get_needs_the_app_credentials(api, token):
    good = {"app_id": DEFAULT_APP_ID, "secret": DEFAULT_APP_SECRET}

    answer = api.get(ADVERTISER_GET, good, token)

    assert answer["code"] == 0
    assert answer["data"]["list"] == [
        {"advertiser_id": DEFAULT_ADVERTISER_ID, "advertiser_name": "Emulator Store Co"},
        {"advertiser_id": SECOND_ADVERTISER_ID, "advertiser_name": "Emulator Outlet Co"},
    ]
    assert api.get(ADVERTISER_GET, {**good, "secret": "x"}, token)["code"] == 40101
    assert api.get(ADVERTISER_GET, good)["code"] == 40104


@pytest.mark.parametrize(
    "params",
    [
        {"advertiser_ids": json.dumps([DEFAULT_ADVERTISER_ID, SECOND_ADVERTISER_ID])},
        [("advertiser_ids", DEFAULT_ADVERTISER_ID), ("advertiser_ids", SECOND_ADVERTISER_ID)],
    ],
)
def test_advertiser_info_takes_a_json_list_or_repeated_keys(api, token, params):
    answer = api.get(ADVERTISER_INFO, params, token)

    assert answer["code"] == 0
    records = answer["data"]["list"]
    assert [r["advertiser_id"] for r in records] == [DEFAULT_ADVERTISER_ID, SECOND_ADVERTISER_ID]
    assert records[0]["name"] == "Emulator Store Co"
    assert records[0]["status"] == "STATUS_ENABLE"


def test_advertiser_info_fields_and_missing_ids(api, token):
    params = {"advertiser_ids": json.dumps([DEFAULT_ADVERTISER_ID]), "fields": json.dumps(["name", "currency"])}

    (record,) = api.get(ADVERTISER_INFO, params, token)["data"]["list"]

    assert record == {"advertiser_id": DEFAULT_ADVERTISER_ID, "name": "Emulator Store Co", "currency": "USD"}
    assert api.get(ADVERTISER_INFO, {}, token)["code"] == 40002
    assert api.get(ADVERTISER_INFO, {"advertiser_ids": "[not json"}, token)["code"] == 40002


def test_user_info_masks_the_email(api, token):
    data = api.get(USER_INFO, None, token)["data"]

    assert data["display_name"] == "Emulator Admin"
    assert data["email"] == "ad***@emulator.invalid"
    assert api.post(USER_INFO, {}, token)["code"] == 0


def test_offline_event_sets_create_get_update_delete(api, token):
    created = api.post(OFFLINE + "create/", {"advertiser_id": DEFAULT_ADVERTISER_ID, "name": "Call centre"}, token)
    assert created["code"] == 0
    new_id = created["data"]["event_set_id"]
    assert new_id == "7300000000000000002"

    listed = api.get(OFFLINE + "get/", {"advertiser_id": DEFAULT_ADVERTISER_ID}, token)["data"]["event_set_list"]
    assert [(s["event_set_id"], s["name"], s["auto_tracking"]) for s in listed] == [
        (DEFAULT_EVENT_SET_ID, "Emulator stores", False),
        (new_id, "Call centre", False),
    ]
    by_ids = api.get(OFFLINE + "get/", [("advertiser_id", DEFAULT_ADVERTISER_ID), ("event_set_ids", new_id)], token)[
        "data"
    ]["event_set_list"]
    assert [s["event_set_id"] for s in by_ids] == [new_id]
    by_json = api.get(
        OFFLINE + "get/", {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_ids": json.dumps([new_id])}, token
    )["data"]["event_set_list"]
    assert by_json == by_ids
    by_name = api.get(OFFLINE + "get/", {"advertiser_id": DEFAULT_ADVERTISER_ID, "name": "Emulator stores"}, token)
    assert [s["event_set_id"] for s in by_name["data"]["event_set_list"]] == [DEFAULT_EVENT_SET_ID]

    # Events to the new set are separate from the seeded set's for deduplication.
    assert api.track(token, [make_event(1)])["code"] == 0
    assert api.track(token, [make_event(1)], event_source_id=new_id)["code"] == 0
    assert api.state.statistics()["duplicates_dropped"] == 0

    update = {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_id": new_id, "name": "Phones", "auto_tracking": True}
    assert api.post(OFFLINE + "update/", update, token)["code"] == 0
    (updated,) = api.get(OFFLINE + "get/", {"advertiser_id": DEFAULT_ADVERTISER_ID, "name": "Phones"}, token)["data"][
        "event_set_list"
    ]
    assert updated["auto_tracking"] is True

    delete = {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_id": new_id}
    assert api.post(OFFLINE + "delete/", delete, token)["code"] == 0
    assert api.post(OFFLINE + "delete/", delete, token)["code"] == 40007
    assert api.track(token, [make_event(2)], event_source_id=new_id)["code"] == 40001


def test_offline_create_validates_its_body(api, token):
    assert api.post(OFFLINE + "create/", {"advertiser_id": DEFAULT_ADVERTISER_ID}, token)["code"] == 40002
    assert api.post(OFFLINE + "create/", {"name": "x"}, token)["code"] == 40002
    assert api.post(OFFLINE + "create/", [1, 2], token)["code"] == 40002
    assert api.get(OFFLINE + "get/", {}, token)["code"] == 40002
    assert api.post(OFFLINE + "create/", {"advertiser_id": DEFAULT_ADVERTISER_ID, "name": "x"})["code"] == 40104


def test_a_track_request_with_a_token_of_another_emulator_is_40105(start_api):
    first, second = start_api(), start_api()

    response = second.client.post(TRACK, json=track_body([make_event()]), headers={"Access-Token": first.token()})

    assert response.json()["code"] == 40105
