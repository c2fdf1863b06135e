"""The `static-token` credential type: one secret token, for simple APIs and the dummy destination."""

from __future__ import annotations

from pydantic import Field, SecretStr

from offramp.core import CredentialType, PluginSettings, __version__


class StaticTokenSettings(PluginSettings):
    """Settings of a `static-token` credential."""

    token: SecretStr = Field(description="The API token, sent as is.")


CREDENTIAL_TYPE = CredentialType(
    name="static-token",
    display_name="Static API token",
    version=__version__,
    settings=StaticTokenSettings,
    description="A single long-lived token.",
)

__all__ = ["CREDENTIAL_TYPE", "StaticTokenSettings"]
