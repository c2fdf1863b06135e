"""What users of the webhook destination depend on, over real HTTP to a loopback receiver: the body and its
signature, hashed identifiers, how each answer is classified, the settings that are refused, the connection test."""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest
from webhook_receiver import Answer, Receiver, running, verify

from offramp.core import ConfigError, DestinationError, PreparedEvent, Terminal, Transient
from offramp.core.testing import PluginWorkspace
from offramp.plugins.webhook import DESTINATION_TYPE
from offramp.plugins.webhook.runtime import (
    HOOKS,
    UNENCODABLE_VALUE,
    WebhookSender,
    open_sender,
    retry_after_seconds,
)

SECRET = "another-secret-9c41d7"
TOKEN = "tok-3f9a1c77e2"


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[PluginWorkspace]:
    with PluginWorkspace(tmp_path / "store") as opened:
        opened.add_credential("signing", "hmac-secret", {"secret": SECRET})
        opened.add_credential("token", "static-token", {"token": TOKEN})
        yield opened


@pytest.fixture
def signed() -> Iterator[Receiver]:
    with running(Receiver(secret=SECRET)) as served:
        yield served


_opened: list[WebhookSender] = []


@pytest.fixture(autouse=True)
def _close_senders() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def _sender(workspace: PluginWorkspace, url: str, credential: str = "signing", **settings: object) -> WebhookSender:
    workspace.add_destination("hooks", "webhook", credential, {"url": url, **settings})
    sender = open_sender(workspace.context("hooks", timeout_seconds=2.0))
    _opened.append(sender)
    return sender


def _events(count: int) -> list[PreparedEvent]:
    return [
        PreparedEvent(f"e{number}", orjson.dumps({"event_id": f"e{number}", "n": number})) for number in range(count)
    ]


def test_the_body_is_the_preview_and_its_signature_verifies(workspace: PluginWorkspace, signed: Receiver) -> None:
    sender = _sender(workspace, signed.url, headers='{"X-Tenant": "shop-1"}')
    events = _events(3)
    result = sender.send(events)
    assert result.sent == ["e0", "e1", "e2"] and result.error is None
    (request,) = signed.requests
    assert request.body == sender.preview(events) == b'{"events":[' + b",".join(e.body for e in events) + b"]}"
    headers = request.headers
    assert verify(SECRET.encode(), request.body, headers["x-offramp-timestamp"], headers["x-offramp-signature"])
    assert headers["x-tenant"] == "shop-1" and headers["content-type"] == "application/json"
    assert "authorization" not in headers
    # The timestamp is signed: the same body with another timestamp does not verify (no replays).
    later = str(int(headers["x-offramp-timestamp"]) + 1)
    assert not verify(SECRET.encode(), request.body, later, headers["x-offramp-signature"])


def test_a_static_token_goes_as_a_bearer_header_without_a_signature(workspace: PluginWorkspace) -> None:
    with running(Receiver(token=TOKEN)) as receiver:
        sender = _sender(workspace, receiver.url, credential="token")
        assert sender.send(_events(2)).sent == ["e0", "e1"]
        assert "x-offramp-signature" not in receiver.requests[0].headers


def test_columns_pass_through_renamed_and_identifiers_hashed(workspace: PluginWorkspace) -> None:
    workspace.add_destination(
        "hooks", "webhook", "signing",
        {"url": "https://hooks.example.com/in", "hash_columns": "email,phone", "rename": '{"order_id": "id"}',
         "event_id_column": "order_id"},
    )  # fmt: skip
    preparer = HOOKS.open_preparer(workspace.context("hooks", options={"timezone": "Europe/Paris"}))
    table = pa.table(
        {
            "order_id": ["A-1", "A-2"],
            "email": ["  Jane.Doe@Example.COM ", "   "],
            "phone": [33612345678, None],
            "total": [12.5, 3.0],
            "at": [datetime(2026, 6, 1, 12, 0), None],
            "at_utc": pa.array([None, datetime(2026, 6, 1, 12, 0)], pa.timestamp("us", "UTC")),
        }
    )
    prepared = preparer.prepare(table.to_batches()[0])
    first, second = (orjson.loads(event.body) for event in prepared.events)
    assert [event.event_id for event in prepared.events] == ["A-1", "A-2"]
    assert first == {
        "id": "A-1",
        "email": hashlib.sha256(b"jane.doe@example.com").hexdigest(),
        "phone": hashlib.sha256(b"33612345678").hexdigest(),
        "total": 12.5,
        "at": "2026-06-01T12:00:00+02:00",  # a naive timestamp is in the orchestration's timezone
        "at_utc": None,
    }
    assert second["email"] is None  # blank is absent, not hash("")
    assert second["at_utc"] == "2026-06-01T12:00:00+00:00"  # one with a zone keeps it


