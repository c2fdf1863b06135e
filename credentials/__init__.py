"""Credential types shipped with offramp."""

from offramp.credentials.static_token import StaticTokenSettings
from offramp.credentials.tiktok import (
    TIKTOK_AUTHORIZATION_URL,
    TIKTOK_PRODUCTION_API,
    TikTokOfflineEventsCredentialSettings,
)

__all__ = [
    "StaticTokenSettings",
    "TIKTOK_AUTHORIZATION_URL",
    "TIKTOK_PRODUCTION_API",
    "TikTokOfflineEventsCredentialSettings",
]
