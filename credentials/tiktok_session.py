"""A `tiktok-offline-events` credential in use: a working access token, refreshed safely across processes.

Everything goes through the :class:`~offramp.core.CredentialHandle` core hands the plugin; this module never sees
the state store. Refresh happens before use when the access token has expired or is about to, and after TikTok
reports 40102 (refresh once, then retry the call: :class:`TikTokAccessTokenAuth`, the one place that does it, used
by the sender and the account calls alike). It runs under the handle's lock (a row lock on PostgreSQL, the write
lock on SQLite): the second of two processes waits, then finds and uses the token the first stored, so a
single-use refresh token is never spent twice. The rotated refresh token is committed, encrypted, with the new
access token, before the new token is used.

The type's hooks (:data:`HOOKS`: consent page, code exchange, ``offramp credentials test``) are at the end.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from offramp.core import (
    AccessReport,
    Authorization,
    CredentialHandle,
    CredentialHooks,
    CredentialState,
    OfframpError,
    Terminal,
)
from offramp.credentials.tiktok import TikTokOfflineEventsCredentialSettings
from offramp.credentials.tiktok_oauth import (
    TikTokApiError,
    TikTokGrantRefusedError,
    TikTokTokenClient,
    TikTokTransientError,
    TokenGrant,
    authorization_url,
    raise_for_envelope,
)
from offramp.plugins.tiktok.codes import ACCESS_TOKEN_EXPIRED, CodeClass, envelope_of
from offramp.plugins.tiktok.network import origin, unreachable

API = "/open_api/v1.3"
WRITER_ROLES = ("ADMIN", "OPERATOR")
_MAX_SKEW = timedelta(seconds=60)


class CredentialNeedsAuthorizationError(OfframpError, Terminal):
    """The credential cannot be used until someone (re-)authorizes it."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _is_fresh(expires_at: datetime | None, refreshed_at: datetime | None, now: datetime) -> bool:
    """Whether a token is good for a while yet: beyond a skew of 10% of its lifetime, at most a minute."""
    if expires_at is None:
        return True  # TikTok's long-term advertiser tokens do not expire on a timer
    lifetime = expires_at - refreshed_at if refreshed_at is not None else _MAX_SKEW * 10
    return now < expires_at - min(_MAX_SKEW, lifetime / 10)


def _tiktok_settings(state: CredentialState) -> TikTokOfflineEventsCredentialSettings:
    settings = state.settings
    if not isinstance(settings, TikTokOfflineEventsCredentialSettings):
        raise TypeError(f"expected tiktok-offline-events settings, got {type(settings).__name__}")
    return settings


