"""A `tiktok-offline-events` credential in use: a working access token, refreshed safely across processes.

Refresh happens before use when the access token has expired or is about to, and after TikTok reports 40102
(refresh once, then retry the call). It runs under the credential's lock (a row lock on PostgreSQL, the write lock
on SQLite): the second of two processes waits, then finds and uses the token the first stored, so a single-use
refresh token is never spent twice. The rotated refresh token is committed, encrypted, in the same transaction as
the new access token, before the new token is used.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import httpx

from offramp.core.errors import OfframpError, Terminal
from offramp.core.services.context import Context
from offramp.core.services.credentials import (
    credential_settings,
    get_credential,
    locked_credential,
    mark_needs_reauth,
    save_tokens,
)
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.models import Credential, utcnow
from offramp.credentials.tiktok import TikTokOfflineEventsCredentialSettings
from offramp.credentials.tiktok_oauth import (
    TikTokGrantRefusedError,
    TikTokTokenClient,
    TokenGrant,
    authorization_url,
    raise_for_envelope,
)

TOKEN_EXPIRED = 40102
TOKEN_INVALID = 40105
_MAX_SKEW = timedelta(seconds=60)


class CredentialNeedsAuthorizationError(OfframpError, Terminal):
    """The credential cannot be used until someone (re-)authorizes it."""


def _needs_authorization(row: Credential) -> CredentialNeedsAuthorizationError:
    if row.status == "needs_reauth":
        message = f"credential {row.name!r} was refused by TikTok ({row.status_reason})"
    else:
        message = f"credential {row.name!r} holds no token yet"
    return CredentialNeedsAuthorizationError(
        message,
        hint=f"re-authorize with: offramp credentials authorize {row.name} -w {row.workspace.name}",
        credential=row.name,
    )


def _is_fresh(expires_at: datetime | None, refreshed_at: datetime | None, now: datetime) -> bool:
    """Whether a token is good for a while yet: beyond a skew of 10% of its lifetime, at most a minute."""
    if expires_at is None:
        return True  # TikTok's long-term advertiser tokens do not expire on a timer
    lifetime = expires_at - refreshed_at if refreshed_at is not None else _MAX_SKEW * 10
    return now < expires_at - min(_MAX_SKEW, lifetime / 10)


class TikTokCredentialSession:
    """Hands out access tokens for one stored credential; safe to share between threads."""

    def __init__(self, ctx: Context, workspace: str, name: str) -> None:
        self._ctx = ctx
        self._workspace = workspace
        self._name = name
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._refreshed_at: datetime | None = None

    def settings(self) -> TikTokOfflineEventsCredentialSettings:
        """The credential's current settings, secrets decrypted."""
        with self._ctx.store.session() as session:
            row = get_credential(session, get_workspace(session, self._workspace), self._name)
            settings = credential_settings(self._ctx, row)
        assert isinstance(settings, TikTokOfflineEventsCredentialSettings)
        return settings

    def access_token(self) -> str:
        """A working access token: the cached one while fresh, else the stored one, else a refreshed one."""
        with self._lock:
            if self._token is not None and _is_fresh(self._expires_at, self._refreshed_at, utcnow()):
                return self._token
            with self._ctx.store.session() as session:
                row = get_credential(session, get_workspace(session, self._workspace), self._name)
                if row.status != "ready":
                    raise _needs_authorization(row)
                settings = credential_settings(self._ctx, row)
                assert isinstance(settings, TikTokOfflineEventsCredentialSettings)
                stored = settings.access_token.get_secret_value() if settings.access_token else None
                if stored and _is_fresh(row.access_token_expires_at, row.last_refreshed_at, utcnow()):
                    return self._remember(stored, row)
            return self._refresh(stale=stored)

    def refreshed_after_failure(self, failed_token: str) -> str:
        """A new access token after TikTok answered 40102 (expired) for ``failed_token``."""
        with self._lock:
            return self._refresh(stale=failed_token)

    def mark_refused(self, reason: str) -> None:
        """Record that TikTok refused this credential's token; uses fail fast until it is re-authorized."""
        with locked_credential(self._ctx, self._workspace, self._name) as (session, row):
            mark_needs_reauth(session, self._ctx, row, reason)
        with self._lock:
            self._token = None

    @staticmethod
    def authorization_url(settings: TikTokOfflineEventsCredentialSettings, state: str, redirect_uri: str | None) -> str:
        """The consent page an advertiser opens (`offramp credentials authorize`)."""
        return authorization_url(settings, state, redirect_uri)

    def complete_authorization(self, auth_code: str) -> TokenGrant:
        """Exchange an authorization code and store the tokens, encrypted; the credential becomes ready."""
        with locked_credential(self._ctx, self._workspace, self._name) as (session, row):
            settings = credential_settings(self._ctx, row)
            assert isinstance(settings, TikTokOfflineEventsCredentialSettings)
            grant = TikTokTokenClient(settings).exchange_code(auth_code)
            store_grant(session, self._ctx, row, grant, action="authorize")
        with self._lock:
            self._token = None
        return grant

    def describe_access(self) -> list[dict[str, Any]]:
        """The advertisers the token reaches, with name, status and role (`offramp credentials test`)."""
        try:
            return self._describe_access()
        except TikTokGrantRefusedError as exc:
            raise CredentialNeedsAuthorizationError(
                f"TikTok refused credential {self._name!r}: {exc.message}",
                hint=f"re-authorize with: offramp credentials authorize {self._name} -w {self._workspace}",
                credential=self._name,
            ) from None

    def _describe_access(self) -> list[dict[str, Any]]:
        settings = self.settings()
        base = f"{settings.api_base_url}/open_api/v1.3"
        with httpx.Client(auth=self.auth(), timeout=30.0) as client:
            grant_params = {"app_id": settings.app_id, "secret": settings.app_secret.get_secret_value()}
            listed = raise_for_envelope(*_answer(client.get(f"{base}/oauth2/advertiser/get/", params=grant_params)))
            advertisers = [item for item in listed.get("list", []) if isinstance(item, dict)]
            ids = [str(item.get("advertiser_id")) for item in advertisers]
            details: dict[str, dict[str, Any]] = {}
            if ids:
                params = {"advertiser_ids": json.dumps(ids)}
                info = raise_for_envelope(*_answer(client.get(f"{base}/advertiser/info/", params=params)))
                details = {str(item.get("advertiser_id")): item for item in info.get("list", [])}
        result = []
        for advertiser_id, item in zip(ids, advertisers, strict=True):
            detail = details.get(advertiser_id, {})
            # The authorizing user's role: the emulator reports it as `user_role`; TikTok's advertiser/info does
            # not document one (its `role` is the account's kind, e.g. ROLE_ADVERTISER), so it may be unknown.
            role = detail.get("user_role")
            result.append(
                {
                    "advertiser_id": advertiser_id,
                    "name": detail.get("name") or item.get("advertiser_name"),
                    "status": detail.get("status"),
                    "account_role": detail.get("role"),
                    "role": role,
                    "can_send": None if role is None else role in ("ADMIN", "OPERATOR"),
                }
            )
        return result

    def auth(self) -> TikTokAccessTokenAuth:
        """An httpx Auth that sends ``Access-Token`` and refreshes once on 40102."""
        return TikTokAccessTokenAuth(self)

    def _remember(self, token: str, row: Credential) -> str:
        self._token, self._expires_at, self._refreshed_at = token, row.access_token_expires_at, row.last_refreshed_at
        return token

    def _refresh(self, stale: str | None) -> str:
        refused: TikTokGrantRefusedError | None = None
        with locked_credential(self._ctx, self._workspace, self._name) as (session, row):
            if row.status != "ready":
                raise _needs_authorization(row)
            settings = credential_settings(self._ctx, row)
            assert isinstance(settings, TikTokOfflineEventsCredentialSettings)
            current = settings.access_token.get_secret_value() if settings.access_token else None
            # Another process (or thread) may have refreshed while we waited for the lock: use its token.
            if current and current != stale and _is_fresh(row.access_token_expires_at, row.last_refreshed_at, utcnow()):
                return self._remember(current, row)
            if settings.refresh_token is None:
                reason = "the access token expired and there is no refresh token"
                mark_needs_reauth(session, self._ctx, row, reason)
                refused = TikTokGrantRefusedError(TOKEN_EXPIRED, reason, None)
            else:
                try:
                    grant = TikTokTokenClient(settings).refresh(settings.refresh_token.get_secret_value())
                except TikTokGrantRefusedError as exc:
                    mark_needs_reauth(session, self._ctx, row, f"{exc.fields['code']}: {exc.fields['api_message']}")
                    refused = exc
                else:
                    store_grant(session, self._ctx, row, grant, action="refresh")
                    session.flush()
                    token = self._remember(grant.access_token, row)
        # Out of the transaction: its commit stored the new tokens (or the needs_reauth) before we go on.
        if refused is not None:
            raise CredentialNeedsAuthorizationError(
                f"TikTok refused credential {self._name!r}: {refused.message}",
                hint=f"re-authorize with: offramp credentials authorize {self._name} -w {self._workspace}",
                credential=self._name,
            )
        return token


