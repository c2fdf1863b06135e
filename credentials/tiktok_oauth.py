"""TikTok API for Business token endpoints: code exchange, refresh and revoke.

The exchanges go through requests-oauthlib (called explicitly, never as the data-plane client) with a client
class and compliance hooks for TikTok's dialect: JSON bodies with ``app_id``/``secret`` instead of a form with
``client_id``/``client_secret``, and answers wrapped in ``{code, message, request_id, data}`` that arrive with
HTTP 200 even when they are errors. ``OAuth2Session.refresh_token()`` always form-encodes its body, so a refresh
also goes through ``fetch_token`` with the refresh grant prepared by the client class.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import requests
from oauthlib.oauth2 import Client
from requests_oauthlib import OAuth2Session

from offramp.core import DestinationError, Terminal, Transient
from offramp.credentials.tiktok import TikTokOfflineEventsCredentialSettings
from offramp.plugins.tiktok.codes import SERVER_ERROR_WAIT, CodeClass, envelope_of, wait_for
from offramp.plugins.tiktok.network import origin, unreachable

# requests-oauthlib and oauthlib log request bodies and tokens at DEBUG; never let them reach a handler.
for _name in ("requests_oauthlib", "oauthlib"):
    logging.getLogger(_name).setLevel(logging.WARNING)

API_PREFIX = "/open_api/v1.3"
ACCESS_TOKEN_PATH = f"{API_PREFIX}/oauth2/access_token/"
REFRESH_TOKEN_PATH = f"{API_PREFIX}/oauth2/refresh_token/"
REVOKE_TOKEN_PATH = f"{API_PREFIX}/oauth2/revoke_token/"

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class TikTokApiError(DestinationError, Terminal):
    """TikTok answered with a non-zero code that retrying cannot fix."""

    def __init__(self, code: int, message: str, request_id: str | None, *, hint: str | None = None) -> None:
        super().__init__(
            f"TikTok answered {code}: {message}", hint=hint, code=code, api_message=message, request_id=request_id
        )


class TikTokGrantRefusedError(TikTokApiError):
    """TikTok refused the grant (refresh token expired or invalid, access token revoked)."""


class TikTokTransientError(DestinationError, Transient):
    """TikTok could not answer now (rate limit, 5xx, maintenance, network); retry later."""


@dataclass(frozen=True)
class TokenGrant:
    """Tokens from an authorization or a refresh."""

    access_token: str
    refresh_token: str | None
    expires_in: int | None
    advertiser_ids: tuple[str, ...]

    def access_token_expires_at(self, now: datetime) -> datetime | None:
        """When the access token stops working; None for TikTok's long-term tokens."""
        return now + timedelta(seconds=self.expires_in) if self.expires_in else None


def raise_for_envelope(payload: Any, status_code: int) -> dict[str, Any]:
    """Return ``data`` of a successful TikTok answer, or raise the error its code means.

    Each code's class comes from ``offramp.plugins.tiktok.codes``, which the destination's sender reads too.

    Raises:
        TikTokTransientError: A 5xx, an answer that is no envelope, or a rate-limit or server-error code.
        TikTokGrantRefusedError: The grant is gone (only a new authorization helps).
        TikTokApiError: Any other code.
    """
    if status_code >= 500:
        raise TikTokTransientError(
            f"TikTok answered {status_code}", hint="retry later", status=status_code,
            retry_after_seconds=SERVER_ERROR_WAIT,
        )  # fmt: skip
    envelope = envelope_of(payload)
    if envelope is None:
        raise TikTokTransientError(f"unexpected answer from TikTok (HTTP {status_code})", status=status_code)
    code, message, request_id = envelope.code, envelope.message, envelope.request_id
    kind = envelope.kind
    if kind is CodeClass.OK:
        data = envelope.data or {}
        return data if isinstance(data, dict) else {"value": data}
    if kind.transient:
        raise TikTokTransientError(
            f"TikTok answered {code}: {message}", code=code, request_id=request_id, retry_after_seconds=wait_for(code)
        )
    if kind is CodeClass.GRANT_REFUSED:
        raise TikTokGrantRefusedError(code, message, request_id)
    raise TikTokApiError(code, message, request_id)


def authorization_url(settings: TikTokOfflineEventsCredentialSettings, state: str, redirect_uri: str | None) -> str:
    """The page an advertiser opens to grant access; TikTok sends them back with ``auth_code`` and ``state``."""
    query = {"app_id": settings.app_id, "state": state}
    if redirect_uri:
        query["redirect_uri"] = redirect_uri
    separator = "&" if "?" in settings.auth_url else "?"
    return f"{settings.auth_url}{separator}{urlencode(query)}"


