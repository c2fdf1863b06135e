"""Process-wide settings read from the environment (``OFFRAMP_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from offramp.core.url_passwords import refuse_password_in_url

DEFAULT_WORKSPACE = "production"


class Environment(BaseSettings):
    """Where offramp keeps its state and keys. Every field reads ``OFFRAMP_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="OFFRAMP_", extra="ignore")

    home: Path = Field(default=Path(".offramp"), description="Folder of the SQLite store and the key file.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the state store.")
    secret_key: SecretStr | None = Field(default=None, description="Fernet keys, comma-separated, newest first.")
    workspace: str = Field(default=DEFAULT_WORKSPACE, description="Workspace used when a command names none.")
    auto_upgrade: bool = Field(default=True, description="Upgrade an older state store schema on first use.")

    @field_validator("database_url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        # Raised as offramp's own error (pydantic lets it through): a ValidationError would quote the URL whole.
        if value is not None:
            refuse_password_in_url(value, "OFFRAMP_DATABASE_URL")
        return value

    @property
    def key_file(self) -> Path:
        """The key file used when ``OFFRAMP_SECRET_KEY`` is not set."""
        return self.home / "secret.key"

    @property
    def store_url(self) -> str:
        """The state store URL: ``OFFRAMP_DATABASE_URL``, or SQLite in the home folder."""
        return self.database_url or f"sqlite:///{(self.home / 'offramp.db').resolve()}"


__all__ = ["DEFAULT_WORKSPACE", "Environment"]
