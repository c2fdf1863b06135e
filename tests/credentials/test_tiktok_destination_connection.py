"""`destinations test`, `destinations add` (which runs it) and `ensure-event-set` against the emulator."""

from __future__ import annotations

import json

import pytest

from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    ANALYST_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    OPERATOR_AUTH_CODE,
    SECOND_ADVERTISER_ID,
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
    # The emulator is gone: nothing listens on its port any more. The test's advertiser step fails, saying so.
    tested = cli("destinations", "test", "stores")
    assert tested.exit_code == 1 and "Traceback" not in tested.output
    [failed] = [line for line in tested.stdout.splitlines() if "FAILED  " in line]
    assert (
        f"advertiser: advertiser {DEFAULT_ADVERTISER_ID} is not reachable: TikTok unreachable (connection "
        f"refused) at http://{host}" in failed
    )
    assert "api_base_url" in failed
    line = cli(*ADD[:2], "other", *ADD[3:]).one_line_error(
        "TikTok unreachable (connection refused)", host, "api_base_url"
    )
    assert "unexpected" not in line and "report it" not in line
    assert [row["name"] for row in json.loads(cli.ok("destinations", "list", "--json").stdout)] == ["stores"]


def test_an_advertiser_the_token_does_not_reach_lists_those_it_does_with_the_fix(cli, tiktok_credential):
    # TikTok answers a wrong advertiser id as it answers a missing role ("No permission to operate advertiser"):
    # the test tells them apart by the advertisers the token reaches, as `credentials test` lists them.
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    wrong = ("destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tt",
             "--set", "advertiser_id=7200000000000000009", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}")  # fmt: skip

    line = cli(*wrong).one_line_error(
        "the token of credential tt does not reach advertiser 7200000000000000009; it reaches "
        f"{DEFAULT_ADVERTISER_ID} (Emulator Store Co), {SECOND_ADVERTISER_ID} (Emulator Outlet Co)",
        f"--set advertiser_id={DEFAULT_ADVERTISER_ID}",
    )

    assert "No permission" not in line and "admin or operator" not in line
    cli.ok(*wrong, "--no-test")
    code, steps = steps_of(cli)
    assert code == 1
    assert (
        steps["advertiser"][0] == "failed" and "does not reach advertiser 7200000000000000009" in steps["advertiser"][1]
    )
    assert "event set" not in steps

    # The fix it names works: update the destination to an advertiser the token reaches.
    cli.ok("destinations", "update", "stores", "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}")
    assert steps_of(cli)[0] == 0


def test_an_advertiser_the_token_reaches_without_a_writer_role_still_names_the_role(cli, tiktok_credential):
    # The Operator of the default advertiser only: the second advertiser is not reached, the role is not the issue.
    cli.ok("credentials", "authorize", "tt", input=f"{OPERATOR_AUTH_CODE}\n")
    cli.ok(*ADD[:-1], f"advertiser_id={SECOND_ADVERTISER_ID}", "--no-test")

    _, steps = steps_of(cli)

    assert steps["advertiser"][0] == "failed"
    assert (
        f"does not reach advertiser {SECOND_ADVERTISER_ID}; it reaches {DEFAULT_ADVERTISER_ID}"
        in steps["advertiser"][1]
    )


def test_a_token_that_expires_right_after_its_refresh_fails_the_step_saying_how_to_reauthorize(
    cli, tiktok_credential, emulator
):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    cli.ok(*ADD, "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}", "--no-test")
    emulator.state.patch_faults({"access_token_ttl": 0})  # every token, new ones too, has expired already

    code, steps = steps_of(cli)

    assert code == 1
    verdict, detail = steps["advertiser"]
    assert verdict == "failed"
    assert "expired even right after a refresh" in detail
    assert "re-authorize with: offramp credentials authorize tt" in detail


