"""offramp core: errors, plugin registry and descriptors, settings, state store, secrets."""

from offramp.core._version import __version__
from offramp.core.config import (
    FieldSpec,
    PluginSettings,
    describe_fields,
    secret_field_names,
    validate_settings,
)
from offramp.core.errors import (
    ConfigError,
    DestinationError,
    OfframpError,
    PluginError,
    RowRejected,
    SecretKeyError,
    StateError,
    Terminal,
    Transient,
)
from offramp.core.plugin_types import CredentialType, DestinationCapabilities, DestinationType
from offramp.core.registry import BrokenPlugin, Registry, discover
from offramp.core.urls import HttpUrlText

__all__ = [
    "BrokenPlugin",
    "ConfigError",
    "CredentialType",
    "DestinationCapabilities",
    "DestinationError",
    "DestinationType",
    "FieldSpec",
    "HttpUrlText",
    "OfframpError",
    "PluginError",
    "PluginSettings",
    "Registry",
    "RowRejected",
    "SecretKeyError",
    "StateError",
    "Terminal",
    "Transient",
    "__version__",
    "describe_fields",
    "discover",
    "secret_field_names",
    "validate_settings",
]