def test_a_hashed_column_missing_from_the_query_stops_instead_of_sending_it_in_clear(
    workspace: PluginWorkspace,
) -> None:
    workspace.add_destination(
        "hooks", "webhook", "signing", {"url": "https://h.example.com", "hash_columns": ["email"]}
    )
    preparer = HOOKS.open_preparer(workspace.context("hooks"))
    table = pa.table({"event_id": ["1"], "Email": ["jane@example.com"]})
    with pytest.raises(ConfigError, match="hash_columns or rename name columns the query does not have: email"):
        preparer.prepare(table.to_batches()[0])


def test_a_rate_limit_is_transient_with_the_advised_wait(workspace: PluginWorkspace, signed: Receiver) -> None:
    sender = _sender(workspace, signed.url)
    signed.script(Answer(429, {"Retry-After": "7"}))
    result = sender.send(_events(2))
    assert isinstance(result.error, Transient) and result.retry_after_seconds == 7
    assert [event.event_id for event in result.unsent] == ["e0", "e1"] and not result.sent
    assert sender.send(result.unsent).sent == ["e0", "e1"]


@pytest.mark.parametrize("status", [408, 500, 502, 503])
def test_server_errors_are_transient(workspace: PluginWorkspace, signed: Receiver, status: int) -> None:
    signed.script(Answer(status))
    result = _sender(workspace, signed.url).send(_events(1))
    assert isinstance(result.error, Transient) and len(result.unsent) == 1 and result.retry_after_seconds is None


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = time.time()
    assert retry_after_seconds("12", now) == 12
    in_30 = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert 28 <= (retry_after_seconds(in_30, now) or 0) <= 30
    assert retry_after_seconds("0", now) == 0 and retry_after_seconds(" 5 ", now) == 5
    # A date already past advises nothing: the runner's backoff decides, rather than an immediate resend.
    assert retry_after_seconds("Wed, 01 Jan 2020 00:00:00 GMT", now) is None
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None
    assert retry_after_seconds("86400", now) == 900
    # RFC 9110 delay-seconds is digits only: anything else float() would read is ignored.
    for garbled in ("-5", "nan", "inf", "1e3", "1_000", "2.5", "+3", "\u0663"):
        assert retry_after_seconds(garbled, now) is None, garbled


def test_a_400_fails_the_batch_without_echoing_the_answer(workspace: PluginWorkspace, signed: Receiver) -> None:
    signed.fail_batches_with("e1")
    result = _sender(workspace, signed.url).send(_events(3))
    assert not result.sent and not result.unsent and result.error is None
    assert [(failed.event_id, failed.code) for failed in result.failed] == [(e, "HTTP 400") for e in ("e0", "e1", "e2")]
    assert {failed.message for failed in result.failed} == {"the receiver refused the batch (HTTP 400)"}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"error": "jane.doe@example.com: unknown customer", "code": "unknown_customer"},
         "the receiver refused the batch (HTTP 400, code unknown_customer)"),
        ({"error": "bad", "code": "jane.doe@example.com is unknown"}, "the receiver refused the batch (HTTP 400)"),
        ({"code": "x" * 65}, "the receiver refused the batch (HTTP 400)"),
    ],
)  # fmt: skip
def test_a_refused_batch_keeps_only_the_status_and_a_machine_code(
    workspace: PluginWorkspace, signed: Receiver, answer: dict[str, str], message: str
) -> None:
    # The message is copied to every event's ledger row: a receiver's free text (which may quote personal data)
    # must never be.
    signed.script(Answer(400, body=orjson.dumps(answer)))
    result = _sender(workspace, signed.url).send(_events(2))
    assert [failed.message for failed in result.failed] == [message, message]


def test_a_secret_the_receiver_echoes_is_never_recorded(workspace: PluginWorkspace) -> None:
    echoed = {
        "failed": [
            # Long enough that cutting the message to a line would split the token, were it cut before scrubbing.
            {"event_id": "e0", "code": TOKEN, "message": "x" * 100 + "  got Authorization: Bearer " + TOKEN},
            {"event_id": "e1", "code": "duplicate", "message": f"token\n{TOKEN}\tis not allowed here"},
        ]
    }
    with running(Receiver(token=TOKEN)) as receiver:
        receiver.script(
            Answer(200, body=orjson.dumps(echoed)),
            Answer(400, body=orjson.dumps({"code": TOKEN})),
            Answer(400, body=orjson.dumps({"code": TOKEN[:10]})),  # a piece of it
        )
        sender = _sender(workspace, receiver.url, credential="token")
        accepted = sender.send(_events(2))
        refused = sender.send(_events(1)).failed + sender.send(_events(1)).failed
    assert [(failed.code, "[secret]" in failed.message) for failed in accepted.failed] == [
        ("refused", False),  # the token was cut away with the end of the long message: no piece of it is left
        ("duplicate", True),
    ]
    assert [failed.message for failed in refused] == ["the receiver refused the batch (HTTP 400)"] * 2
    recorded = [part for failed in accepted.failed + refused for part in (failed.code, failed.message)]
    assert recorded and not any(TOKEN[:6] in part for part in recorded)