def store_grant(session: Any, ctx: Context, row: Credential, grant: TokenGrant, *, action: str) -> None:
    """Save an authorization's or a refresh's tokens on the credential (caller holds its lock)."""
    values = {"access_token": grant.access_token}
    if grant.refresh_token:
        values["refresh_token"] = grant.refresh_token
    save_tokens(
        session, ctx, row, values, access_token_expires_at=grant.access_token_expires_at(utcnow()), action=action
    )


class TikTokAccessTokenAuth(httpx.Auth):
    """Adds ``Access-Token``; on 40102 refreshes once and resends; on 40105 marks the credential refused.

    TikTok reports token problems in HTTP-200 bodies, so the auth flow needs the response body.
    """

    requires_response_body = True

    def __init__(self, credential: TikTokCredentialSession) -> None:
        self._credential = credential

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._credential.access_token()
        request.headers["Access-Token"] = token
        response = yield request
        code = _envelope_code(response)
        if code == TOKEN_EXPIRED:
            request.headers["Access-Token"] = self._credential.refreshed_after_failure(token)
            response = yield request
            code = _envelope_code(response)
        if code == TOKEN_INVALID:
            self._credential.mark_refused(f"{code}: access token invalid or revoked")


def _answer(response: httpx.Response) -> tuple[Any, int]:
    try:
        return response.json(), response.status_code
    except ValueError:
        return None, response.status_code


def _envelope_code(response: httpx.Response) -> int | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    code = payload.get("code") if isinstance(payload, dict) else None
    return int(code) if isinstance(code, int) else None


__all__ = [
    "CredentialNeedsAuthorizationError",
    "TikTokAccessTokenAuth",
    "TikTokCredentialSession",
    "store_grant",
]
