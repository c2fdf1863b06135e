"""TikTok API for Business answers: the envelope, every code offramp acts on, and what each code means.

This module is the one place that knows TikTok's codes (docs/tiktok-api-facts.md, "Codes"). The credential (its
token calls and the ``Access-Token`` auth flow, in ``offramp.credentials``) and the destination (``responses``,
the sender, the connection test) classify answers through :func:`code_class`, so a code cannot mean one thing to
one of them and another thing to the other. It imports nothing from offramp, so the credential package can import
it without loading the destination.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson


class CodeClass(enum.Enum):
    """What a code means for the call that got it."""

    OK = "ok"  # accepted
    RATE_LIMITED = "rate_limited"  # too many requests: retry after a short wait
    SERVER_ERROR = "server_error"  # TikTok failed: retry after a longer wait
    TOKEN_EXPIRED = "token_expired"  # the access token expired: refresh it once, then call again
    GRANT_REFUSED = "grant_refused"  # the grant is gone: only a new authorization helps
    NO_PERMISSION = "no_permission"  # the authorizing user lacks the Operator or Admin role
    INVALID_PARAMETER = "invalid_parameter"  # a field is invalid; the message names it
    TERMINAL = "terminal"  # anything else retrying cannot fix

    @property
    def transient(self) -> bool:
        """Whether the same call may succeed later, unchanged."""
        return self in (CodeClass.RATE_LIMITED, CodeClass.SERVER_ERROR)


OK = 0
PARTIALLY_SUCCESSFUL = 20001
NO_PERMISSION = 40001
INVALID_PARAMETER = 40002
UNKNOWN_EVENT_SET = 40007  # the event set does not exist
ACCESS_TOKEN_EXPIRED = 40102
ACCESS_TOKEN_MISSING = 40104
MAINTENANCE = 60001

# Every code with a class other than TERMINAL, once (docs/tiktok-api-facts.md, "Codes"). A code not listed is
# terminal.
CODES: dict[int, CodeClass] = {
    OK: CodeClass.OK,
    PARTIALLY_SUCCESSFUL: CodeClass.OK,  # accepted, as RudderStack treats it; never seen from event/track
    NO_PERMISSION: CodeClass.NO_PERMISSION,
    INVALID_PARAMETER: CodeClass.INVALID_PARAMETER,
    40016: CodeClass.RATE_LIMITED,  # requests too frequent (app level)
    40100: CodeClass.RATE_LIMITED,  # requests too frequent (endpoint level)
    40132: CodeClass.RATE_LIMITED,  # QPS limit on one field value (one pixel or event set): retry, slowly
    40133: CodeClass.RATE_LIMITED,  # advertiser-level QPS limit
    40202: CodeClass.RATE_LIMITED,  # write conflict, "retry may resolve"
    ACCESS_TOKEN_EXPIRED: CodeClass.TOKEN_EXPIRED,
    40103: CodeClass.GRANT_REFUSED,  # refresh token expired
    40105: CodeClass.GRANT_REFUSED,  # access token invalid or revoked
    40107: CodeClass.GRANT_REFUSED,  # refresh token invalid (used, revoked, or of a long-term token)
    50000: CodeClass.SERVER_ERROR,
    50002: CodeClass.SERVER_ERROR,
    51305: CodeClass.SERVER_ERROR,
    MAINTENANCE: CodeClass.SERVER_ERROR,
}
# 40104 (no Access-Token header) is TERMINAL, not GRANT_REFUSED: offramp always sends the header, so the answer means
# something on the way dropped it; the grant may be fine, and marking the credential refused would stop every
# destination that shares it for nothing (docs/tiktok-api-facts.md, "Decisions").

# Advised waits. TikTok: a QPS breach, retry in the next second; a 5xx or a system error, wait minutes. The runner
# backs off from these, so the figure is a base, not the whole wait.
RATE_LIMIT_WAIT = 1.0
SERVER_ERROR_WAIT = 5.0
MAINTENANCE_WAIT = 60.0

# What to check for the terminal codes a correct client can still meet (a wrong setting or a changed account).
HINTS: dict[int, str] = {
    40000: "check the destination's settings and the orchestration's test event code",
    40006: "offramp speaks API v1.3; check the credential's api_base_url",
    UNKNOWN_EVENT_SET: "the event set does not exist: check event_set_id, or create the set with the destination's "
    "ensure-event-set action",
    40008: "the endpoint is not available at this host: check the credential's api_base_url",
    40010: "the host is not TikTok's Business API: check the credential's api_base_url",
    40051: "offramp speaks API v1.3; check the credential's api_base_url",
    ACCESS_TOKEN_MISSING: "the request reached TikTok without its Access-Token header: check that no proxy between "
    "offramp and the credential's api_base_url drops it",
    40106: "the token does not fit this advertiser: check advertiser_id and who authorized the credential",
    40118: "the app or advertiser is not allow-listed for the Events API: ask your TikTok representative",
    40300: "the advertiser does not exist: check advertiser_id",
    40301: "the advertiser cannot be matched: check advertiser_id",
    41000: "TikTok refuses requests from this network's country",
}
DEFAULT_HINT = "check the destination's settings; TikTok's code and message say what it refused"

_MAX_MESSAGE = 500


def code_class(code: int) -> CodeClass:
    """The class of a TikTok code; codes offramp does not know are terminal."""
    return CODES.get(code, CodeClass.TERMINAL)


def wait_for(code: int) -> float | None:
    """The advised wait before retrying a call that got ``code``; None for codes that are not transient."""
    kind = code_class(code)
    if kind is CodeClass.RATE_LIMITED:
        return RATE_LIMIT_WAIT
    if kind is CodeClass.SERVER_ERROR:
        return MAINTENANCE_WAIT if code == MAINTENANCE else SERVER_ERROR_WAIT
    return None


@dataclass(frozen=True)
class Envelope:
    """TikTok's ``{code, message, request_id, data}``.

    Args:
        code: The code (0 is success).
        message: TikTok's message, at most 500 characters.
        request_id: The request id, for TikTok support; None when absent.
        data: ``data`` of the answer (an empty dict when absent).
    """

    code: int
    message: str
    request_id: str | None
    data: Any

    @property
    def kind(self) -> CodeClass:
        """The code's class."""
        return code_class(self.code)


def envelope_of(payload: object) -> Envelope | None:
    """The envelope of a decoded JSON answer, or None when it is not one (a proxy's page, a truncated body)."""
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
    return Envelope(
        code=raw_code,
        message=str(message)[:_MAX_MESSAGE] if message is not None else "",
        request_id=str(request_id) if isinstance(request_id, str | int) and request_id != "" else None,
        data=payload.get("data"),
    )


def parse_envelope(body: bytes) -> Envelope | None:
    """The envelope of an answer's body, or None when the body is not one."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return envelope_of(payload)


__all__ = [
    "ACCESS_TOKEN_EXPIRED",
    "ACCESS_TOKEN_MISSING",
    "CODES",
    "DEFAULT_HINT",
    "HINTS",
    "INVALID_PARAMETER",
    "MAINTENANCE",
    "MAINTENANCE_WAIT",
    "NO_PERMISSION",
    "UNKNOWN_EVENT_SET",
    "OK",
    "RATE_LIMIT_WAIT",
    "SERVER_ERROR_WAIT",
    "CodeClass",
    "Envelope",
    "code_class",
    "envelope_of",
    "parse_envelope",
    "wait_for",
]