class TikTokCredentialSession:
    """Hands out access tokens for one stored credential; safe to share between threads.

    Args:
        handle: The credential, as core hands it to the plugin.
        timeout_seconds: Per call to TikTok's token and account endpoints.
    """

    def __init__(self, handle: CredentialHandle, *, timeout_seconds: float = 30.0) -> None:
        self._handle = handle
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._refreshed_at: datetime | None = None

    def __repr__(self) -> str:
        return f"TikTokCredentialSession({self._handle.name!r})"

    @property
    def name(self) -> str:
        """The credential's name."""
        return self._handle.name

    @property
    def timeout_seconds(self) -> float:
        """Per call to TikTok's token and account endpoints."""
        return self._timeout

    @property
    def reauthorize_command(self) -> str:
        """The command that authorizes the credential again."""
        return self._handle.reauthorize_command

    def settings(self) -> TikTokOfflineEventsCredentialSettings:
        """The credential's current settings, secrets decrypted."""
        return _tiktok_settings(self._handle.read())

    def access_token(self) -> str:
        """A working access token: the cached one while fresh, else the stored one, else a refreshed one."""
        with self._lock:
            if self._token is not None and _is_fresh(self._expires_at, self._refreshed_at, _utcnow()):
                return self._token
            state = self._handle.read()
            if state.status != "ready":
                raise self._needs_authorization(state)
            settings = _tiktok_settings(state)
            stored = settings.access_token.get_secret_value() if settings.access_token else None
            if stored and _is_fresh(state.token_expires_at, state.refreshed_at, _utcnow()):
                return self._remember(stored, state)
            return self._refresh(stale=stored)

    def refreshed_after_failure(self, failed_token: str) -> str:
        """A new access token after TikTok answered 40102 (expired) for ``failed_token``."""
        with self._lock:
            return self._refresh(stale=failed_token)

    def mark_refused(self, reason: str) -> None:
        """Record that TikTok refused this credential's token; uses fail fast until it is re-authorized."""
        self._handle.mark_needs_reauthorization(reason)
        with self._lock:
            self._token = None

    def auth(self) -> TikTokAccessTokenAuth:
        """An httpx Auth that sends ``Access-Token``, refreshes once on 40102, marks a refused grant."""
        return TikTokAccessTokenAuth(self)

    def complete_authorization(self, auth_code: str) -> TokenGrant:
        """Exchange an authorization code and store the tokens, encrypted; the credential becomes ready."""
        with self._handle.locked() as locked:
            settings = _tiktok_settings(locked.state)
            grant = TikTokTokenClient(settings, timeout=self._timeout).exchange_code(auth_code)
            locked.save_tokens(_token_values(grant), expires_at=grant.access_token_expires_at(_utcnow()),
                               action="authorize")  # fmt: skip
        with self._lock:
            self._token = None
        return grant

    def advertisers(self) -> list[dict[str, Any]]:
        """The advertisers the token reaches, with name, status and role (`offramp credentials test`, and the
        connection test when its advertiser is not among them)."""
        settings = self.settings()
        with TikTokAccountApi(self) as api:
            grant_params = {"app_id": settings.app_id, "secret": settings.app_secret.get_secret_value()}
            listed = api.get("oauth2/advertiser/get/", grant_params)
            advertisers = [item for item in listed.get("list", []) if isinstance(item, dict)]
            ids = [str(item.get("advertiser_id")) for item in advertisers]
            details: dict[str, dict[str, Any]] = {}
            if ids:
                info = api.get("advertiser/info/", {"advertiser_ids": json.dumps(ids)})
                details = {str(item.get("advertiser_id")): item for item in info.get("list", [])}
        result = []
        for advertiser_id, item in zip(ids, advertisers, strict=True):
            detail = details.get(advertiser_id, {})
            # The authorizing user's role: the emulator reports it as `user_role`; TikTok's advertiser/info does
            # not document one (its `role` is the account's kind, e.g. ROLE_ADVERTISER), so it may be unknown
            # (docs/tiktok-api-facts.md, "Unconfirmed").
            role = detail.get("user_role")
            result.append(
                {
                    "advertiser_id": advertiser_id,
                    "name": detail.get("name") or item.get("advertiser_name"),
                    "status": detail.get("status"),
                    "account_role": detail.get("role"),
                    "role": role,
                    "can_send": None if role is None else role in WRITER_ROLES,
                }
            )
        return result

    def _needs_authorization(self, state: CredentialState) -> CredentialNeedsAuthorizationError:
        if state.status == "needs_reauth":
            message = f"credential {self.name!r} was refused by TikTok ({state.status_reason})"
            hint = f"re-authorize with: {self.reauthorize_command}"
        else:
            message = f"credential {self.name!r} holds no token yet"
            hint = f"authorize it with: {self.reauthorize_command}"
        return CredentialNeedsAuthorizationError(message, hint=hint, credential=self.name)

    def _remember(self, token: str, state: CredentialState) -> str:
        self._token, self._expires_at, self._refreshed_at = token, state.token_expires_at, state.refreshed_at
        return token

    def _refresh(self, stale: str | None) -> str:
        """Refresh under the credential's lock (the caller holds ``self._lock``)."""
        refused: str | None = None
        with self._handle.locked() as locked:
            state = locked.state
            if state.status != "ready":
                raise self._needs_authorization(state)
            settings = _tiktok_settings(state)
            current = settings.access_token.get_secret_value() if settings.access_token else None
            # Another process (or thread) may have refreshed while we waited for the lock: use its token.
            if current and current != stale and _is_fresh(state.token_expires_at, state.refreshed_at, _utcnow()):
                return self._remember(current, state)
            if settings.refresh_token is None:
                reason = "the access token expired and there is no refresh token"
                locked.mark_needs_reauthorization(reason)
                refused = f"TikTok answered {ACCESS_TOKEN_EXPIRED}: {reason}"
            else:
                try:
                    grant = TikTokTokenClient(settings, timeout=self._timeout).refresh(
                        settings.refresh_token.get_secret_value()
                    )
                except TikTokGrantRefusedError as exc:
                    # Recorded, not raised, inside the block: an error there would roll the record back.
                    locked.mark_needs_reauthorization(f"{exc.fields['code']}: {exc.fields['api_message']}")
                    refused = f"TikTok answered {exc.fields['code']}: {exc.fields['api_message']}"
                else:
                    locked.save_tokens(
                        _token_values(grant), expires_at=grant.access_token_expires_at(_utcnow()), action="refresh"
                    )
                    token = self._remember(grant.access_token, locked.state)
        # Out of the block: its commit stored the new tokens (or the needs_reauth) before we go on.
        if refused is not None:
            raise CredentialNeedsAuthorizationError(
                f"TikTok refused credential {self.name!r}: {refused}",
                hint=f"re-authorize with: {self.reauthorize_command}",
                credential=self.name,
            )
        return token


