"""The TikTok sender over real HTTP on loopback, against the emulator, with a real stored credential.

Each test stores a `tiktok-offline-events` credential pointed at the emulator in a real plugin workspace
(``offramp.core.testing.PluginWorkspace``), authorizes it with one of the seeded auth codes through the credential
type's ``complete_authorization`` hook (what `offramp credentials authorize` calls), adds a destination and opens its
sender through the destination type's ``open_sender`` hook with the context core builds, as a run does.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import logging
import random
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest
from emulator_client import Api

from offramp.core import (
    ConfigError,
    CredentialHandle,
    DeliveryResult,
    DestinationError,
    PreparedEvent,
    Terminal,
    Transient,
)
from offramp.core.testing import PluginWorkspace
from offramp.credentials.tiktok_session import HOOKS as CREDENTIAL_HOOKS
from offramp.credentials.tiktok_session import TikTokCredentialSession
from offramp.plugins.tiktok.destination import HOOKS
from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    ANALYST_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    ManualClock,
    run_emulator,
)
from offramp.plugins.tiktok.sender import TikTokSender, TikTokTerminalSendError

TRACK = "event/track/"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event_dict(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid offline Purchase (docs/tiktok-api-facts.md, "Request body"); keyword arguments replace top-level
    keys."""
    event: dict[str, Any] = {
        "event": "Purchase",
        "event_time": 1_795_300_000 + n,
        "event_id": f"order-{n}",
        "user": {"email": [sha256(f"c{n}@example.com")], "phone": [sha256(f"+1415555{n:04d}")]},
        "properties": {
            "currency": "USD",
            "value": 19.5,
            "order_id": str(n),
            "content_type": "product",
            "contents": [{"content_id": f"SKU-{n}", "price": 9.75, "quantity": 2}],
        },
    }
    event.update(overrides)
    return event


def prepared(n: int, **overrides: Any) -> PreparedEvent:
    return PreparedEvent(event_id=f"order-{n}", body=orjson.dumps(event_dict(n, **overrides)))


def batch(count: int, start: int = 0) -> list[PreparedEvent]:
    return [prepared(n) for n in range(start, start + count)]


def received_bodies(api: Api) -> list[bytes]:
    """The request bodies the emulator accepted, as the bytes it received (oldest first)."""
    with api.state.lock:
        return [received.raw for received in api.state.log._batches]


def received_ids(api: Api) -> list[str]:
    return [item["payload"]["event_id"] for item in api.state.events()]


def track_requests(api: Api) -> int:
    return int(api.state.statistics()["requests_by_path"].get(TRACK, 0))


def accounted(events: Sequence[PreparedEvent], result: DeliveryResult) -> None:
    """Every event handed in is in exactly one of sent, failed and unsent."""
    outcomes = [*result.sent, *(f.event_id for f in result.failed), *(e.event_id for e in result.unsent)]
    assert sorted(outcomes) == sorted(e.event_id for e in events)


def tokens(credential: CredentialHandle) -> dict[str, str | None]:
    """The credential's tokens as offramp stored them, decrypted."""
    settings = credential.read().settings
    return {
        name: secret.get_secret_value() if secret is not None else None
        for name, secret in (("access_token", settings.access_token), ("refresh_token", settings.refresh_token))
    }


def terminal_error(result: DeliveryResult, events: Sequence[PreparedEvent]) -> TikTokTerminalSendError:
    """The terminal error a sender returned with nothing of ``events`` sent: everything is unsent."""
    assert isinstance(result.error, TikTokTerminalSendError), result.error
    assert result.unsent == list(events) and not result.sent and not result.failed
    return result.error


OpenSender = Callable[..., TikTokSender]


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[tuple[Api, ManualClock]]:
    """One emulator for the module (stopping a server takes a while), reset to its seed for each test."""
    clock = ManualClock()
    with run_emulator(clock=clock) as emulator, httpx.Client(base_url=emulator.base_url, timeout=10) as client:
        yield Api(emulator, client), clock


@pytest.fixture
def clock(shared_emulator: tuple[Api, ManualClock]) -> ManualClock:
    return shared_emulator[1]


@pytest.fixture
def api(shared_emulator: tuple[Api, ManualClock]) -> Api:
    shared = shared_emulator[0]
    shared.state.reset()  # events, counters, tokens, grants and faults back to the start; the clock moves on
    return shared


