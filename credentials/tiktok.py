"""The `tiktok-offline-events` credential type: OAuth for TikTok API for Business, refresh token rotated."""

from __future__ import annotations

from pydantic import Field, SecretStr

from offramp.core import CredentialType, HttpUrlText, PluginSettings, __version__

TIKTOK_PRODUCTION_API = "https://business-api.tiktok.com"
TIKTOK_AUTHORIZATION_URL = "https://business-api.tiktok.com/portal/auth"


class TikTokOfflineEventsCredentialSettings(PluginSettings):
    """Settings of a `tiktok-offline-events` credential."""

    app_id: str = Field(
        min_length=1,
        description="App ID of your TikTok for Business developer app (My Apps > App detail).",
    )
    app_secret: SecretStr = Field(description="Secret of that developer app.")
    refresh_token: SecretStr | None = Field(
        default=None,
        description="OAuth refresh token; set by `offramp credentials authorize` and rotated automatically.",
    )
    access_token: SecretStr | None = Field(
        default=None,
        description="OAuth access token; cached by offramp, refreshed when TikTok reports it expired.",
    )
    api_base_url: HttpUrlText = Field(
        default=TIKTOK_PRODUCTION_API,
        description="Base URL of the TikTok Business API; point it at `offramp emulator tiktok` for tests.",
    )
    auth_url: HttpUrlText = Field(
        default=TIKTOK_AUTHORIZATION_URL,
        description="Authorization page an advertiser opens to grant access (app_id and state are appended).",
    )


CREDENTIAL_TYPE = CredentialType(
    name="tiktok-offline-events",
    display_name="TikTok Ads Offline Events (OAuth)",
    version=__version__,
    settings=TikTokOfflineEventsCredentialSettings,
    description="OAuth grant for TikTok API for Business; needs an Operator or Admin of the ad account.",
    implementation="offramp.credentials.tiktok_session:HOOKS",
    authorization_fields=("access_token", "refresh_token"),
    # The token endpoints and every API call use api_base_url; the consent page is auth_url.
    endpoint_fields=("api_base_url", "auth_url"),
    # TikTok's OAuth does not work for an Analyst of the ad account (docs/tiktok-api-facts.md, "OAuth").
    authorization_prompt="sign in with an Admin or Operator of the ad account, and approve",
)

__all__ = [
    "CREDENTIAL_TYPE",
    "TIKTOK_AUTHORIZATION_URL",
    "TIKTOK_PRODUCTION_API",
    "TikTokOfflineEventsCredentialSettings",
]