class TikTokAccountApi:
    """TikTok's account endpoints (advertisers, event sets), called with a credential's token.

    Every failure is an OfframpError with one line to act on: a host that cannot be reached
    (``TikTok unreachable (connection refused) at https://...``, transient), a refused grant or a token that
    expired even right after its refresh (re-authorize), or the code TikTok answered.
    """

    def __init__(self, credential: TikTokCredentialSession, timeout_seconds: float | None = None) -> None:
        self._credential = credential
        base_url = credential.settings().api_base_url
        self._origin = origin(base_url)
        self._base = f"{base_url}{API}"
        timeout = credential.timeout_seconds if timeout_seconds is None else timeout_seconds
        self._client = httpx.Client(auth=credential.auth(), timeout=timeout)

    def __enter__(self) -> TikTokAccountApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """``data`` of GET ``path`` (under the API version), or the error the answer means."""
        return self._call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """``data`` of POST ``path`` with a JSON body, or the error the answer means."""
        return self._call("POST", path, json=body)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, f"{self._base}/{path}", **kwargs)
        except httpx.TransportError as exc:
            # Only the kind of failure and the host: the exception's text may quote the URL (and its secret query).
            raise TikTokTransientError(
                f"{unreachable(exc)} at {self._origin}",
                hint="check that the host is up and reachable from here, and the credential's api_base_url",
            ) from None
        credential = self._credential
        try:
            return raise_for_envelope(*_answer(response))
        except TikTokGrantRefusedError as exc:
            # The auth flow has marked the credential needs_reauth already.
            raise CredentialNeedsAuthorizationError(
                f"TikTok refused credential {credential.name!r}: {exc.message}",
                hint=f"re-authorize with: {credential.reauthorize_command}",
                credential=credential.name,
            ) from None
        except TikTokApiError as exc:
            if exc.fields.get("code") != ACCESS_TOKEN_EXPIRED:
                raise
            # The auth flow refreshed once on 40102 and resent: a second 40102 is no clock skew a refresh cures.
            raise CredentialNeedsAuthorizationError(
                f"TikTok says the access token of credential {credential.name!r} expired even right after a refresh",
                hint=f"re-authorize with: {credential.reauthorize_command}",
                credential=credential.name,
                request_id=exc.fields.get("request_id"),
            ) from None