class _DyingProxy:
    """A loopback proxy to the emulator that stops listening once armed and it has answered a path: later calls of
    the same test find the connection refused, as when TikTok's host goes away in the middle of a test."""

    def __init__(self, target: str) -> None:
        import http.server
        import threading

        import httpx

        proxy = self
        self.last_path: str | None = None
        self._stopping = threading.Lock()
        self._stopped = False

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.request(self.command, f"{target}{self.path}", content=body, headers=headers)
                if proxy.last_path is not None and proxy.last_path in self.path:
                    proxy.stop()  # before answering: the next call finds the port closed (handlers run in threads)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward  # noqa: N815 - http.server's names

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        with self._stopping:
            if not self._stopped:
                self._stopped = True
                self._server.shutdown()
                self._server.server_close()


@pytest.mark.parametrize(
    ("last_path", "step", "fix"),
    [("advertiser/info/", "event set", []), ("offline/get/", "auto tracking", ["--fix"])],
)
def test_tiktok_going_away_during_the_test_fails_the_step_with_one_clear_line(
    cli, initialized, emulator, monkeypatch, last_path, step, fix
):
    proxy = _DyingProxy(emulator.base_url)
    monkeypatch.setenv("PROXIED_SECRET", DEFAULT_APP_SECRET)
    cli.ok("credentials", "add", "tt", "--type", "tiktok-offline-events", "--set", f"app_id={DEFAULT_APP_ID}",
           "--set", "app_secret=env:PROXIED_SECRET", "--set", f"api_base_url={proxy.base_url}")  # fmt: skip
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    cli.ok(*ADD, "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}", "--set", "auto_tracking=true", "--no-test")
    proxy.last_path = last_path  # the calls after this one find nobody listening

    try:
        result = cli("destinations", "test", "stores", "--json", *fix)
    finally:
        proxy.stop()

    assert result.exit_code == 1 and "Traceback" not in result.output and "unexpected" not in result.output
    steps = {item["name"]: (item["verdict"], item["detail"]) for item in json.loads(result.stdout)["steps"]}
    assert list(steps)[-1] == step
    verdict, detail = steps[step]
    assert verdict == "failed"
    assert f"TikTok unreachable (connection refused) at {proxy.base_url}" in detail
    assert "api_base_url" in detail


def test_in_a_sandbox_the_commands_the_test_names_act_on_the_sandbox(cli, initialized, emulator, monkeypatch):
    # The CLI fixture checks every hint printed: each command named carries -w sandbox, so pasted it acts there.
    monkeypatch.setenv("SANDBOX_SECRET", DEFAULT_APP_SECRET)
    cli.ok("workspaces", "add", "sandbox")
    cli.ok("credentials", "add", "tt", "-w", "sandbox", "--type", "tiktok-offline-events",
           "--set", f"app_id={DEFAULT_APP_ID}", "--set", "app_secret=env:SANDBOX_SECRET",
           "--set", f"api_base_url={emulator.base_url}",
           "--set", f"auth_url={emulator.base_url}/portal/auth")  # fmt: skip
    cli.ok(*ADD, "-w", "sandbox", "--no-test")
    unauthorized = cli("destinations", "test", "stores", "-w", "sandbox")
    assert "holds no token yet; authorize it with: offramp credentials authorize tt -w sandbox" in unauthorized.stdout
    cli.ok("credentials", "authorize", "tt", "-w", "sandbox", input=f"{ADMIN_AUTH_CODE}\n")

    no_set = cli("destinations", "test", "stores", "-w", "sandbox")
    assert "`offramp destinations ensure-event-set stores -w sandbox`" in no_set.stdout

    cli.ok("destinations", "update", "stores", "-w", "sandbox", "--no-test",
           "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}", "--set", "auto_tracking=true")  # fmt: skip
    mismatch = cli.ok("destinations", "test", "stores", "-w", "sandbox")
    assert "`offramp destinations test stores --fix -w sandbox`" in mismatch.stdout