def test_an_endpoint_with_a_trailing_slash_gets_the_events(workspace: PluginWorkspace) -> None:
    with running(Receiver(secret=SECRET), path="/hook/") as receiver:
        assert receiver.url.endswith("/hook/")
        result = _sender(workspace, receiver.url).send(_events(2))
        assert result.sent == ["e0", "e1"] and [request.path for request in receiver.requests] == ["/hook/"]
    settings = DESTINATION_TYPE.settings.model_validate({"url": " https://hooks.example.com/in/?a=1 "})
    assert settings.url == "https://hooks.example.com/in/?a=1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "caf\u00e9-token-value", "bell\x07char"])
def test_a_token_a_header_cannot_carry_is_a_clear_configuration_error(
    workspace: PluginWorkspace, signed: Receiver, token: str
) -> None:
    workspace.add_credential("odd", "static-token", {"token": token})
    workspace.add_destination("hooks", "webhook", "odd", {"url": signed.url})
    with pytest.raises(ConfigError, match="token of credential 'odd' holds a character a request header cannot"):
        open_sender(workspace.context("hooks"))
    steps = HOOKS.check_connection(workspace.context("hooks"), False)  # type: ignore[misc]
    assert [(step.name, step.verdict) for step in steps] == [("credential", "failed"), ("receiver", "skipped")]
    assert token not in steps[0].detail and signed.requests == []


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_credential_stops_the_run_with_a_hint(
    workspace: PluginWorkspace, signed: Receiver, status: int
) -> None:
    signed.script(Answer(status))
    with pytest.raises(DestinationError) as raised:
        _sender(workspace, signed.url).send(_events(1))
    assert isinstance(raised.value, Terminal) and "signing" in raised.value.message
    assert "give credential 'signing' the receiver's secret" in (raised.value.hint or "")


def test_a_wrong_secret_is_refused_by_the_receiver(workspace: PluginWorkspace) -> None:
    with running(Receiver(secret="the-receivers-own-secret")) as receiver:
        with pytest.raises(DestinationError, match="HTTP 401"):
            _sender(workspace, receiver.url).send(_events(1))
        assert receiver.delivered() == []


def test_a_redirect_is_not_followed(workspace: PluginWorkspace, signed: Receiver) -> None:
    signed.script(Answer(307, {"Location": "https://elsewhere.example.com/"}))
    with pytest.raises(DestinationError, match="redirected") as raised:
        _sender(workspace, signed.url).send(_events(1))
    assert isinstance(raised.value, Terminal) and len(signed.requests) == 1


