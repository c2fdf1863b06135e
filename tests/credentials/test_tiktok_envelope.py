"""How TikTok's answers are classified: HTTP 200 with a code decides, never the HTTP status alone."""

from __future__ import annotations

import pytest

from offramp.core import Terminal, Transient
from offramp.credentials.tiktok_oauth import (
    TikTokApiError,
    TikTokGrantRefusedError,
    TikTokTransientError,
    raise_for_envelope,
)


def envelope(code: int, message: str = "", data: object = None) -> dict[str, object]:
    return {"code": code, "message": message, "request_id": "202611220000000123456789ABCDEF0123", "data": data}


def test_code_zero_returns_data():
    assert raise_for_envelope(envelope(0, "OK", {"list": [1]}), 200) == {"list": [1]}


@pytest.mark.parametrize("code", [40016, 40100, 40132, 40133, 50000, 50002, 60001])
def test_rate_limits_and_server_errors_in_a_200_body_are_transient(code):
    with pytest.raises(TikTokTransientError) as caught:
        raise_for_envelope(envelope(code, "Too many requests. Please retry in some time."), 200)
    assert isinstance(caught.value, Transient)
    assert caught.value.fields["code"] == code


@pytest.mark.parametrize("code", [40103, 40105, 40107])
def test_a_refused_grant_is_terminal_and_says_so(code):
    with pytest.raises(TikTokGrantRefusedError) as caught:
        raise_for_envelope(envelope(code, "Refresh token is invalid."), 200)
    assert isinstance(caught.value, Terminal)
    assert str(code) in str(caught.value)


def test_a_permission_error_is_terminal_with_tiktoks_message():
    message = "You must be an admin or operator of this advertiser account."
    with pytest.raises(TikTokApiError) as caught:
        raise_for_envelope(envelope(40001, message), 200)
    assert not isinstance(caught.value, TikTokGrantRefusedError)
    assert message in str(caught.value)
    assert caught.value.fields["request_id"].startswith("2026")


@pytest.mark.parametrize("status", [502, 503])
def test_http_5xx_with_an_html_body_is_transient(status):
    with pytest.raises(TikTokTransientError):
        raise_for_envelope(None, status)


def test_a_200_without_an_envelope_is_transient_not_success():
    with pytest.raises(TikTokTransientError):
        raise_for_envelope({"unexpected": True}, 200)
