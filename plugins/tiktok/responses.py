"""What one `event/track/` answer means for the events it carried, decided from the status code and the body alone.

TikTok answers HTTP 200 for nearly every application error, so the envelope's ``code`` decides, not the status
(tiktok-api.md section 5). Only when the request never reached the API (an nginx 502 page, a 503) does the status
decide. Keeping this a pure function of ``(status, body)`` lets the sender stay about control flow (refresh, split,
give back) and lets every code's meaning be unit-tested without a server.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import orjson

# Codes whose meaning the sender acts on (tiktok-api.md 5.3).
OK_CODES = frozenset({0, 20001})  # 20001 "partially successful": treated as accepted, as RudderStack does
RATE_LIMIT_CODES = frozenset({40016, 40100, 40132, 40133, 40202})  # too frequent; 40202 a write conflict
SERVER_ERROR_CODES = frozenset({50000, 50002, 51305, 60001})
TOKEN_EXPIRED = 40102
TOKEN_REFUSED_CODES = frozenset({40103, 40104, 40105, 40107})
NO_PERMISSION = 40001
INVALID_PARAMETER = 40002
MAINTENANCE = 60001

# Advised waits. TikTok: a QPS breach, retry in the next second; a 5xx or a system error, wait minutes. The runner
# backs off from these, so the server-side figure is a base, not the whole wait.
RATE_LIMIT_WAIT = 1.0
SERVER_ERROR_WAIT = 5.0
MAINTENANCE_WAIT = 60.0

# A 40002 about a top-level field concerns the request itself, not any one event: splitting the batch cannot
# isolate anything, every half would be refused the same way.
_REQUEST_FIELD = re.compile(r"Invalid value for (event_source|event_source_id|test_event_code|partner_name)\b")
_MAX_MESSAGE = 500

# What to check for the terminal codes a correct client can still meet (a wrong setting or a changed account).
_CODE_HINTS: dict[int, str] = {
    40000: "check the destination's settings and the orchestration's test event code",
    40006: "offramp speaks API v1.3; check the credential's api_base_url",
    40007: "the event set does not exist: check event_set_id, or run `offramp destinations ensure-event-set`",
    40008: "the endpoint is not available at this host: check the credential's api_base_url",
    40010: "the host is not TikTok's Business API: check the credential's api_base_url",
    40051: "offramp speaks API v1.3; check the credential's api_base_url",
    40106: "the token does not fit this advertiser: check advertiser_id and who authorized the credential",
    40118: "the app or advertiser is not allow-listed for the Events API: ask your TikTok representative",
    40300: "the advertiser does not exist: check advertiser_id",
    40301: "the advertiser cannot be matched: check advertiser_id",
    41000: "TikTok refuses requests from this network's country",
}
_DEFAULT_HINT = "check the destination's settings; TikTok's code and message say what it refused"


class Outcome(enum.Enum):
    """What the sender does with an answer."""

    OK = "ok"  # the events were accepted
    TRANSIENT = "transient"  # give them back to be sent again after a wait
    TOKEN_EXPIRED = "token_expired"  # refresh the access token once and resend
    TOKEN_REFUSED = "token_refused"  # the grant is gone: only a new authorization helps
    PERMISSION = "permission"  # the authorizing user lacks the Operator or Admin role
    INVALID = "invalid"  # some event is invalid: split the batch to find it
    TERMINAL = "terminal"  # anything else retrying cannot fix


@dataclass(frozen=True)
class TrackAnswer:
    """One classified answer.

    Args:
        outcome: What it means for the events.
        http_status: The HTTP status.
        code: The envelope's code, None when the body held no envelope (a proxy's page).
        message: TikTok's message, or a description of what came back when there was no envelope.
        request_id: The envelope's request id (else the ``X-TT-LOGID`` header), for TikTok support.
        retry_after_seconds: The advised wait, for transient answers.
        hint: What to check, for terminal answers other than token and permission ones.
    """

    outcome: Outcome
    http_status: int
    code: int | None
    message: str
    request_id: str | None = None
    retry_after_seconds: float | None = None
    hint: str | None = None

    @property
    def code_text(self) -> str:
        """The code as a failed event records it; ``HTTP <status>`` when there was none."""
        return str(self.code) if self.code is not None else f"HTTP {self.http_status}"


def _envelope(body: bytes) -> tuple[int, str, str | None] | None:
    """(code, message, request_id) of a TikTok envelope, or None when the body is not one."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    raw_code = payload.get("code")
    if isinstance(raw_code, bool):
        return None
    if isinstance(raw_code, str) and raw_code.strip().lstrip("-").isdigit():
        raw_code = int(raw_code)
    if not isinstance(raw_code, int):
        return None
    message = payload.get("message")
    request_id = payload.get("request_id")
    return (
        raw_code,
        str(message)[:_MAX_MESSAGE] if message is not None else "",
        str(request_id) if isinstance(request_id, str | int) and request_id != "" else None,
    )


