"""The `username-password` credential type: a login (user name and password) for one SMTP server, that alert
emails are sent through (`offramp alerts channels add NAME --type email --credential LOGIN`).

The login belongs to its server: ``host`` (and ``port`` when given) say where the password may be sent, and an
email channel whose SMTP server is another is refused, so that a channel (a sandbox's, or one whose --host was
changed) cannot carry the password elsewhere. They are endpoint fields: changing them needs the password again."""

from __future__ import annotations

from pydantic import Field, SecretStr

from offramp.core import CredentialType, PluginSettings, __version__


class UsernamePasswordSettings(PluginSettings):
    """Settings of a `username-password` credential."""

    host: str = Field(
        min_length=1,
        pattern=r"^[^\s/@]+$",
        description="The SMTP server this login is for (mail.example.com); the password is sent to no other.",
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Its port, when the login is for that one only (587)."
    )
    username: str = Field(min_length=1, description="The user name to log in as (often an email address).")
    password: SecretStr = Field(min_length=1, description="The password; stored encrypted, never printed.")


CREDENTIAL_TYPE = CredentialType(
    name="username-password",
    display_name="User name and password",
    version=__version__,
    settings=UsernamePasswordSettings,
    description="A login: a user name and a password for one SMTP server (host), for alert emails.",
    endpoint_fields=("host", "port"),
)

__all__ = ["CREDENTIAL_TYPE", "UsernamePasswordSettings"]