def advertiser_list(advertisers: list[dict[str, Any]]) -> str:
    """``7000000001 (Emulator shop), 7000000002`` for messages: the advertisers a token reaches, with their names
    when known (`credentials authorize`, and the connection test when its advertiser is not among them)."""
    return ", ".join(
        f"{item['advertiser_id']} ({item['name']})" if item.get("name") else str(item["advertiser_id"])
        for item in advertisers
    )


def _token_values(grant: TokenGrant) -> dict[str, str]:
    values = {"access_token": grant.access_token}
    if grant.refresh_token:
        values["refresh_token"] = grant.refresh_token
    return values


class TikTokAccessTokenAuth(httpx.Auth):
    """Adds ``Access-Token``; on 40102 refreshes once and resends; on a refused grant marks the credential.

    The one refresh path: the sender's ``event/track/`` calls and the account calls (connection test, event sets,
    ``credentials test``) all go through it. TikTok reports token problems in HTTP-200 bodies, so the auth flow
    needs the response body. What the final answer means for the call is the caller's to classify.
    """

    requires_response_body = True

    def __init__(self, credential: TikTokCredentialSession) -> None:
        self._credential = credential

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._credential.access_token()
        request.headers["Access-Token"] = token
        response = yield request
        envelope = _envelope(response)
        if envelope is not None and envelope.code == ACCESS_TOKEN_EXPIRED:
            request.headers["Access-Token"] = self._credential.refreshed_after_failure(token)
            response = yield request
            envelope = _envelope(response)
        if envelope is not None and envelope.kind is CodeClass.GRANT_REFUSED:
            self._credential.mark_refused(f"{envelope.code}: {envelope.message}")


def _answer(response: httpx.Response) -> tuple[Any, int]:
    try:
        return response.json(), response.status_code
    except ValueError:
        return None, response.status_code


def _envelope(response: httpx.Response) -> Any:
    if response.status_code >= 500:
        return None  # the request did not reach the API, whatever the body says
    return envelope_of(_answer(response)[0])


# -- the credential type's hooks (the descriptor's implementation) --


def _authorization_url(handle: CredentialHandle, state: str, redirect_uri: str | None) -> str:
    """The consent page an advertiser opens (`offramp credentials authorize`)."""
    return authorization_url(_tiktok_settings(handle.read()), state, redirect_uri)


def _complete_authorization(handle: CredentialHandle, code: str) -> Authorization:
    """Exchange the code TikTok redirected with; store the tokens."""
    grant = TikTokCredentialSession(handle).complete_authorization(code)
    expiry = (
        f"expires in {grant.expires_in} s and is refreshed automatically" if grant.expires_in else "does not expire"
    )
    advertisers = advertiser_list([{"advertiser_id": item} for item in grant.advertiser_ids]) or "none"
    return Authorization(f"Authorized credential {handle.name}: advertisers {advertisers}; the access token {expiry}.")


def _can_send(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no: needs Admin or Operator"


def _describe_access(handle: CredentialHandle) -> AccessReport:
    """The advertisers the token reaches, and the authorizing user's role on each (`offramp credentials test`)."""
    advertisers = TikTokCredentialSession(handle).advertisers()
    return AccessReport(
        summary=f"the token reaches {len(advertisers)} advertiser(s)",
        title="Advertisers",
        columns=["advertiser id", "name", "status", "your role", "can send events"],
        rows=[
            [
                str(item["advertiser_id"]),
                "" if item["name"] is None else str(item["name"]),
                "" if item["status"] is None else str(item["status"]),
                item["role"] or "not reported",
                _can_send(item["can_send"]),
            ]
            for item in advertisers
        ],
        key="advertisers",
        items=advertisers,
    )


HOOKS = CredentialHooks(
    authorization_url=_authorization_url,
    complete_authorization=_complete_authorization,
    describe_access=_describe_access,
)

__all__ = [
    "HOOKS",
    "WRITER_ROLES",
    "CredentialNeedsAuthorizationError",
    "TikTokAccessTokenAuth",
    "TikTokAccountApi",
    "TikTokCredentialSession",
    "advertiser_list",
]
