"""The `username-password` credential type: a login (user name and password), for an SMTP server that alert
emails are sent through (`offramp alerts channels add NAME --type email --credential LOGIN`)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from offramp.core import CredentialType, PluginSettings, __version__


class UsernamePasswordSettings(PluginSettings):
    """Settings of a `username-password` credential."""

    username: str = Field(min_length=1, description="The user name to log in as (often an email address).")
    password: SecretStr = Field(min_length=1, description="The password; stored encrypted, never printed.")


CREDENTIAL_TYPE = CredentialType(
    name="username-password",
    display_name="User name and password",
    version=__version__,
    settings=UsernamePasswordSettings,
    description="A login: a user name and a password (an SMTP server's, for alert emails).",
)

__all__ = ["CREDENTIAL_TYPE", "UsernamePasswordSettings"]
