"""A third-party plugin, as an author publishes it, works in a fresh install of offramp like a built-in type.

``tests/fixtures/plugin_dists/offramp-acme`` is a real distribution with its own package, written only against
``offramp.core`` and ``offramp.core.testing`` (docs/plugin-author-guide.md walks through it). offramp is built as a
wheel from a copy of this checkout and installed with the plugin into a fresh venv that cannot see the checkout, as
a user would install both; then the plugin registers, passes its own conformance tests under that venv's pytest, and
runs through ``offramp run`` to a loopback receiver this test starts.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_wheel import _NOT_SOURCE, REPO, _clean_env, _run

pytestmark = pytest.mark.slow

ACME = REPO / "tests" / "fixtures" / "plugin_dists" / "offramp-acme"
TOKEN = "acme-live-3f9b27c41d"


@dataclass(frozen=True)
class AcmeInstall:
    """offramp's wheel and the acme distribution installed together in a clean venv."""

    venv: Path
    acme_source: Path
    outside: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def offramp(self, home: Path, *args: str) -> str:
        """Run `offramp ARGS` from the venv against the store in ``home``; assert it succeeds; its stdout."""
        env = _clean_env(OFFRAMP_HOME=str(home))
        result = _run([self.venv / "bin" / "offramp", *args], cwd=self.outside, env=env)
        assert TOKEN not in result.stdout + result.stderr, f"offramp {' '.join(args)} printed the token"
        return result.stdout


@pytest.fixture(scope="module")
def acme_install(tmp_path_factory: pytest.TempPathFactory) -> AcmeInstall:
    root = tmp_path_factory.mktemp("third_party")
    # Both are built from copies: pip builds a local folder in place, and other tests use the checkout.
    source = root / "offramp-source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    acme_source = root / "offramp-acme"
    shutil.copytree(ACME, acme_source, ignore=_NOT_SOURCE)
    wheels = root / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", wheels, source, acme_source], cwd=root)
    (offramp_wheel,) = wheels.glob("offramp-*.whl")
    (acme_wheel,) = wheels.glob("offramp_acme-*.whl")

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    # As tests/packaging/test_wheel.py installs offramp: the dev venv's pip, the configured indexes, no compiling.
    # The acme wheel's [test] extra brings pytest, for the plugin's own tests.
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", python, "install", "--no-compile"]
    _run([*install, offramp_wheel, f"{acme_wheel}[test]"], cwd=root)
    outside = root / "outside"
    outside.mkdir()
    return AcmeInstall(venv=venv, acme_source=acme_source, outside=outside)


@dataclass
class Received:
    """What the loopback Acme received: every request's Authorization header and body."""

    authorizations: list[str | None] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    def event_ids(self) -> list[str]:
        return [event["id"] for batch in self.batches for event in batch["events"]]


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A loopback Acme API (independent of the plugin's own test receiver): accepts what the bearer token sends,
    refuses the ids in ``refuse``."""
    received = Received()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            authorization = self.headers.get("Authorization")
            with lock:
                received.authorizations.append(authorization)
                if authorization == f"Bearer {TOKEN}":
                    received.batches.append(body)
            ids = [event["id"] for event in body["events"]]
            answer = {
                "accepted": [i for i in ids if i not in received.refuse],
                "refused": [
                    {"id": i, "code": "invalid_event", "message": "refused"} for i in ids if i in received.refuse
                ],
            }
            status = 200 if authorization == f"Bearer {TOKEN}" else 401
            payload = json.dumps(answer if status == 200 else {"error": "invalid token"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/events", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_plugin_is_listed_as_installed(acme_install: AcmeInstall, offramp_home: Path) -> None:
    listed = json.loads(acme_install.offramp(offramp_home, "plugins", "list", "--json"))
    acme = next(p for p in listed if p["name"] == "acme")
    assert (acme["kind"], acme["status"], acme["distribution"], acme["version"]) == (
        "destination",
        "ok",
        "offramp-acme",
        "0.3.0",
    )
    assert acme["credential_types"] == ["static-token"]
    assert not [p for p in listed if p["status"] != "ok"], "a plugin is broken in a clean install"
    shown = acme_install.offramp(offramp_home, "plugins", "show", "acme")
    assert "channel" in shown and "batch_size" in shown


def test_the_plugin_passes_its_own_conformance_tests(acme_install: AcmeInstall) -> None:
    """The plugin's tests (offramp's conformance suite over its loopback Acme) pass where a user installed it."""
    result = _run(
        [acme_install.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", acme_install.acme_source / "tests"],
        cwd=acme_install.acme_source,
    )
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in .*", last), result.stdout


def test_offramp_runs_an_orchestration_through_the_plugin(
    acme_install: AcmeInstall, offramp_home: Path, receiver: tuple[str, Received]
) -> None:
    url, received = receiver
    home = offramp_home
    acme_install.offramp(home, "init")
    acme_install.offramp(home, "credentials", "add", "acme-token", "--type", "static-token", "--set", f"token={TOKEN}")
    # Added with its connection test (the plugin's check_connection): an empty batch reaches the receiver.
    acme_install.offramp(
        home, "destinations", "add", "shop", "--type", "acme", "--credential", "acme-token",
        "--set", f"url={url}", "--set", "batch_size=7",
    )  # fmt: skip
    assert received.event_ids() == []
    # 30 rows: every tenth has no event_id (rejected by the preparer), and Acme refuses order-7 (failed).
    sql = (
        "SELECT CASE WHEN i % 10 = 0 THEN NULL ELSE 'order-' || i END AS event_id, "
        "'c' || i || '@example.com' AS email, i * 1.5 AS value FROM range(1, 31) AS t(i) ORDER BY i"
    )
    acme_install.offramp(
        home, "orchestrations", "add", "orders", "--destination", "shop", "--sql", sql, "--option", "channel=store"
    )
    received.refuse = {"order-7"}

    preview = json.loads(acme_install.offramp(home, "run", "orders", "--dry-run", "--json"))
    assert received.event_ids() == [], "a dry run reached Acme"
    assert preview["rows"]["queried"] == 30

    summary = json.loads(acme_install.offramp(home, "run", "orders", "--json"))
    expected = [f"order-{i}" for i in range(1, 31) if i % 10]
    assert Counter(received.event_ids()) == Counter(expected), "not every row reached Acme exactly once"
    # The connection test's empty batch, outside a run, went with the run options' default (web).
    channels = {batch["channel"] for batch in received.batches if batch["events"]}
    assert channels == {"store"}, "the orchestration's run option did not reach the sender"
    assert max(len(batch["events"]) for batch in received.batches) <= 7
    assert set(received.authorizations) == {f"Bearer {TOKEN}"}
    assert summary["counts_add_up"] is True
    counts = {key: summary["rows"][key] for key in ("queried", "sent", "rejected", "failed", "skipped")}
    assert counts == {"queried": 30, "sent": 26, "rejected": 3, "failed": 1, "skipped": 0}

    # The destination's action and connection test, through the generic commands.
    assert "Acme answered in" in acme_install.offramp(home, "destinations", "ping", "shop")
    assert "Acme answered in" in acme_install.offramp(home, "destinations", "action", "shop", "ping")
    tested = acme_install.offramp(home, "destinations", "test", "shop")
    assert "endpoint" in tested
    assert Counter(received.event_ids()) == Counter(expected), "an action or a test delivered events"