class _TikTokGrantClient(Client):
    """Prepares TikTok's grant bodies; oauthlib's standard field names do not apply."""

    def __init__(self, settings: TikTokOfflineEventsCredentialSettings, grant: dict[str, str]) -> None:
        super().__init__(settings.app_id)
        self._fields = {"app_id": settings.app_id, "secret": settings.app_secret.get_secret_value(), **grant}

    def prepare_request_body(self, *args: Any, **kwargs: Any) -> str:
        return urlencode(self._fields)


def _json_body(url: str, headers: dict[str, str], request_kwargs: dict[str, Any]) -> tuple[str, dict[str, str], Any]:
    # TikTok reads JSON, not a form: move the prepared fields into a JSON body.
    fields = request_kwargs.pop("data")
    return url, {**headers, "Content-Type": "application/json"}, {**request_kwargs, "json": dict(fields)}


def _unwrap_envelope(response: requests.Response) -> requests.Response:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    data = raise_for_envelope(payload, response.status_code)
    if "access_token" not in data:
        raise TikTokTransientError("TikTok's token answer holds no access_token", hint="retry later")
    # oauthlib compares `scope` with the requested one and warns; TikTok's is a list of permission ids.
    token = {key: value for key, value in data.items() if key != "scope"}
    token.setdefault("token_type", "Bearer")
    response._content = json.dumps(token).encode()
    return response


@contextmanager
def _plain_http_allowed_for_loopback(url: str) -> Iterator[None]:
    """oauthlib refuses plain http; allow it for loopback only, where the emulator runs."""
    if urlsplit(url).hostname not in _LOOPBACK or urlsplit(url).scheme == "https":
        yield
        return
    previous = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
        else:
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = previous


class TikTokTokenClient:
    """Calls TikTok's token endpoints for one credential's app."""

    def __init__(self, settings: TikTokOfflineEventsCredentialSettings, *, timeout: float = 30.0) -> None:
        self._settings = settings
        self._timeout = timeout

    def _fetch(self, path: str, grant: dict[str, str]) -> TokenGrant:
        url = f"{self._settings.api_base_url}{path}"
        if urlsplit(url).scheme != "https" and urlsplit(url).hostname not in _LOOPBACK:
            raise TikTokApiError(0, "plain http is only allowed for loopback addresses", None, hint="use https")
        session = OAuth2Session(client=_TikTokGrantClient(self._settings, grant))
        # types-requests-oauthlib predates the access_token_request hook that requests-oauthlib 2 has.
        session.register_compliance_hook("access_token_request", _json_body)  # type: ignore[call-overload]
        session.register_compliance_hook("access_token_response", _unwrap_envelope)
        try:
            with session, _plain_http_allowed_for_loopback(url):
                token = session.fetch_token(url, include_client_id=True, timeout=self._timeout)
        except requests.RequestException as exc:
            raise TikTokTransientError(
                f"{unreachable(exc)} at {origin(self._settings.api_base_url)}",
                hint="check that the host is reachable from here and the credential's api_base_url, then retry",
            ) from None
        expires_in = token.get("expires_in")
        return TokenGrant(
            access_token=str(token["access_token"]),
            refresh_token=str(token["refresh_token"]) if token.get("refresh_token") else None,
            expires_in=int(expires_in) if expires_in else None,
            advertiser_ids=tuple(str(a) for a in token.get("advertiser_ids") or ()),
        )

    def exchange_code(self, auth_code: str) -> TokenGrant:
        """Trade a single-use authorization code for tokens."""
        return self._fetch(ACCESS_TOKEN_PATH, {"auth_code": auth_code})

    def refresh(self, refresh_token: str) -> TokenGrant:
        """Trade a refresh token for new tokens; TikTok rotates the refresh token, the old one stops working."""
        return self._fetch(REFRESH_TOKEN_PATH, {"refresh_token": refresh_token, "grant_type": "refresh_token"})

    def revoke(self, access_token: str) -> None:
        """Revoke the grant behind an access token."""
        body = {
            "app_id": self._settings.app_id,
            "secret": self._settings.app_secret.get_secret_value(),
            "access_token": access_token,
        }
        try:
            response = httpx.post(f"{self._settings.api_base_url}{REVOKE_TOKEN_PATH}", json=body, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise TikTokTransientError(
                f"{unreachable(exc)} at {origin(self._settings.api_base_url)}", hint="retry later"
            ) from None
        raise_for_envelope(_json_or_none(response), response.status_code)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


__all__ = [
    "ACCESS_TOKEN_PATH",
    "REFRESH_TOKEN_PATH",
    "TikTokApiError",
    "TikTokGrantRefusedError",
    "TikTokTokenClient",
    "TikTokTransientError",
    "TokenGrant",
    "authorization_url",
    "raise_for_envelope",
]