def test_an_unreachable_receiver_is_transient(workspace: PluginWorkspace) -> None:
    with running(Receiver(secret=SECRET)) as gone:
        url = gone.url
    result = _sender(workspace, url).send(_events(2))
    assert isinstance(result.error, Transient) and len(result.unsent) == 2
    assert SECRET not in str(result.error)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"url": "http://hooks.example.com/in"}, "url"),
        ({"url": "https://hooks.example.com", "headers": '{"Authorization": "Bearer x"}'}, "headers"),
        ({"url": "https://hooks.example.com", "headers": {"X-Offramp-Signature": "x"}}, "headers"),
        ({"url": "https://hooks.example.com", "headers": {"X-Api-Token": "x"}}, "headers"),
        ({"url": "https://hooks.example.com", "headers": {"User-Agent": "mine/1"}}, "headers"),
        ({"url": "https://hooks.example.com", "headers": {"X-Tenant": "caf\u00e9"}}, "visible ASCII"),
        ({"url": "https://hooks.example.com", "headers": {"X-Tenant": "a\r\nX-B: c"}}, "visible ASCII"),
        ({"url": "ftp://hooks.example.com/in/"}, "url"),
        ({"url": "https://hooks.example.com", "batch_size": 1001}, "batch_size"),
        ({"url": "https://hooks.example.com", "rename": {"a": "id", "b": "id"}}, "rename"),
    ],
)
def test_settings_refused(workspace: PluginWorkspace, settings: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        workspace.add_destination("hooks", "webhook", "signing", settings)


def test_the_connection_test_posts_a_signed_empty_batch(workspace: PluginWorkspace, signed: Receiver) -> None:
    workspace.add_destination("hooks", "webhook", "signing", {"url": signed.url})
    steps = HOOKS.check_connection(workspace.context("hooks"), False)  # type: ignore[misc]
    assert [(step.name, step.verdict) for step in steps] == [("credential", "ok"), ("receiver", "ok")]
    assert signed.requests[0].body == b'{"events":[]}' and signed.requests[0].status == 200
    signed.script(Answer(401))
    assert HOOKS.check_connection(workspace.context("hooks"), False)[-1].verdict == "failed"  # type: ignore[misc]


def test_an_answer_that_cannot_be_read_is_a_failed_step_or_a_resend(
    workspace: PluginWorkspace, signed: Receiver
) -> None:
    # Not gzip although it says so: httpx raises a DecodingError, which is not a TransportError.
    broken = Answer(200, {"Content-Encoding": "gzip"}, b"not gzip at all")
    signed.script(broken, broken)
    sender = _sender(workspace, signed.url)
    steps = HOOKS.check_connection(workspace.context("hooks"), False)  # type: ignore[misc]
    assert steps[-1].verdict == "failed" and "DecodingError" in steps[-1].detail
    result = sender.send(_events(1))
    assert isinstance(result.error, Transient) and len(result.unsent) == 1


def test_the_docs_verification_recipe_is_the_receivers_and_never_raises() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "webhook-destination.md").read_text()
    recipe = docs.split("### Verifying a request", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    function = recipe[recipe.index("def verify(") :]
    assert function.strip() == inspect.getsource(verify).strip()
    now = str(int(time.time()))
    for timestamp, signature in [("\u00b2", "sha256=00"), (now, "sha256=\u00e9"), (now, "sha256=\udcff"), ("", "x")]:
        assert verify(b"k" * 16, b"{}", timestamp, signature) is False


def test_the_descriptor_is_registered_with_its_credential_types() -> None:
    assert DESTINATION_TYPE.credential_types == ("hmac-secret", "static-token")
    assert not DESTINATION_TYPE.capabilities.supports_dedupe


@pytest.mark.parametrize(
    ("bad", "good", "why"),
    [
        ("'infinity'::TIMESTAMP", "TIMESTAMP '2026-11-30 12:00:00'", "out of the range"),
        ("'-infinity'::DATE", "DATE '2026-11-30'", "out of the range"),
        ("TIMESTAMP '9999-12-31 23:59:59' + INTERVAL 1 DAY", "TIMESTAMP '2026-11-30 12:00:00'", "out of the range"),
        ("INTERVAL 3 DAY", "NULL::INTERVAL", "an interval"),
        ("to_microseconds(1)::INTERVAL", "NULL::INTERVAL", "an interval"),
    ],
)
def test_a_duckdb_value_python_cannot_hold_rejects_only_its_row(
    workspace: PluginWorkspace, bad: str, good: str, why: str
) -> None:
    workspace.add_destination("hooks", "webhook", "signing", {"url": "https://h.example.com/in"})
    preparer = HOOKS.open_preparer(workspace.context("hooks"))
    table = duckdb.sql(
        f"SELECT 'bad' AS event_id, {bad} AS value, 1 AS n UNION ALL SELECT 'good', {good}, 2 ORDER BY n"
    ).to_arrow_table()
    prepared = preparer.prepare(table.combine_chunks().to_batches()[0])
    assert [event.event_id for event in prepared.events] == ["good"]
    (rejected,) = prepared.rejected
    assert (rejected.event_id, rejected.reason) == ("bad", UNENCODABLE_VALUE)
    assert "column value" in rejected.detail and why in rejected.detail


def test_nested_nanoseconds_from_duckdb_are_cut_to_microseconds(workspace: PluginWorkspace) -> None:
    workspace.add_destination("hooks", "webhook", "signing", {"url": "https://h.example.com/in"})
    preparer = HOOKS.open_preparer(workspace.context("hooks"))
    table = duckdb.sql(
        "SELECT 'a' AS event_id, [TIMESTAMP_NS '2026-11-30 12:00:00.123456789'] AS stamps, "
        "{'at': TIMESTAMP_NS '2026-11-30 12:00:00.000000001'} AS nested, TIME_NS '12:07:00.000000999' AS at"
    ).to_arrow_table()
    (event,) = preparer.prepare(table.combine_chunks().to_batches()[0]).events
    assert orjson.loads(event.body) == {
        "event_id": "a",
        "stamps": ["2026-11-30T12:00:00.123456+00:00"],
        "nested": {"at": "2026-11-30T12:00:00+00:00"},
        "at": "12:07:00",
    }
