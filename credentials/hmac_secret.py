"""The `hmac-secret` credential type: a shared secret that signs request bodies (HMAC-SHA256) instead of travelling
with them. The `webhook` destination uses it (docs/webhook-destination.md, "Signature")."""

from __future__ import annotations

from pydantic import Field, SecretStr

from offramp.core import CredentialType, PluginSettings, __version__


class HmacSecretSettings(PluginSettings):
    """Settings of an `hmac-secret` credential."""

    secret: SecretStr = Field(
        min_length=16,
        description="The shared signing secret, at least 16 characters; the receiver holds the same value. "
        "It never leaves offramp: only signatures made with it do.",
    )


CREDENTIAL_TYPE = CredentialType(
    name="hmac-secret",
    display_name="HMAC signing secret",
    version=__version__,
    settings=HmacSecretSettings,
    description="A shared secret that signs each request body with HMAC-SHA256.",
)

__all__ = ["CREDENTIAL_TYPE", "HmacSecretSettings"]
