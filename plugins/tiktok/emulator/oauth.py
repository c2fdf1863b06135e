"""Auth codes, grants and tokens: TikTok's OAuth for API for Business (docs/tiktok-api-facts.md, "OAuth").

A grant is one authorization of an app by a user; it owns the access tokens and the current refresh token issued
from it. Revoking the grant kills all of them. Refresh is UNCONFIRMED for advertisers, so it is behind
`EmulatorConfig.refresh_tokens`; with it off, tokens are long-term and never expire on their own.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from offramp.plugins.tiktok.emulator.config import EmulatorConfig
from offramp.plugins.tiktok.emulator.envelope import (
    ACCESS_TOKEN_EXPIRED,
    ACCESS_TOKEN_INVALID,
    ACCESS_TOKEN_MISSING,
    AUTH_CODE_INVALID,
    INVALID_APP,
    INVALID_GRANT_TYPE,
    NOT_IMPLEMENTED,
    REFRESH_TOKEN_EXPIRED,
    REFRESH_TOKEN_INVALID,
    ApiError,
)
from offramp.plugins.tiktok.emulator.seed import AppSeed, UserSeed


@dataclass
class AuthCode:
    code: str
    user: str
    app_id: str
    expires_at: float
    used: bool = False


@dataclass
class Grant:
    """One authorization: which user gave which app access to which advertisers."""

    grant_id: int
    app_id: str
    user: str
    advertiser_ids: list[str]
    scope: list[int]
    created_at: float
    refresh_token: str | None = None
    refresh_token_expires_at: float | None = None
    revoked: bool = False
    access_tokens_issued: int = 0


@dataclass
class AccessToken:
    grant: Grant
    issued_at: float
    # The lifetime it was issued with; `Faults.access_token_ttl` may shorten it afterwards.
    expires_at: float | None


@dataclass
class _RefreshToken:
    grant: Grant
    expires_at: float | None
    superseded: bool = False


@dataclass
class AuthStore:
    """The OAuth side of the emulator's state. Not thread-safe by itself: `EmulatorState` holds the lock."""

    config: EmulatorConfig
    apps: dict[str, AppSeed]
    users: dict[str, UserSeed]
    # Advertiser ids in seed order, to list a user's advertisers deterministically.
    advertiser_order: list[str]
    now: Callable[[], float]
    fault_ttl: Callable[[], int | None]
    codes: dict[str, AuthCode] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, _RefreshToken] = field(default_factory=dict)

    def seed_codes(self) -> None:
        """Create the seed's auth codes, valid from now for the configured lifetime."""
        default_app = next(iter(self.apps))
        for seeded in self.config.seed.auth_codes:
            self._add_code(seeded.code, seeded.user, seeded.app_id or default_app)

    def issue_code(self, user: str, app_id: str | None = None) -> str:
        """A fresh single-use auth code, as TikTok's consent page hands one to the redirect URI."""
        if user not in self.users:
            raise KeyError(f"no user named {user!r} in the seed")
        app = app_id or next(iter(self.apps))
        if app not in self.apps:
            raise KeyError(f"no app {app} in the seed")
        return self._add_code(f"auth-code-{secrets.token_hex(16)}", user, app).code

    def _add_code(self, code: str, user: str, app_id: str) -> AuthCode:
        record = AuthCode(code, user, app_id, self.now() + self.config.auth_code_ttl)
        self.codes[code] = record
        return record

    def check_app(self, app_id: Any, secret: Any) -> AppSeed:
        app = self.apps.get(app_id) if isinstance(app_id, str) else None
        if app is None or not isinstance(secret, str) or not hmac.compare_digest(app.secret, secret):
            raise ApiError(INVALID_APP)
        return app

    def exchange_code(self, body: dict[str, Any]) -> dict[str, Any]:
        """`oauth2/access_token/`: an auth code for a token (and, with refresh on, a refresh token)."""
        app = self.check_app(body.get("app_id"), body.get("secret"))
        code = body.get("auth_code")
        record = self.codes.get(code) if isinstance(code, str) else None
        if record is None or record.used or record.app_id != app.app_id or self.now() >= record.expires_at:
            raise ApiError(AUTH_CODE_INVALID)
        record.used = True
        user = self.users[record.user]
        grant = Grant(
            grant_id=len(self.grants) + 1,
            app_id=app.app_id,
            user=user.name,
            advertiser_ids=[a for a in self.advertiser_order if a in user.roles],
            scope=list(app.scope),
            created_at=self.now(),
        )
        self.grants.append(grant)
        token = self._issue_access_token(grant)
        data: dict[str, Any] = {"access_token": token, "advertiser_ids": grant.advertiser_ids, "scope": grant.scope}
        if self.config.refresh_tokens:
            data["token_type"] = "Bearer"
            data.update(self._lifetimes(self._issue_refresh_token(grant)))
        return data

    def refresh(self, body: dict[str, Any]) -> dict[str, Any]:
        """`oauth2/refresh_token/`: a new access token and a NEW refresh token; the used one is dead from now on."""
        if not self.config.refresh_tokens:
            raise ApiError(
                NOT_IMPLEMENTED,
                "Refreshing is not available: this emulator issues long-term access tokens (refresh_tokens is off).",
            )
        self.check_app(body.get("app_id"), body.get("secret"))
        grant_type = body.get("grant_type")
        if grant_type is not None and grant_type != "refresh_token":
            raise ApiError(INVALID_GRANT_TYPE)
        presented = body.get("refresh_token")
        record = self.refresh_tokens.get(presented) if isinstance(presented, str) else None
        if record is None or record.superseded or record.grant.revoked:
            raise ApiError(REFRESH_TOKEN_INVALID)
        if record.expires_at is not None and self.now() >= record.expires_at:
            raise ApiError(REFRESH_TOKEN_EXPIRED)
        record.superseded = True
        grant = record.grant
        data: dict[str, Any] = {"access_token": self._issue_access_token(grant), "token_type": "Bearer"}
        data.update(self._lifetimes(self._issue_refresh_token(grant)))
        data["advertiser_ids"] = grant.advertiser_ids
        data["scope"] = grant.scope
        return data

    def revoke_token(self, body: dict[str, Any]) -> dict[str, Any]:
        """`oauth2/revoke_token/`: revoke the grant behind an access token."""
        app = self.check_app(body.get("app_id"), body.get("secret"))
        token = body.get("access_token")
        record = self.access_tokens.get(token) if isinstance(token, str) else None
        if record is None or record.grant.revoked or record.grant.app_id != app.app_id:
            raise ApiError(ACCESS_TOKEN_INVALID)
        record.grant.revoked = True
        return {"app_id": app.app_id, "advertiser_ids": record.grant.advertiser_ids}

    def revoke_user(self, user: str) -> int:
        """Revoke every live grant of a user, as when they cancel the authorization in TikTok; returns how many."""
        if user not in self.users:
            raise KeyError(f"no user named {user!r} in the seed")
        live = [grant for grant in self.grants if grant.user == user and not grant.revoked]
        for grant in live:
            grant.revoked = True
        return len(live)

    def authenticate(self, token: str | None) -> AccessToken:
        """The access token behind an `Access-Token` header, or the error TikTok answers."""
        if not token:
            raise ApiError(ACCESS_TOKEN_MISSING)
        record = self.access_tokens.get(token)
        if record is None or record.grant.revoked:
            raise ApiError(ACCESS_TOKEN_INVALID)
        fault_ttl = self.fault_ttl()
        expires_at = record.issued_at + fault_ttl if fault_ttl is not None else record.expires_at
        if expires_at is not None and self.now() >= expires_at:
            raise ApiError(ACCESS_TOKEN_EXPIRED)
        return record

    def grants_view(self) -> list[dict[str, Any]]:
        """Every grant, for tests checking which refresh token is current (holds tokens: control API only)."""
        return [
            {
                "grant_id": grant.grant_id,
                "app_id": grant.app_id,
                "user": grant.user,
                "advertiser_ids": grant.advertiser_ids,
                "refresh_token": grant.refresh_token,
                "refresh_token_expires_at": grant.refresh_token_expires_at,
                "revoked": grant.revoked,
                "access_tokens_issued": grant.access_tokens_issued,
                "created_at": grant.created_at,
            }
            for grant in self.grants
        ]

    def _access_ttl(self) -> int | None:
        fault_ttl = self.fault_ttl()
        if fault_ttl is not None:
            return fault_ttl
        return self.config.access_token_ttl if self.config.refresh_tokens else None

    def _issue_access_token(self, grant: Grant) -> str:
        token = secrets.token_hex(20)
        now = self.now()
        ttl = self.config.access_token_ttl if self.config.refresh_tokens else None
        self.access_tokens[token] = AccessToken(grant, now, None if ttl is None else now + ttl)
        grant.access_tokens_issued += 1
        return token

    def _issue_refresh_token(self, grant: Grant) -> str:
        token = secrets.token_hex(20)
        ttl = self.config.refresh_token_ttl
        expires_at = None if ttl is None else self.now() + ttl
        self.refresh_tokens[token] = _RefreshToken(grant, expires_at)
        grant.refresh_token = token
        grant.refresh_token_expires_at = expires_at
        return token

    def _lifetimes(self, refresh_token: str) -> dict[str, Any]:
        data: dict[str, Any] = {"refresh_token": refresh_token}
        ttl = self._access_ttl()
        # A token that never expires has no expires_in (documented in docs/emulator.md).
        if ttl is not None:
            data["expires_in"] = ttl
        if self.config.refresh_token_ttl is not None:
            data["refresh_token_expires_in"] = self.config.refresh_token_ttl
        return data


__all__ = ["AccessToken", "AuthCode", "AuthStore", "Grant"]
