"""Plugin settings: the base model every plugin's settings derive from, and how they are described and checked."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from offramp.core.errors import ConfigError, SettingsValidationError

ENV_PREFIX = "env:"


class PluginSettings(BaseModel):
    """Base class for the settings model of a credential or destination type.

    Unknown fields are refused, so a typo in a setting is an error rather than a silently ignored value.
    Declare secrets as ``SecretStr`` (they are then encrypted and never shown) and give every field a
    ``description``; registration refuses a field without one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


@dataclass(frozen=True)
class FieldSpec:
    """How one settings field looks to a user: what `offramp plugins show` prints."""

    name: str
    type: str
    required: bool
    default: Any
    secret: bool
    description: str


def _schema_type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "|".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    options = schema.get("anyOf")
    if options:
        kinds = [_schema_type(option) for option in options if option.get("type") != "null"]
        return " or ".join(kinds)
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"list of {_schema_type(schema.get('items', {}))}"
    bounds = []
    if "minimum" in schema:
        bounds.append(f">= {schema['minimum']}")
    if "maximum" in schema:
        bounds.append(f"<= {schema['maximum']}")
    if "pattern" in schema:
        bounds.append(f"matching {schema['pattern']}")
    return f"{kind} ({', '.join(bounds)})" if bounds else kind


def _is_secret_schema(schema: dict[str, Any]) -> bool:
    if schema.get("format") == "password":
        return True
    return any(_is_secret_schema(option) for option in schema.get("anyOf", []))


def describe_fields(model: type[PluginSettings]) -> list[FieldSpec]:
    """Describe every field of a settings model, in declaration order."""
    properties: dict[str, Any] = model.model_json_schema().get("properties", {})
    specs = []
    for name, info in model.model_fields.items():
        schema = properties.get(name, {})
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        specs.append(
            FieldSpec(
                name=name,
                type=_schema_type(schema),
                required=info.is_required(),
                default="(set)" if isinstance(default, SecretStr) else default,
                secret=_is_secret_schema(schema),
                description=info.description or "",
            )
        )
    return specs


def secret_field_names(model: type[PluginSettings]) -> frozenset[str]:
    """Names of the fields whose values must be encrypted and never shown."""
    return frozenset(spec.name for spec in describe_fields(model) if spec.secret)


def _error_field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) if loc else "settings"


def validate_settings(model: type[PluginSettings], values: dict[str, Any], subject: str) -> PluginSettings:
    """Validate ``values`` against ``model`` and report every bad field at once.

    Raises:
        SettingsValidationError: naming each field and what is wrong with it.
    """
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        known = ", ".join(model.model_fields)
        secrets = secret_field_names(model)
        problems: list[tuple[str, str]] = []
        for error in exc.errors(include_url=False):
            field = _error_field(error["loc"])
            if error["type"] == "extra_forbidden":
                problems.append((field, f"unknown field (valid fields: {known})"))
            elif error["type"] == "missing" and field in secrets:
                problems.append((field, "required secret, not set (give it as env:VARIABLE, or be prompted)"))
            elif error["type"] == "missing":
                problems.append((field, "required, not set"))
            else:
                problems.append((field, str(error["msg"]).removeprefix("Value error, ")))
        # Subjects read "credential 'x' (type-name)"; point at that type's field list.
        type_name = re.search(r"\(([a-z0-9-]+)\)$", subject)
        hint = f"see `offramp plugins show {type_name.group(1)}` for every field" if type_name else None
        raise SettingsValidationError(subject, problems, hint=hint) from None


def is_env_reference(value: object) -> bool:
    """Whether a raw setting value is an ``env:NAME`` reference."""
    return isinstance(value, str) and value.startswith(ENV_PREFIX)


def resolve_env_reference(value: str, field: str) -> str:
    """Read the environment variable an ``env:NAME`` reference names.

    Raises:
        ConfigError: when the variable is not set.
    """
    name = value[len(ENV_PREFIX) :]
    if not name:
        raise ConfigError(f"{field}: `env:` must be followed by a variable name", hint="write env:MY_VARIABLE")
    if name not in os.environ:
        raise ConfigError(f"{field}: environment variable {name} is not set", hint=f"export {name}=... and try again")
    return os.environ[name]


__all__ = [
    "ENV_PREFIX",
    "FieldSpec",
    "PluginSettings",
    "describe_fields",
    "is_env_reference",
    "resolve_env_reference",
    "secret_field_names",
    "validate_settings",
]
