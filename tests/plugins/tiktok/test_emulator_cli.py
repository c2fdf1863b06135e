"""`offramp emulator tiktok`: a real server in a subprocess on a free port, its options, and its one-line errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from emulator_client import ACCESS_TOKEN, TRACK, make_event, track_body

from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    EmulatorConfig,
    start_emulator_process,
)

CUSTOM_SEED = """\
apps:
  - app_id: "7100000000000000042"
    secret: shop-secret
advertisers:
  - advertiser_id: "7200000000000000042"
    name: Shop
users:
  - name: owner
    core_user_id: "7400000000000000042"
    display_name: Owner
    email: owner@shop.invalid
    roles: {"7200000000000000042": OPERATOR}
event_sets:
  - event_set_id: "7300000000000000042"
    advertiser_id: "7200000000000000042"
    name: Tills
auth_codes:
  - code: shop-code
    user: owner
"""


def _token(client: httpx.Client, app_id: str, secret: str, code: str) -> str:
    answer = client.post(ACCESS_TOKEN, json={"app_id": app_id, "secret": secret, "auth_code": code}).json()
    assert answer["code"] == 0, answer
    return str(answer["data"]["access_token"])


def test_the_command_serves_the_emulator_in_a_subprocess_on_a_free_port():
    with start_emulator_process() as emulator:
        assert emulator.base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=emulator.base_url) as client:
            token = _token(client, DEFAULT_APP_ID, DEFAULT_APP_SECRET, ADMIN_AUTH_CODE)
            answer = client.post(TRACK, json=track_body([make_event()]), headers={"Access-Token": token}).json()
            assert answer["code"] == 0
            assert client.get("/_emulator/stats").json()["events_accepted"] == 1
            assert client.post("/open_api/v1.3/event/track", json={}).status_code == 404
    assert emulator.process.returncode is not None


def test_fault_options_reach_the_server():
    args = [
        "--no-refresh-tokens", "--token-ttl", "60", "--qps", "25", "--fail", "50000=0.1", "--fail", "40100=0.05",
        "--http-502", "0.01", "--http-503", "0.02", "--latency-ms", "3", "--jitter-ms", "4", "--slow", "0.01=2000",
        "--poison", "event_id=order-13", "--seed-random", "99",
    ]  # fmt: skip
    with start_emulator_process(args=args) as emulator, httpx.Client(base_url=emulator.base_url) as client:
        faults = client.get("/_emulator/faults").json()
        refresh = client.post("/open_api/v1.3/oauth2/refresh_token/", json={}).json()

    assert faults == {
        "qps": 25.0, "fail": {"40100": 0.05, "50000": 0.1}, "http_502": 0.01, "http_503": 0.02, "latency_ms": 3,
        "jitter_ms": 4, "slow_fraction": 0.01, "slow_ms": 2000, "access_token_ttl": 60,
        "poison": {"event_id": "order-13"}, "random_seed": 99, "paths": ["event/track/"],
    }  # fmt: skip
    assert refresh["code"] == 40008


def test_a_seed_file_gives_the_ids_and_codes_a_test_knows(tmp_path: Path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(CUSTOM_SEED)
    command = [sys.executable, "-m", "offramp.core.cli", "emulator", "tiktok", "--port", "0", "--state", str(seed)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("offramp emulator: TikTok Business API at http://127.0.0.1:")
        assert f"seed from {seed}" in line
        assert "shop-secret" not in line
        base_url = line.split(" at ", 1)[1].split()[0]
        with httpx.Client(base_url=base_url) as client:
            token = _token(client, "7100000000000000042", "shop-secret", "shop-code")
            body = track_body([make_event()], event_source_id="7300000000000000042")
            assert client.post(TRACK, json=body, headers={"Access-Token": token}).json()["code"] == 0
            # The default seed is not there.
            body = {"app_id": DEFAULT_APP_ID, "secret": DEFAULT_APP_SECRET, "auth_code": ADMIN_AUTH_CODE}
            assert client.post(ACCESS_TOKEN, json=body).json()["code"] == 40101
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert "Traceback" not in stderr
    assert "shop-secret" not in stderr


def test_a_whole_config_is_passed_to_the_subprocess_and_its_file_removed():
    config = EmulatorConfig(unknown_event_set_code=40007, error_field_style="path")

    with start_emulator_process(config) as emulator, httpx.Client(base_url=emulator.base_url) as client:
        (config_file,) = [path for path in emulator._cleanup if path.suffix == ".json"]
        assert config_file.exists()
        assert oct(config_file.stat().st_mode & 0o777) == "0o600"
        token = _token(client, DEFAULT_APP_ID, DEFAULT_APP_SECRET, ADMIN_AUTH_CODE)
        body = track_body([make_event()], event_source_id="7300000000000000999")
        assert client.post(TRACK, json=body, headers={"Access-Token": token}).json()["code"] == 40007
    assert not config_file.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--fail", "oops"], "--fail takes CODE=FRACTION"),
        (["--fail", "50000=lots"], "--fail: 'lots' is not a number"),
        (["--fail", "50000=0.7", "--fail", "50002=0.7"], "invalid fault options"),
        (["--fail", "12345=0.1"], "unknown codes [12345]"),
        (["--slow", "2000"], "--slow takes FRACTION=MS"),
        (["--poison", "event_id"], "--poison takes FIELD=VALUE"),
        (["--state", "missing.yaml"], "cannot read the seed file missing.yaml"),
        (["--config", "missing.json"], "cannot read the emulator config file missing.json"),
    ],
)
def test_a_bad_option_is_one_line_saying_what_to_do(cli, args, expected):
    line = cli("emulator", "tiktok", *args).one_line_error()

    assert expected in line
    assert " - " in line


def test_an_invalid_seed_names_what_is_wrong(cli, tmp_path: Path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(CUSTOM_SEED.replace("user: owner", "user: nobody"))

    line = cli("emulator", "tiktok", "--state", str(seed)).one_line_error()

    assert "auth code 'shop-code' names unknown user 'nobody'" in line


def test_a_taken_port_is_one_line(cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        line = cli("emulator", "tiktok", "--port", str(port)).one_line_error()

    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "--port 0" in line


def test_the_cli_and_plugin_listing_do_not_import_the_web_stack():
    code = (
        "import sys, offramp.core.cli.app as app; from offramp.core.registry import discover; discover(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'uvicorn', 'starlette', 'fastapi', 'msgspec'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert json.loads(result.stdout.replace("'", '"')) == []


def test_the_emulator_package_exports_a_small_sorted_surface():
    import importlib
    import pkgutil

    import offramp.plugins.tiktok.emulator as package

    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        names = module.__all__
        assert names == sorted(names), info.name
        assert all(hasattr(module, name) for name in names), info.name
    assert {"EmulatorConfig", "Faults", "Seed", "DEFAULT_SEED", "create_app", "run_emulator"} <= set(package.__all__)
    assert "start_emulator_process" in package.__all__
