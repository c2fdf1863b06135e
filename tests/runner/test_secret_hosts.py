"""A secret goes only to the host it was issued for (issue 11, item 2).

A config change of only ``api_base_url`` was shown as a harmless ``~ credential tt (api_base_url)`` and made the
next run send the access token (and after a 40102 the app secret and the refresh token) to the new host. Now a
change of a credential type's endpoint fields (``CredentialType.endpoint_fields``; TikTok: ``api_base_url``,
``auth_url``) is refused unless the app secret is given again; given again, the stored tokens are dropped, so the
credential is authorized again at its new host. A listener on another loopback port records every byte sent to it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Emulator, set_up, write_orders
from test_bad_config import snapshot

from offramp.plugins.tiktok.emulator import ADMIN_AUTH_CODE, DEFAULT_APP_SECRET, run_emulator


class Recorder:
    """An HTTP server on loopback that answers like a TikTok refusing the token and records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorded.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
                body = json.dumps({"code": 40105, "message": "recorder", "data": {}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _record

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    running = Recorder()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def configured(cli: Any, store: str, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credential `tt` authorized at the emulator, destination `stores`, orchestration `orders`; the app secret's
    variable is unset afterwards, as on a machine that applies configuration without holding the secrets."""
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    write_orders(tmp_path / "orders.duckdb", 10)
    cli.ok("init")
    set_up(cli, emulator, f"duckdb:{tmp_path / 'orders.duckdb'}")
    monkeypatch.delenv("EMULATOR_APP_SECRET")
    return tmp_path


def moved(cli: Any, folder: Path, **settings: str) -> str:
    """The export with the credential's settings changed, written to a file."""
    document = yaml.safe_load(cli.ok("export").stdout)
    document["credentials"][0]["settings"].update(settings)
    path = folder / "moved.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


@pytest.mark.parametrize("field", ["api_base_url", "auth_url"])
def test_moving_a_credential_without_its_secrets_is_refused_and_nothing_reaches_the_new_host(
    cli: Any, configured: Path, emulator: Emulator, recorder: Recorder, field: str
) -> None:
    path = moved(cli, configured, **{field: recorder.base_url})
    before = snapshot()
    for dry_run in (["--dry-run"], []):
        cli("apply", "-f", path, *dry_run).one_line_error(
            f"credential 'tt': {field} changes where its secrets are sent, and app_secret was not given again",
            "give app_secret again", "offramp credentials authorize tt",
        )  # fmt: skip
    assert snapshot() == before

    result = cli("run", "orders")
    assert result.exit_code == 0, result.output
    assert emulator.accepted_ids()  # the events went where the credential was issued
    assert recorder.requests == []  # and not one request reached the new host


def test_moving_a_credential_with_its_secrets_given_again_needs_a_new_authorization_there(
    cli: Any, configured: Path, emulator: Emulator, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_emulator() as other:
        path = moved(cli, configured, api_base_url=other.base_url)
        monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)  # the app secret, given again
        plan = cli.ok("apply", "-f", path, "--dry-run").stdout
        assert "~ credential tt (api_base_url: secrets' destination changes; access_token, refresh_token)" in plan
        cli.ok("apply", "-f", path)
        shown = json.loads(cli.ok("credentials", "show", "tt", "--json").stdout)
        assert shown["status"] == "needs_authorization"
        assert shown["secrets"]["access_token"] == shown["secrets"]["refresh_token"] == "not set"

        # No token issued by the first host is left to send anywhere: the run is refused before it sends.
        refused = cli("run", "orders")
        assert refused.exit_code != 0 and "offramp credentials authorize tt" in refused.output
        assert list(other.state.events()) == [] and emulator.accepted_ids() == []

        cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
        assert cli("run", "orders").exit_code == 0
        assert [e for e in other.state.events() if e["status"] == "accepted"]  # sent with the new host's token
        assert emulator.accepted_ids() == []
    assert recorder.requests == []


def test_a_harmless_change_is_not_shown_as_a_move(cli: Any, configured: Path) -> None:
    path = moved(cli, configured, app_id="7100000000000000002")
    plan = cli.ok("apply", "-f", path, "--dry-run").stdout
    assert "~ credential tt (app_id)" in plan and "destination changes" not in plan


def test_a_destination_cannot_send_the_token_elsewhere(cli: Any, configured: Path, recorder: Recorder) -> None:
    """The TikTok sender takes its host from the credential only; a destination has no host setting to change."""
    before = snapshot()
    cli(
        "destinations", "add", "elsewhere", "--type", "tiktok-ads-offline-events", "--credential", "tt",
        "--set", "advertiser_id=1", "--set", f"api_base_url={recorder.base_url}",
    ).one_line_error("api_base_url")  # fmt: skip
    assert snapshot() == before
    assert recorder.requests == []
