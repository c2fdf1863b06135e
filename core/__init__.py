"""offramp core: the plugin API, errors, plugin registry and descriptors, settings.

A plugin imports only from here (and, in its tests, from :mod:`offramp.core.testing`); see
docs/plugin-author-guide.md and docs/plugin-api.md.
"""

from offramp.core._version import __version__
from offramp.core.config import (
    FieldSpec,
    PluginSettings,
    describe_fields,
    secret_field_names,
    validate_settings,
)
from offramp.core.connection_checks import CheckStep, Verdict
from offramp.core.destination_api import (
    DeliveryResult,
    EventColumns,
    FailedEvent,
    PreparedBatch,
    PreparedEvent,
    Preparer,
    RejectedEvent,
    Sender,
)
from offramp.core.errors import (
    ConfigError,
    DestinationError,
    OfframpError,
    PluginError,
    SecretKeyError,
    StateError,
    Terminal,
    Transient,
)
from offramp.core.plugin_api import (
    AccessReport,
    ActionResult,
    Authorization,
    CredentialHandle,
    CredentialHooks,
    CredentialState,
    CredentialStatus,
    DestinationAction,
    DestinationContext,
    DestinationHooks,
    LockedCredential,
)
from offramp.core.plugin_types import CredentialType, DestinationCapabilities, DestinationType, NoRunOptions
from offramp.core.registry import BrokenPlugin, Registry, discover
from offramp.core.urls import HttpUrlText

__all__ = [
    "AccessReport",
    "ActionResult",
    "Authorization",
    "BrokenPlugin",
    "CheckStep",
    "ConfigError",
    "CredentialHandle",
    "CredentialHooks",
    "CredentialState",
    "CredentialStatus",
    "CredentialType",
    "DeliveryResult",
    "DestinationAction",
    "DestinationCapabilities",
    "DestinationContext",
    "DestinationError",
    "DestinationHooks",
    "DestinationType",
    "EventColumns",
    "FailedEvent",
    "FieldSpec",
    "HttpUrlText",
    "LockedCredential",
    "NoRunOptions",
    "OfframpError",
    "PluginError",
    "PluginSettings",
    "PreparedBatch",
    "PreparedEvent",
    "Preparer",
    "Registry",
    "RejectedEvent",
    "SecretKeyError",
    "Sender",
    "StateError",
    "Terminal",
    "Transient",
    "Verdict",
    "__version__",
    "describe_fields",
    "discover",
    "secret_field_names",
    "validate_settings",
]
