"""`destinations test`, `destinations add` (which runs it) and `ensure-event-set` against the emulator."""

from __future__ import annotations

import json

from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    ANALYST_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_EVENT_SET_ID,
)

ADD = ("destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tt",
       "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}")  # fmt: skip


def steps_of(cli, *args: str) -> tuple[int, dict[str, tuple[str, str]]]:
    result = cli("destinations", "test", "stores", "--json", *args)
    answer = json.loads(result.stdout)
    return result.exit_code, {step["name"]: (step["verdict"], step["detail"]) for step in answer["steps"]}


def test_add_runs_the_test_and_a_matching_destination_passes(cli, tiktok_credential):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")

    cli.ok(*ADD, "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}", "--set", "event_set_name=Emulator stores")

    code, steps = steps_of(cli)
    assert code == 0
    assert [name for name in steps] == ["token", "advertiser", "event set", "event set name", "auto tracking"]
    assert {verdict for verdict, _ in steps.values()} == {"ok"}
    assert "Admin" in steps["advertiser"][1]


def test_an_analysts_authorization_is_refused_with_the_role_it_needs(cli, tiktok_credential):
    cli.ok("credentials", "authorize", "tt", input=f"{ANALYST_AUTH_CODE}\n")

    line = cli(*ADD, "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}").one_line_error("--no-test")

    assert "OAuth needs a TikTok Ad Account Operator or Admin" in line
    assert json.loads(cli.ok("destinations", "list", "--json").stdout) == []  # nothing was saved
    cli.ok(*ADD, "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}", "--no-test")
    code, steps = steps_of(cli)
    assert code == 1
    assert steps["advertiser"][0] == "failed" and "Analyst" in steps["advertiser"][1]
    assert "event set" not in steps  # later steps wait for the first failure to be fixed


def test_a_missing_event_set_fails_naming_it(cli, tiktok_credential):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    cli.ok(*ADD, "--set", "event_set_id=7399999999999999999", "--no-test")

    code, steps = steps_of(cli)

    assert code == 1
    assert steps["event set"] == (
        "failed",
        f"event set 7399999999999999999 does not exist under advertiser {DEFAULT_ADVERTISER_ID}",
    )


def test_name_and_auto_tracking_mismatches_warn_and_fix_corrects_auto_tracking(cli, tiktok_credential, emulator):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    cli.ok(*ADD, "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}", "--set", "event_set_name=Stores",
           "--set", "auto_tracking=true")  # fmt: skip

    code, steps = steps_of(cli)
    assert code == 0  # warnings do not fail the test
    assert steps["event set name"][0] == "warning" and "'Emulator stores'" in steps["event set name"][1]
    assert steps["auto tracking"][0] == "warning" and "--fix" in steps["auto tracking"][1]
    assert emulator.state.event_sets[DEFAULT_EVENT_SET_ID].auto_tracking is False

    _, fixed = steps_of(cli, "--fix")

    assert fixed["auto tracking"][0] == "fixed"
    assert emulator.state.event_sets[DEFAULT_EVENT_SET_ID].auto_tracking is True
    assert steps_of(cli)[1]["auto tracking"] == ("ok", "on")


def test_ensure_event_set_creates_the_set_and_stores_its_id(cli, tiktok_credential, emulator):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    cli.ok(*ADD, "--set", "event_set_name=Call centre", "--set", "auto_tracking=true", "--no-test")

    result = cli.ok("destinations", "ensure-event-set", "stores")

    created = json.loads(cli.ok("destinations", "show", "stores", "--json").stdout)["settings"]["event_set_id"]
    assert f"Created event set {created}" in result.stdout
    record = emulator.state.event_sets[created]
    assert (record.name, record.auto_tracking, record.advertiser_id) == ("Call centre", True, DEFAULT_ADVERTISER_ID)
    assert "already has event set" in cli.ok("destinations", "ensure-event-set", "stores").stdout
    assert len(emulator.state.event_sets) == 2  # the seeded one and ours: nothing created twice
    assert steps_of(cli)[0] == 0


def test_an_unauthorized_credential_fails_the_first_step_saying_how_to_authorize(cli, tiktok_credential):
    cli.ok(*ADD, "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}", "--no-test")

    code, steps = steps_of(cli)

    assert code == 1
    assert list(steps) == ["token"]
    assert "offramp credentials authorize tt" in steps["token"][1]


def test_add_and_ensure_event_set_refresh_an_expired_token_without_waiting_for_their_own_transaction(
    cli, tiktok_credential, emulator, stored_tokens
):
    # The connection test and the event set creation may need a token refresh, which writes the rotated tokens
    # in a transaction of its own: it must not wait for the command's own write transaction (on SQLite that wait
    # ended in "database is locked" after the busy timeout).
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    before = stored_tokens()["refresh_token"]
    emulator.advance_clock(3 * 24 * 3600)  # the access token (a day) has expired; the refresh token has not

    cli.ok(*ADD, "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}", "--set", "event_set_name=Emulator stores")

    after_add = stored_tokens()["refresh_token"]
    assert after_add != before  # refreshed and kept
    assert after_add == emulator.current_refresh_token()
    emulator.advance_clock(3 * 24 * 3600)
    cli.ok(ADD[0], ADD[1], "second", *ADD[3:], "--set", "event_set_name=Second stores", "--no-test")
    created = cli.ok("destinations", "ensure-event-set", "second").stdout
    assert "Created event set" in created
    assert stored_tokens()["refresh_token"] == emulator.current_refresh_token() != after_add


def test_a_vendor_that_cannot_be_reached_is_one_clear_line(cli, initialized, monkeypatch):
    # Found by review: with the credential's host down, `destinations test` and `destinations add` printed
    # "unexpected ConnectError ... report it".
    from offramp.plugins.tiktok.emulator import DEFAULT_APP_ID, DEFAULT_APP_SECRET, run_emulator

    monkeypatch.setenv("GONE_APP_SECRET", DEFAULT_APP_SECRET)
    with run_emulator() as running:
        cli.ok(
            "credentials", "add", "tt", "--type", "tiktok-offline-events",
            "--set", f"app_id={DEFAULT_APP_ID}", "--set", "app_secret=env:GONE_APP_SECRET",
            "--set", f"api_base_url={running.base_url}", "--set", f"auth_url={running.base_url}/portal/auth",
        )  # fmt: skip
        cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
        cli.ok(*ADD, "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}", "--no-test")
        host = running.base_url.split("//", 1)[1]
    # The emulator is gone: nothing listens on its port any more.
    for command in (("destinations", "test", "stores"), (*ADD[:2], "other", *ADD[3:])):
        line = cli(*command).one_line_error("cannot reach the vendor's API", host, "api_base_url")
        assert "unexpected" not in line and "report it" not in line
    assert [row["name"] for row in json.loads(cli.ok("destinations", "list", "--json").stdout)] == ["stores"]
