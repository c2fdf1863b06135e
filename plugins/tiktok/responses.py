"""What one `event/track/` answer means for the events it carried, decided from the status code and the body alone.

TikTok answers HTTP 200 for nearly every application error, so the envelope's ``code`` decides, not the status
(docs/tiktok-api-facts.md, "Envelope and HTTP status"). Only when the request never reached the API (an nginx 502
page, a 503) does the status decide. Each code's class comes from ``codes``, which the credential reads too.
Keeping this a pure function of ``(status, body)`` lets the sender stay about control flow (split, give back) and
lets every code's meaning be unit-tested without a server.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from offramp.plugins.tiktok.codes import (
    DEFAULT_HINT,
    HINTS,
    MAINTENANCE_WAIT,
    RATE_LIMIT_WAIT,
    SERVER_ERROR_WAIT,
    CodeClass,
    parse_envelope,
    wait_for,
)

# A 40002 about a top-level field concerns the request itself, not any one event: splitting the batch cannot
# isolate anything, every half would be refused the same way.
_REQUEST_FIELD = re.compile(r"Invalid value for (event_source|event_source_id|test_event_code|partner_name)\b")


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


def _without_envelope(status: int, log_id: str | None) -> TrackAnswer:
    if status >= 500:
        message = f"TikTok answered {status}"
        return TrackAnswer(Outcome.TRANSIENT, status, None, message, log_id, SERVER_ERROR_WAIT)
    if status == 429:
        message = "TikTok answered 429 (too many requests)"
        return TrackAnswer(Outcome.TRANSIENT, status, None, message, log_id, RATE_LIMIT_WAIT)
    if status == 408:
        message = "TikTok answered 408 (request timeout)"
        return TrackAnswer(Outcome.TRANSIENT, status, None, message, log_id, SERVER_ERROR_WAIT)
    if 200 <= status < 300:
        # A 2xx without an envelope is a proxy or a truncated answer, not TikTok's verdict: try again later.
        message = f"TikTok answered {status} with a body that is not an API answer"
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
    envelope = parse_envelope(body)
    if envelope is None or status >= 500:
        # A 5xx means the request did not get through, whatever the body says: keep its request id, if any.
        return _without_envelope(status, envelope.request_id if envelope and envelope.request_id else log_id)
    code, message = envelope.code, envelope.message
    request_id = envelope.request_id or log_id
    kind = envelope.kind
    if kind is CodeClass.OK:
        return TrackAnswer(Outcome.OK, status, code, message, request_id)
    if kind.transient:
        return TrackAnswer(Outcome.TRANSIENT, status, code, message, request_id, wait_for(code))
    if kind is CodeClass.TOKEN_EXPIRED:
        return TrackAnswer(Outcome.TOKEN_EXPIRED, status, code, message, request_id)
    if kind is CodeClass.GRANT_REFUSED:
        return TrackAnswer(Outcome.TOKEN_REFUSED, status, code, message, request_id)
    if kind is CodeClass.NO_PERMISSION:
        return TrackAnswer(Outcome.PERMISSION, status, code, message, request_id)
    if kind is CodeClass.INVALID_PARAMETER:
        if _REQUEST_FIELD.search(message):
            hint = (
                "TikTok refused the request itself, not one event: "
                "check event_source, event_set_id and the test event code"
            )
            return TrackAnswer(Outcome.TERMINAL, status, code, message, request_id, hint=hint)
        return TrackAnswer(Outcome.INVALID, status, code, message, request_id)
    return TrackAnswer(Outcome.TERMINAL, status, code, message, request_id, hint=HINTS.get(code, DEFAULT_HINT))


__all__ = [
    "MAINTENANCE_WAIT",
    "Outcome",
    "RATE_LIMIT_WAIT",
    "SERVER_ERROR_WAIT",
    "TrackAnswer",
    "classify",
]