def _without_envelope(status: int, log_id: str | None) -> TrackAnswer:
    if status >= 500:
        message = f"TikTok answered HTTP {status} without an API answer (its gateway failed)"
        return TrackAnswer(Outcome.TRANSIENT, status, None, message, log_id, SERVER_ERROR_WAIT)
    if status == 429:
        message = "TikTok answered HTTP 429 (too many requests)"
        return TrackAnswer(Outcome.TRANSIENT, status, None, message, log_id, RATE_LIMIT_WAIT)
    if status == 408:
        message = "TikTok answered HTTP 408 (request timeout)"
        return TrackAnswer(Outcome.TRANSIENT, status, None, message, log_id, SERVER_ERROR_WAIT)
    if 200 <= status < 300:
        # A 2xx without an envelope is a proxy or a truncated answer, not TikTok's verdict: try again later.
        message = f"TikTok answered HTTP {status} with a body that is not an API answer"
        return TrackAnswer(Outcome.TRANSIENT, status, None, message, log_id, SERVER_ERROR_WAIT)
    message = f"TikTok answered HTTP {status} without an API answer"
    hint = "check the credential's api_base_url (TikTok's is https://business-api.tiktok.com)"
    return TrackAnswer(Outcome.TERMINAL, status, None, message, log_id, hint=hint)


def classify(status: int, body: bytes, *, log_id: str | None = None) -> TrackAnswer:
    """Classify one `event/track/` answer.

    Args:
        status: The HTTP status code.
        body: The body as received.
        log_id: The ``X-TT-LOGID`` header, the request id when the body carries none.
    """
    envelope = _envelope(body)
    if envelope is None or status >= 500:
        # A 5xx means the request did not get through, whatever the body says: keep its request id, if any.
        return _without_envelope(status, envelope[2] if envelope and envelope[2] else log_id)
    code, message, request_id = envelope
    request_id = request_id or log_id
    if code in OK_CODES:
        return TrackAnswer(Outcome.OK, status, code, message, request_id)
    if code in RATE_LIMIT_CODES:
        return TrackAnswer(Outcome.TRANSIENT, status, code, message, request_id, RATE_LIMIT_WAIT)
    if code in SERVER_ERROR_CODES:
        wait = MAINTENANCE_WAIT if code == MAINTENANCE else SERVER_ERROR_WAIT
        return TrackAnswer(Outcome.TRANSIENT, status, code, message, request_id, wait)
    if code == TOKEN_EXPIRED:
        return TrackAnswer(Outcome.TOKEN_EXPIRED, status, code, message, request_id)
    if code in TOKEN_REFUSED_CODES:
        return TrackAnswer(Outcome.TOKEN_REFUSED, status, code, message, request_id)
    if code == NO_PERMISSION:
        return TrackAnswer(Outcome.PERMISSION, status, code, message, request_id)
    if code == INVALID_PARAMETER:
        if _REQUEST_FIELD.search(message):
            hint = (
                "TikTok refused the request itself, not one event: "
                "check event_source, event_set_id and the test event code"
            )
            return TrackAnswer(Outcome.TERMINAL, status, code, message, request_id, hint=hint)
        return TrackAnswer(Outcome.INVALID, status, code, message, request_id)
    hint = _CODE_HINTS.get(code, _DEFAULT_HINT)
    return TrackAnswer(Outcome.TERMINAL, status, code, message, request_id, hint=hint)


__all__ = [
    "MAINTENANCE_WAIT",
    "Outcome",
    "RATE_LIMIT_WAIT",
    "SERVER_ERROR_WAIT",
    "TrackAnswer",
    "classify",
]
