"""TikTok's codes are classified once: the credential's classifier and the sender's agree on every code."""

from __future__ import annotations

import orjson
import pytest

from offramp.core import Terminal, Transient
from offramp.credentials.tiktok_oauth import (
    TikTokApiError,
    TikTokGrantRefusedError,
    TikTokTransientError,
    raise_for_envelope,
)
from offramp.plugins.tiktok.codes import CODES, HINTS, CodeClass, code_class, wait_for
from offramp.plugins.tiktok.responses import Outcome, classify

# Every code the table or the hints name, and some nobody documents.
ALL_CODES = sorted({*CODES, *HINTS, 40104, 40106, 41000, 49999, 12345})

# What the sender does with each class of code.
SENDER_OUTCOME = {
    CodeClass.OK: {Outcome.OK},
    CodeClass.RATE_LIMITED: {Outcome.TRANSIENT},
    CodeClass.SERVER_ERROR: {Outcome.TRANSIENT},
    CodeClass.TOKEN_EXPIRED: {Outcome.TOKEN_EXPIRED},
    CodeClass.GRANT_REFUSED: {Outcome.TOKEN_REFUSED},
    CodeClass.NO_PERMISSION: {Outcome.PERMISSION},
    CodeClass.INVALID_PARAMETER: {Outcome.INVALID},
    CodeClass.TERMINAL: {Outcome.TERMINAL},
}


def envelope(code: int) -> dict[str, object]:
    return {"code": code, "message": "TikTok's words", "request_id": "202611220000000123456789ABCDEF0123", "data": {}}


def credential_verdict(code: int) -> str:
    """What the credential's classifier (token calls, account calls) makes of ``code``."""
    try:
        raise_for_envelope(envelope(code), 200)
    except TikTokTransientError as exc:
        assert isinstance(exc, Transient) and not isinstance(exc, Terminal)
        assert exc.fields["retry_after_seconds"] == wait_for(code)
        return "transient"
    except TikTokGrantRefusedError as exc:
        assert isinstance(exc, Terminal)
        return "grant refused"
    except TikTokApiError as exc:
        assert isinstance(exc, Terminal) and not isinstance(exc, Transient)
        return "terminal"
    return "ok"


def sender_verdict(code: int) -> str:
    """What the sender's classifier of `event/track/` answers makes of ``code``."""
    answer = classify(200, orjson.dumps(envelope(code)))
    assert answer.outcome in SENDER_OUTCOME[code_class(code)]
    if answer.outcome is Outcome.TRANSIENT:
        assert answer.retry_after_seconds == wait_for(code)
        return "transient"
    if answer.outcome is Outcome.OK:
        return "ok"
    if answer.outcome is Outcome.TOKEN_REFUSED:
        return "grant refused"
    return "terminal"  # an expired token after its refresh, a permission, an invalid field: terminal to a caller


@pytest.mark.parametrize("code", ALL_CODES)
def test_the_credential_and_the_sender_classify_every_code_alike(code: int) -> None:
    assert credential_verdict(code) == sender_verdict(code)


def test_the_codes_whose_class_was_written_twice_before_have_one_class() -> None:
    # 40132 was transient for the sender and terminal for the credential; 40104 a refused grant for the sender
    # only; 40105 the only refused grant of the auth flow (docs/tiktok-api-facts.md, "Decisions").
    assert code_class(40132) is CodeClass.RATE_LIMITED
    assert code_class(40104) is CodeClass.TERMINAL
    assert {code for code, kind in CODES.items() if kind is CodeClass.GRANT_REFUSED} == {40103, 40105, 40107}
    assert code_class(40102) is CodeClass.TOKEN_EXPIRED


def test_a_code_is_in_the_table_once_and_terminal_codes_are_not_listed() -> None:
    assert CodeClass.TERMINAL not in CODES.values()
    assert not set(HINTS) & {code for code, kind in CODES.items() if kind is not CodeClass.TERMINAL}
