"""The classifier of `event/track/` answers: every code TikTok documents, and what comes back without an envelope."""

from __future__ import annotations

import httpx
import orjson
import pytest

from offramp.plugins.tiktok.emulator.envelope import NGINX_502
from offramp.plugins.tiktok.responses import (
    MAINTENANCE_WAIT,
    RATE_LIMIT_WAIT,
    SERVER_ERROR_WAIT,
    Outcome,
    TrackAnswer,
    classify,
)

REQUEST_ID = "202303141300390EF6F5D96D1798201C51"


def envelope(code: object, message: str = "msg", request_id: str | None = REQUEST_ID) -> bytes:
    return orjson.dumps({"code": code, "message": message, "request_id": request_id, "data": {}})


def answer_of(status: int, body: bytes, headers: dict[str, str] | None = None) -> TrackAnswer:
    """Classify what an httpx client receives from a server answering ``status`` and ``body``."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        response = client.post("https://business-api.tiktok.com/open_api/v1.3/event/track/", content=b"{}")
    return classify(response.status_code, response.content, log_id=response.headers.get("X-TT-LOGID"))


@pytest.mark.parametrize("code", [0, 20001])
def test_ok_and_partial_success_are_accepted_with_the_request_id(code):
    answer = answer_of(200, envelope(code, "OK"))

    assert answer.outcome is Outcome.OK
    assert (answer.code, answer.request_id, answer.retry_after_seconds) == (code, REQUEST_ID, None)


@pytest.mark.parametrize("code", [40100, 40016, 40133, 40132, 40202])
def test_rate_limits_and_conflicts_are_transient_with_a_one_second_wait(code):
    answer = answer_of(200, envelope(code, "Too many requests. Please retry in some time."))

    assert answer.outcome is Outcome.TRANSIENT
    assert answer.retry_after_seconds == RATE_LIMIT_WAIT == 1.0
    assert answer.message == "Too many requests. Please retry in some time."


@pytest.mark.parametrize(("code", "wait"), [(50000, SERVER_ERROR_WAIT), (50002, SERVER_ERROR_WAIT),
                                            (51305, SERVER_ERROR_WAIT), (60001, MAINTENANCE_WAIT)])  # fmt: skip
def test_system_errors_are_transient_with_a_longer_wait(code, wait):
    answer = answer_of(200, envelope(code))

    assert (answer.outcome, answer.code, answer.retry_after_seconds) == (Outcome.TRANSIENT, code, wait)
    assert wait > RATE_LIMIT_WAIT


def test_a_502_html_page_is_transient_and_keeps_the_log_id():
    answer = answer_of(502, NGINX_502.encode(), {"X-TT-LOGID": REQUEST_ID, "Content-Type": "text/html"})

    assert answer.outcome is Outcome.TRANSIENT
    assert answer.code is None and answer.code_text == "HTTP 502"
    assert answer.request_id == REQUEST_ID
    assert answer.retry_after_seconds == SERVER_ERROR_WAIT
    assert "502" in answer.message and "<html>" not in answer.message


@pytest.mark.parametrize("body", [b"", b"upstream timed out", envelope(0, "OK")])
@pytest.mark.parametrize("status", [500, 503, 504])
def test_any_5xx_is_transient_whatever_its_body(status, body):
    answer = answer_of(status, body)

    assert answer.outcome is Outcome.TRANSIENT and answer.http_status == status


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"message": "no code"}', b'{"code": true}'])
def test_a_2xx_without_an_envelope_is_transient(body):
    assert answer_of(200, body).outcome is Outcome.TRANSIENT


def test_a_429_is_a_rate_limit():
    answer = answer_of(429, b"slow down")

    assert (answer.outcome, answer.retry_after_seconds) == (Outcome.TRANSIENT, RATE_LIMIT_WAIT)


def test_a_404_page_is_terminal_and_points_at_the_base_url():
    answer = answer_of(404, b"404 page not found")

    assert answer.outcome is Outcome.TERMINAL
    assert answer.hint is not None and "api_base_url" in answer.hint


def test_an_expired_token_asks_for_a_refresh():
    assert answer_of(200, envelope(40102, "Access token has expired.")).outcome is Outcome.TOKEN_EXPIRED


@pytest.mark.parametrize("code", [40103, 40105, 40107])
def test_a_refused_grant_is_its_own_outcome(code):
    answer = answer_of(200, envelope(code, "Access token is incorrect or has been revoked."))

    assert (answer.outcome, answer.code) == (Outcome.TOKEN_REFUSED, code)


def test_a_missing_access_token_header_is_terminal_but_no_refused_grant():
    # offramp always sends the header: a 40104 means something on the way dropped it, and re-authorizing would not
    # help (docs/tiktok-api-facts.md, "Decisions").
    answer = answer_of(200, envelope(40104, "Access token is null. Put it in the Access-Token header."))

    assert answer.outcome is Outcome.TERMINAL
    assert answer.hint is not None and "proxy" in answer.hint


def test_no_permission_is_its_own_outcome():
    message = "No permission to operate pixel code: 123. You must be an admin or operator of this advertiser account."

    answer = answer_of(200, envelope(40001, message))

    assert (answer.outcome, answer.message) == (Outcome.PERMISSION, message)


def test_an_invalid_event_asks_for_isolation_with_tikToks_message():
    answer = answer_of(200, envelope(40002, "Invalid value for event_id: not a valid string."))

    assert answer.outcome is Outcome.INVALID
    assert (answer.code_text, answer.message) == ("40002", "Invalid value for event_id: not a valid string.")


@pytest.mark.parametrize("field", ["event_source", "event_source_id", "test_event_code", "partner_name"])
def test_an_invalid_top_level_field_is_terminal_since_no_split_can_isolate_it(field):
    answer = answer_of(200, envelope(40002, f"Invalid value for {field}: not a valid string."))

    assert answer.outcome is Outcome.TERMINAL
    assert answer.hint is not None and "event_set_id" in answer.hint


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        (40000, "settings"),
        (40007, "event_set_id"),
        (40010, "api_base_url"),
        (40300, "advertiser_id"),
        (49999, "settings"),
    ],
)
def test_other_codes_are_terminal_with_what_to_check(code, needle):
    answer = answer_of(200, envelope(code, "TikTok's words"))

    assert (answer.outcome, answer.code, answer.message) == (Outcome.TERMINAL, code, "TikTok's words")
    assert answer.hint is not None and needle in answer.hint


def test_a_code_sent_as_a_string_and_a_missing_request_id_are_tolerated():
    answer = classify(200, envelope("40100", request_id=None), log_id="LOGID")

    assert (answer.outcome, answer.code, answer.request_id) == (Outcome.TRANSIENT, 40100, "LOGID")


def test_a_long_message_is_cut():
    assert len(classify(200, envelope(40000, "x" * 10_000)).message) == 500
