"""The `webhook` destination: prepared rows as signed JSON batches, POSTed to an HTTPS endpoint the user runs.

This module holds the descriptor and the settings only, so listing plugins stays light; the preparer, the sender
and the connection test live in :mod:`offramp.plugins.webhook.runtime`. Everything here and there is built on
:mod:`offramp.core`'s public API alone. docs/webhook-destination.md is the user's reference.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import Field, field_validator, model_validator

from offramp.core import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DestinationCapabilities,
    DestinationType,
    PluginSettings,
    __version__,
    is_loopback,
)

MAX_BATCH_SIZE = 1000

# Headers offramp writes itself, or that carry secrets (which belong in the credential, encrypted, not in settings
# that `destinations show` prints): refused in `headers`.
_RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "host",
        "connection",
        "user-agent",
        SIGNATURE_HEADER.lower(),
        TIMESTAMP_HEADER.lower(),
    }
)
_SECRET_LOOKING = ("signature", "token", "secret", "password", "api-key", "apikey", "api_key", "auth")
# RFC 9110 field names (tchar), and values of visible ASCII, space and tab: no control character (no header
# injection), and nothing the HTTP client cannot encode when it sends.
_HEADER_NAME = re.compile(r"\A[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
HEADER_VALUE = re.compile(r"\A[\t\x20-\x7e]*\Z")


def _json_text(value: Any) -> Any:
    """A mapping or list given on the command line (`--set headers={"X-A":"b"}`) arrives as JSON text."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError("is not valid JSON") from None
    return value


class WebhookDestinationSettings(PluginSettings):
    """Settings of a `webhook` destination (docs/webhook-destination.md, "Settings")."""

    url: str = Field(
        description="Where batches are POSTed: an https:// URL (plain http:// only to a loopback address)."
    )
    batch_size: int = Field(
        default=100, ge=1, le=MAX_BATCH_SIZE, description=f"Events per request, 1 to {MAX_BATCH_SIZE}."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description='Extra request headers, not secret (a JSON object: {"X-Tenant": "shop-1"}). Authorization, '
        "signature, token and cookie headers are refused: secrets belong in the credential.",
    )
    rename: dict[str, str] = Field(
        default_factory=dict,
        description='Keys to use instead of column names in the event JSON (a JSON object: {"order_id": "id"}).',
    )
    hash_columns: list[str] = Field(
        default_factory=list,
        description="Identifier columns sent as SHA-256 (hex) of their trimmed, lower-cased value "
        "(comma-separated or a JSON list: email,phone).",
    )
    event_id_column: str = Field(
        default="event_id", min_length=1, description="The column holding each event's id (one row, one event)."
    )

    @field_validator("url")
    @classmethod
    def _encrypted_unless_loopback(cls, value: str) -> str:
        # Kept as written (surrounding white space aside): some endpoints need their trailing slash.
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, such as https://example.com/offramp")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not hold a user name or password; put secrets in the credential")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError(
                "plain http is allowed only to a loopback address (127.0.0.1, ::1, localhost): the signature and "
                "the events would cross the network unencrypted; use https://"
            )
        return value

    @field_validator("headers", "rename", mode="before")
    @classmethod
    def _mapping_from_text(cls, value: Any) -> Any:
        return _json_text(value)

    @field_validator("hash_columns", mode="before")
    @classmethod
    def _list_from_text(cls, value: Any) -> Any:
        value = _json_text(value)
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            lowered = name.lower()
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if lowered in _RESERVED_HEADERS or any(word in lowered for word in _SECRET_LOOKING):
                raise ValueError(
                    f"header {name!r} may not be set here: offramp writes it, or it would hold a secret in plain "
                    "settings; put the secret in the destination's credential (static-token or hmac-secret)"
                )
            if not HEADER_VALUE.match(text):
                raise ValueError(
                    f"the value of header {name!r} may hold only visible ASCII characters, spaces and tabs (no "
                    "accented letters, no control characters); encode other text in the value yourself"
                )
        return value

    @model_validator(mode="after")
    def _keys_are_distinct(self) -> WebhookDestinationSettings:
        targets = list(self.rename.values())
        if any(not target for target in targets):
            raise ValueError("rename: a new key cannot be empty")
        repeated = sorted({target for target in targets if targets.count(target) > 1})
        if repeated:
            raise ValueError(f"rename: several columns renamed to {', '.join(repeated)}")
        if len(set(self.hash_columns)) != len(self.hash_columns):
            raise ValueError("hash_columns: a column is named twice")
        return self


DESTINATION_TYPE = DestinationType(
    name="webhook",
    display_name="Webhook (signed JSON batches)",
    version=__version__,
    settings=WebhookDestinationSettings,
    capabilities=DestinationCapabilities(
        max_batch_size=MAX_BATCH_SIZE,
        supports_dedupe=False,
        requests_per_second=20.0,
        max_in_flight=4,
        # An endpoint of the user's has no test view offramp knows of: a sandbox only dry-runs a webhook.
        test_traffic_option=None,
    ),
    credential_types=("hmac-secret", "static-token"),
    description="POSTs rows as JSON batches, signed with HMAC-SHA256 or sent with a bearer token, to your endpoint.",
    implementation="offramp.plugins.webhook.runtime:HOOKS",
)

__all__ = [
    "DESTINATION_TYPE",
    "HEADER_VALUE",
    "MAX_BATCH_SIZE",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookDestinationSettings",
    "is_loopback",
]