@pytest.fixture
def credential(plugin_workspace: PluginWorkspace, api: Api) -> CredentialHandle:
    """A credential `tt` of the emulator's app, stored but not authorized yet."""
    base = api.emulator.base_url
    settings = {"app_id": DEFAULT_APP_ID, "app_secret": DEFAULT_APP_SECRET, "api_base_url": base,
                "auth_url": f"{base}/portal/auth"}  # fmt: skip
    return plugin_workspace.add_credential("tt", "tiktok-offline-events", settings)


@pytest.fixture
def open_stores_sender(plugin_workspace: PluginWorkspace, credential: CredentialHandle) -> Iterator[OpenSender]:
    """``open_stores_sender(auth_code=..., options={...}, **settings)``: authorize `tt`, add destination `stores`
    with those settings and open its sender the way the runner does (orchestration options, flat, as in YAML)."""
    senders: list[TikTokSender] = []

    def open_(auth_code: str = ADMIN_AUTH_CODE, options: dict[str, Any] | None = None, **settings: Any) -> TikTokSender:
        assert CREDENTIAL_HOOKS.complete_authorization is not None
        CREDENTIAL_HOOKS.complete_authorization(credential, auth_code)
        values = {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_id": DEFAULT_EVENT_SET_ID, **settings}
        plugin_workspace.add_destination("stores", "tiktok-ads-offline-events", "tt", values)
        sender = HOOKS.open_sender(plugin_workspace.context("stores", options=options))
        assert isinstance(sender, TikTokSender)
        senders.append(sender)
        return sender

    yield open_
    for sender in senders:
        sender.close()


# -- the request --


def test_the_body_is_the_events_bytes_in_tiktoks_top_level(open_stores_sender: OpenSender, api: Api):
    sender = open_stores_sender(partner_name="offramp-tests", options={"test_event_code": "TEST42"})
    # One body written with spaces: bytes are passed through, never parsed and written again.
    events = [prepared(1), PreparedEvent("order-2", json.dumps(event_dict(2)).encode()), prepared(3)]

    preview = sender.preview(events)
    result = sender.send(events)

    assert result.sent == ["order-1", "order-2", "order-3"] and not result.failed and not result.unsent
    assert result.error is None
    [raw] = received_bodies(api)
    assert raw == preview  # a dry run shows exactly what is sent
    assert raw == (
        b'{"event_source":"offline","event_source_id":"' + DEFAULT_EVENT_SET_ID.encode() + b'",'
        b'"partner_name":"offramp-tests","test_event_code":"TEST42","data":['
        + b",".join(event.body for event in events)
        + b"]}"
    )
    parsed = orjson.loads(raw)
    assert list(parsed) == ["event_source", "event_source_id", "partner_name", "test_event_code", "data"]
    assert parsed["data"] == [orjson.loads(event.body) for event in events]
    [first, *_] = api.state.events()
    assert first["test_event_code"] == "TEST42"
    assert result.request_ids == [first["request_id"]]


def test_partner_name_and_test_event_code_are_left_out_when_not_set(open_stores_sender: OpenSender, api: Api):
    sender = open_stores_sender()

    assert sender.send(batch(2)).sent == ["order-0", "order-1"]

    [raw] = received_bodies(api)
    assert list(orjson.loads(raw)) == ["event_source", "event_source_id", "data"]
    assert api.state.events()[0]["test_event_code"] is None


def test_more_than_the_batch_size_is_a_callers_bug_and_an_empty_batch_sends_nothing(
    open_stores_sender: OpenSender, api: Api
):
    sender = open_stores_sender(batch_size=3)
    assert sender.max_batch_size == 3

    with pytest.raises(ValueError, match="at most 3 events"):
        sender.send(batch(4))
    assert sender.send([]) == DeliveryResult()
    assert track_requests(api) == 0


def test_a_destination_without_an_event_set_says_how_to_get_one(
    plugin_workspace: PluginWorkspace, credential: CredentialHandle
):
    plugin_workspace.add_destination(
        "stores", "tiktok-ads-offline-events", "tt", {"advertiser_id": DEFAULT_ADVERTISER_ID}
    )

    with pytest.raises(ConfigError) as caught:
        HOOKS.open_sender(plugin_workspace.context("stores"))

    assert "offramp destinations ensure-event-set stores" in str(caught.value)


def test_the_request_timeout_is_the_contexts(
    plugin_workspace: PluginWorkspace, open_stores_sender: OpenSender, credential: CredentialHandle
):
    open_stores_sender()  # authorizes the credential and adds `stores`
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts the connection; nobody answers
        port = silent.getsockname()[1]
        plugin_workspace.add_credential(
            "silent", "tiktok-offline-events",
            {"app_id": DEFAULT_APP_ID, "app_secret": DEFAULT_APP_SECRET, "api_base_url": f"http://127.0.0.1:{port}",
             "access_token": "not-sent-anywhere-else"},
        )  # fmt: skip
        values = {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_id": DEFAULT_EVENT_SET_ID}
        plugin_workspace.add_destination("quiet", "tiktok-ads-offline-events", "silent", values)
        with HOOKS.open_sender(plugin_workspace.context("quiet", timeout_seconds=0.1)) as sender:
            result = sender.send(batch(1))

    assert isinstance(result.error, Transient) and result.error.message == "TikTok unreachable (timed out)"


# -- invalid events --


def test_events_tiktok_refuses_are_isolated_with_its_message_and_the_others_sent_once(
    open_stores_sender: OpenSender, api: Api
):
    sender = open_stores_sender()
    events = batch(12)
    events[2] = prepared(2, event_id=1002)  # an integer event_id
    events[7] = prepared(7, event="Dance")  # not a standard event
    bad_item = event_dict(9)
    bad_item["properties"]["contents"][0]["content_id"] = 12345  # a number
    events[9] = PreparedEvent("order-9", orjson.dumps(bad_item))

    result = sender.send(events)

    accounted(events, result)
    assert {f.event_id: (f.code, f.message) for f in result.failed} == {
        "order-2": ("40002", "Invalid value for event_id: not a valid string."),
        "order-7": ("40002", "Invalid value for event: Dance is not a standard event (offline accepts those only)."),
        "order-9": ("40002", "Invalid value for content_id: not a valid string."),
    }
    good = [e.event_id for e in events if e.event_id not in {"order-2", "order-7", "order-9"}]
    assert sorted(result.sent) == sorted(good)
    assert sorted(received_ids(api)) == sorted(good)  # each exactly once
    assert not result.unsent and result.error is None


def test_one_poisoned_event_in_a_full_batch_is_found_in_few_requests(open_stores_sender: OpenSender, api: Api):
    sender = open_stores_sender()
    api.state.patch_faults({"poison": {"properties.order_id": "617"}})
    events = batch(1000)

    result = sender.send(events)

    assert [(f.event_id, f.code) for f in result.failed] == [("order-617", "40002")]
    assert "order_id" in result.failed[0].message
    assert len(result.sent) == 999 and len(set(received_ids(api))) == 999 == len(received_ids(api))
    assert track_requests(api) <= 2 * 10 + 1  # about two requests per halving


# -- transient answers --


def test_a_rate_limit_gives_every_event_back_with_a_transient_error_and_a_wait(
    open_stores_sender: OpenSender, api: Api
):
    sender = open_stores_sender()
    api.state.patch_faults({"fail": {40100: 1.0}})
    events = batch(5)

    result = sender.send(events)

    assert result.unsent == events and not result.sent and not result.failed
    assert isinstance(result.error, DestinationError) and isinstance(result.error, Transient)
    assert "40100" in str(result.error)
    assert result.retry_after_seconds == 1.0
    assert len(result.request_ids) == 1


def test_a_502_page_is_transient(open_stores_sender: OpenSender, api: Api):
    sender = open_stores_sender()
    api.state.patch_faults({"http_502": 1.0})

    result = sender.send(batch(3))

    assert len(result.unsent) == 3 and isinstance(result.error, Transient)
    assert result.error is not None and result.error.message == "TikTok answered 502"
    assert result.retry_after_seconds is not None and result.retry_after_seconds >= 1.0


def _seed_answering(pattern: str, fraction: float) -> int:
    """A fault seed whose draws fail exactly the requests marked ``x`` in ``pattern`` (``.`` passes)."""
    for seed in range(100_000):
        draws = random.Random(seed)
        if all((draws.random() < fraction) == (mark == "x") for mark in pattern):
            return seed
    raise AssertionError("no seed found")


def test_a_transient_answer_while_splitting_keeps_what_was_done_and_gives_the_rest_back(
    open_stores_sender: OpenSender, api: Api
):
    sender = open_stores_sender()
    # Event 1 is poisoned. Requests: [0-7] 40002, [0-3] 40002, [0,1] 40002, [0] ok, [1] 40002, then [2,3] 50000.
    seed = _seed_answering(".....x", 0.5)
    api.state.patch_faults({"poison": {"event_id": "order-1"}, "fail": {50000: 0.5}, "random_seed": seed})
    events = batch(8)

    result = sender.send(events)

    accounted(events, result)
    assert result.sent == ["order-0"]
    assert [f.event_id for f in result.failed] == ["order-1"]
    assert [e.event_id for e in result.unsent] == [f"order-{n}" for n in range(2, 8)]
    assert isinstance(result.error, Transient) and "50000" in str(result.error)
    assert result.retry_after_seconds == 5.0
    assert received_ids(api) == ["order-0"]


def test_a_host_that_cannot_be_reached_is_transient(open_stores_sender: OpenSender, credential: CredentialHandle):
    open_stores_sender()  # authorizes the credential
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    session = TikTokCredentialSession(credential)
    sender = TikTokSender(
        session, api_base_url=f"http://127.0.0.1:{closed}", event_source="offline", event_source_id=DEFAULT_EVENT_SET_ID
    )

    with sender:
        result = sender.send(batch(2))

    assert len(result.unsent) == 2 and isinstance(result.error, Transient)
    # Short, as the run prints it before "; retrying in 8 s, attempt 3 of 10"; the host is in the hint.
    assert result.error is not None and result.error.message == "TikTok unreachable (connection refused)"
    assert f"127.0.0.1:{closed} is reachable" in str(result.error.hint)


def test_a_timeout_is_transient(open_stores_sender: OpenSender, credential: CredentialHandle):
    open_stores_sender()  # authorizes the credential
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts the connection; nobody answers
        port = silent.getsockname()[1]
        sender = TikTokSender(
            TikTokCredentialSession(credential),
            api_base_url=f"http://127.0.0.1:{port}",
            event_source="offline",
            event_source_id=DEFAULT_EVENT_SET_ID,
            timeout_seconds=0.1,
        )
        with sender:
            result = sender.send(batch(2))

    assert len(result.unsent) == 2 and isinstance(result.error, Transient)
    assert result.error is not None and result.error.message == "TikTok unreachable (timed out)"


def test_plain_http_to_another_host_is_refused_before_any_token_leaves(credential: CredentialHandle):
    with pytest.raises(ConfigError, match="plain http"):
        TikTokSender(
            TikTokCredentialSession(credential),
            api_base_url="http://business-api.tiktok.com",
            event_source="offline",
            event_source_id=DEFAULT_EVENT_SET_ID,
        )


# -- tokens and permissions --


def test_an_expired_token_is_refreshed_once_and_the_batch_sent(
    open_stores_sender: OpenSender, api: Api, clock: ManualClock, credential: CredentialHandle
):
    sender = open_stores_sender()
    before = tokens(credential)
    clock.advance(2 * 86_400)  # TikTok's clock says the token expired; offramp's does not know yet

    result = sender.send(batch(3))

    assert len(result.sent) == 3 and result.error is None
    assert track_requests(api) == 2  # the refused one and the resent one
    after = tokens(credential)
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]
    [grant] = api.state.grants()
    assert after["refresh_token"] == grant["refresh_token"]
    assert grant["access_tokens_issued"] == 2


def test_threads_sharing_an_expired_token_refresh_it_once(open_stores_sender: OpenSender, api: Api, clock):
    sender = open_stores_sender()
    clock.advance(2 * 86_400)
    batches = [batch(10, start=10 * n) for n in range(8)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(sender.send, batches))

    assert sum(len(r.sent) for r in results) == 80 and all(r.error is None for r in results)
    assert sorted(received_ids(api)) == sorted(e.event_id for b in batches for e in b)
    assert api.state.grants()[0]["access_tokens_issued"] == 2  # one authorization, one refresh


def test_an_expired_token_right_after_its_refresh_is_terminal(open_stores_sender: OpenSender, api: Api):
    sender = open_stores_sender()
    api.state.patch_faults({"access_token_ttl": 0})  # every token, new ones too, has expired already
    events = batch(2)

    error = terminal_error(sender.send(events), events)

    assert isinstance(error, DestinationError) and isinstance(error, Terminal)
    assert not isinstance(error, Transient)
    assert "expired even right after a refresh" in error.message
    assert "offramp credentials authorize tt" in str(error)
    assert track_requests(api) == 2


def test_a_revoked_grant_is_terminal_says_how_to_reauthorize_and_later_sends_fail_fast(
    open_stores_sender: OpenSender, api: Api, credential: CredentialHandle
):
    sender = open_stores_sender()
    api.state.revoke_user("admin")
    events = batch(2)

    error = terminal_error(sender.send(events), events)  # nothing was sent before the refusal

    assert "offramp credentials authorize tt" in str(error)
    assert error.hint is not None and "offramp credentials authorize tt" in error.hint
    assert error.fields["code"] == 40105
    state = credential.read()
    assert state.status == "needs_reauth" and state.status_reason is not None and "40105" in state.status_reason
    requests = track_requests(api)
    again = terminal_error(sender.send(events), events)
    assert "offramp credentials authorize tt" in str(again)
    assert track_requests(api) == requests  # refused before any request


def test_an_analysts_authorization_is_terminal_naming_the_roles_it_needs(open_stores_sender: OpenSender, api: Api):
    sender = open_stores_sender(auth_code=ANALYST_AUTH_CODE)
    events = batch(2)

    error = terminal_error(sender.send(events), events)

    text = str(error)
    assert "40001" in text and "Operator or Admin" in text
    assert isinstance(error, Terminal) and received_ids(api) == []


@contextlib.contextmanager
def answering(*answers: dict[str, Any]) -> Iterator[str]:
    """A stand-in for TikTok on loopback that gives ``answers`` (envelopes) in turn; yields its base URL."""
    pending = list(answers)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            body = orjson.dumps({"request_id": "R", "data": {}, **pending.pop(0)})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


def test_a_terminal_answer_while_splitting_returns_what_was_done_and_the_rest_unsent(
    plugin_workspace: PluginWorkspace,
):
    invalid = {"code": 40002, "message": "Invalid value for event_id: not a valid string."}
    with answering(invalid, {"code": 0, "message": "OK"}, {"code": 40106, "message": "core user invalid"}) as base:
        handle = plugin_workspace.add_credential(
            "fixed", "tiktok-offline-events",
            {"app_id": DEFAULT_APP_ID, "app_secret": DEFAULT_APP_SECRET, "api_base_url": base,
             "access_token": "a-long-term-token"},
        )  # fmt: skip
        events = batch(2)
        with TikTokSender(
            TikTokCredentialSession(handle), api_base_url=base, event_source="offline",
            event_source_id=DEFAULT_EVENT_SET_ID,
        ) as sender:  # fmt: skip
            # [0, 1] is refused with 40002 and split: [0] is accepted, then [1] meets a terminal answer.
            result = sender.send(events)

    accounted(events, result)
    assert result.sent == ["order-0"] and not result.failed
    assert [e.event_id for e in result.unsent] == ["order-1"]
    assert isinstance(result.error, TikTokTerminalSendError) and not isinstance(result.error, Transient)
    assert result.error.fields["code"] == 40106 and result.error.hint is not None
    assert "advertiser_id" in result.error.hint


def test_an_event_set_tiktok_does_not_know_says_which_command_creates_it(plugin_workspace: PluginWorkspace):
    with answering({"code": 40007, "message": "event source does not exist"}) as base:
        plugin_workspace.add_credential(
            "fixed", "tiktok-offline-events",
            {"app_id": DEFAULT_APP_ID, "app_secret": DEFAULT_APP_SECRET, "api_base_url": base,
             "access_token": "a-long-term-token"},
        )  # fmt: skip
        settings = {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_id": DEFAULT_EVENT_SET_ID}
        plugin_workspace.add_destination("stores", "tiktok-ads-offline-events", "fixed", settings)
        sender = HOOKS.open_sender(plugin_workspace.context("stores"))
        with contextlib.closing(sender):
            result = sender.send(batch(1))

    assert isinstance(result.error, TikTokTerminalSendError) and result.error.fields["code"] == 40007
    assert result.error.hint is not None
    assert "create the set with `offramp destinations ensure-event-set stores`" in result.error.hint


def test_no_token_or_secret_appears_in_errors_reprs_or_debug_logs(
    open_stores_sender: OpenSender, api: Api, clock: ManualClock, caplog: pytest.LogCaptureFixture
):
    sender = open_stores_sender()
    caplog.set_level(logging.DEBUG)
    texts = [repr(sender)]
    sender.send(batch(2))
    clock.advance(2 * 86_400)
    sender.send(batch(2, start=2))  # refreshes after a 40102
    api.state.patch_faults({"fail": {40100: 1.0}})
    limited = sender.send(batch(2, start=4))
    texts += [str(limited.error), repr(limited.error), repr(limited)]
    api.state.patch_faults({"fail": {}})
    api.state.revoke_user("admin")
    for _ in range(2):  # refused by TikTok, then by the credential before any request
        error = sender.send(batch(2, start=6)).error
        assert isinstance(error, TikTokTerminalSendError)
        texts += [str(error), repr(error), repr(error.fields), str(error.__cause__)]

    text = "\n".join([*texts, caplog.text])
    assert "event/track" in caplog.text  # the debug log was captured, so the checks below mean something
    with api.state.lock:
        secrets = [*api.state.auth.access_tokens, *(g["refresh_token"] for g in api.state.grants())]
    assert len(secrets) >= 3
    for secret in [DEFAULT_APP_SECRET, *secrets]:
        assert secret not in text, f"a secret leaked: {secret[:4]}..."
