"""Settings of typed objects (credentials, destinations): plain values in JSON, secrets encrypted.

A stored object keeps two maps: ``settings`` (the non-secret values the user set, JSON) and ``secrets``
(``{field: {"ciphertext", "changed_at", "source"}}``), where ``source`` is the environment variable a secret was
read from, if any, so exports can refer to it instead of carrying the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from offramp.core.config import (
    PluginSettings,
    is_env_reference,
    resolve_env_reference,
    secret_field_names,
    validate_settings,
)
from offramp.core.errors import ConfigError
from offramp.core.secrets import SecretBox
from offramp.core.state.models import utcnow

SecretRecords = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ResolvedSettings:
    """Validated settings ready to store."""

    settings: PluginSettings
    plain: dict[str, Any]
    secret_values: dict[str, str]
    secret_sources: dict[str, str | None]


def resolve_settings(
    model: type[PluginSettings],
    raw: dict[str, Any],
    subject: str,
    *,
    kept_secrets: dict[str, str] | None = None,
    allow_literal_secrets: bool = True,
) -> ResolvedSettings:
    """Turn user input into validated settings.

    ``env:VAR`` values of secret fields are read from the environment. ``kept_secrets`` are current secret values
    used for secret fields the input does not mention (so an update need not repeat them).

    ``env:`` in a field that is not secret is refused rather than resolved: the value would be stored and exported
    as plain text (``app_id: env:APP_SECRET`` would put a secret in the clear), and keeping it as a reference
    resolved at each use would let the environment, not the reviewed configuration, decide a setting such as the
    host the secrets are sent to.

    Raises:
        ConfigError: for an unset variable, ``env:`` in a field that is not secret, a NUL character, or, with
            ``allow_literal_secrets=False``, a secret written as a value.
        SettingsValidationError: naming every invalid field at once.
    """
    secrets = secret_field_names(model)
    values: dict[str, Any] = {}
    sources: dict[str, str | None] = {}
    for field, value in raw.items():
        if isinstance(value, str) and "\x00" in value:
            raise ConfigError(
                f"{subject}: {field} holds a NUL character (\\x00), which no setting can contain",
                hint=f"remove it from {field} and try again",
            )
        if is_env_reference(value) and field not in secrets and field in model.model_fields:
            listed = ", ".join(sorted(secrets)) or "none"
            raise ConfigError(
                f"{subject}: {field} is not a secret, so `env:` is not read for it "
                "(its value would be stored and exported as plain text)",
                hint=f"write {field}'s value itself; env:VARIABLE is only for the secret fields ({listed})",
            )
        if is_env_reference(value):
            values[field] = resolve_env_reference(value, f"{subject}: {field}")
            if field in secrets:
                sources[field] = value.split(":", 1)[1]
        else:
            if field in secrets and value is not None:
                if not allow_literal_secrets:
                    raise ConfigError(
                        f"{subject}: {field} is a secret and is written as a value",
                        hint=f"write it as {field}: env:VARIABLE and export VARIABLE before applying",
                    )
                sources[field] = None
            values[field] = value
    for field, value in (kept_secrets or {}).items():
        values.setdefault(field, value)
    validated = validate_settings(model, values, subject)
    secret_values: dict[str, str] = {}
    for field in secrets:
        value = getattr(validated, field)
        if isinstance(value, SecretStr):
            secret_values[field] = value.get_secret_value()
    plain = validated.model_dump(mode="json", exclude_unset=True, exclude=set(secrets))
    return ResolvedSettings(validated, plain, secret_values, sources)


def encrypt_secrets(
    box: SecretBox,
    resolved: ResolvedSettings,
    previous: SecretRecords,
    previous_values: dict[str, str],
) -> tuple[SecretRecords, list[str]]:
    """Secret records for ``resolved``, keeping the old record where the value did not change.

    Returns the records and the names of the secret fields that changed (set, replaced or removed).
    """
    records: SecretRecords = {}
    changed: list[str] = []
    now = utcnow().isoformat()
    for field, value in resolved.secret_values.items():
        source = resolved.secret_sources.get(field, (previous.get(field) or {}).get("source"))
        if field in previous and previous_values.get(field) == value:
            records[field] = {**previous[field], "source": source}
            continue
        records[field] = {"ciphertext": box.encrypt(value), "changed_at": now, "source": source}
        changed.append(field)
    changed.extend(field for field in previous if field not in records)
    return records, sorted(changed)


def decrypt_secrets(box: SecretBox, records: SecretRecords, subject: str) -> dict[str, str]:
    """Plaintext of every stored secret; the error names the object and field a key cannot open."""
    return {field: box.decrypt(record["ciphertext"], f"{subject} field {field}") for field, record in records.items()}


def load_settings(
    model: type[PluginSettings], plain: dict[str, Any], records: SecretRecords, box: SecretBox, subject: str
) -> PluginSettings:
    """The full, validated settings of a stored object, secrets decrypted into ``SecretStr``."""
    return validate_settings(model, {**plain, **decrypt_secrets(box, records, subject)}, subject)


def secret_status(model: type[PluginSettings], records: SecretRecords) -> dict[str, str]:
    """For `show`: whether each secret field is set and when it last changed, never its value."""
    status = {}
    for field in sorted(secret_field_names(model)):
        record = records.get(field)
        status[field] = f"set (changed {record['changed_at']})" if record else "not set"
    return status


def effective_settings(model: type[PluginSettings], plain: dict[str, Any]) -> dict[str, Any]:
    """Non-secret settings including defaults, for `show`."""
    secrets = secret_field_names(model)
    result: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name in secrets:
            continue
        if name in plain:
            result[name] = plain[name]
        elif not info.is_required():
            result[name] = info.get_default(call_default_factory=True)
    return result


__all__ = [
    "ResolvedSettings",
    "SecretRecords",
    "decrypt_secrets",
    "effective_settings",
    "encrypt_secrets",
    "load_settings",
    "resolve_settings",
    "secret_status",
]
