"""offramp core: the plugin API, errors, plugin registry and descriptors, settings.

A plugin imports only from here (and, in its tests, from :mod:`offramp.core.testing`); see
docs/plugin-author-guide.md and docs/plugin-api.md.

The names are imported when first used (PEP 562 ``__getattr__``): ``import offramp.core``, which every ``offramp``
command does first, must not load pydantic, SQLAlchemy and the rest for ``offramp --version`` or ``--help``.
"""

from __future__ import annotations

import typing as _typing

from offramp.core._version import __version__
from offramp.core.lazy_names import lazy_names as _lazy_names

if _typing.TYPE_CHECKING:  # what the names are, for type checkers; at run time they come from __getattr__
    from offramp.core.config import FieldSpec, PluginSettings, describe_fields, secret_field_names, validate_settings
    from offramp.core.connection_checks import CheckStep, Verdict
    from offramp.core.destination_api import (
        DeliveryResult,
        EventColumns,
        FailedEvent,
        PreparedBatch,
        PreparedEvent,
        Preparer,
        RejectedColumns,
        RejectedEvent,
        Sender,
        concat_events,
        event_ids_of,
        joined_bodies,
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
    from offramp.core.hints import offramp_command
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
    from offramp.core.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_headers, verify_signature
    from offramp.core.urls import HttpUrlText, is_loopback

# The module each public name comes from; tests/test_public_api.py checks that each name of __all__ resolves.
_SOURCES: dict[str, tuple[str, ...]] = {
    "offramp.core.config": (
        "FieldSpec", "PluginSettings", "describe_fields", "secret_field_names", "validate_settings",
    ),
    "offramp.core.connection_checks": ("CheckStep", "Verdict"),
    "offramp.core.destination_api": (
        "DeliveryResult", "EventColumns", "FailedEvent", "PreparedBatch", "PreparedEvent", "Preparer",
        "RejectedColumns", "RejectedEvent", "Sender", "concat_events",
        "event_ids_of", "joined_bodies",
    ),
    "offramp.core.hints": ("offramp_command",),
    "offramp.core.errors": (
        "ConfigError", "DestinationError", "OfframpError", "PluginError", "SecretKeyError", "StateError", "Terminal",
        "Transient",
    ),
    "offramp.core.plugin_api": (
        "AccessReport", "ActionResult", "Authorization", "CredentialHandle", "CredentialHooks", "CredentialState",
        "CredentialStatus", "DestinationAction", "DestinationContext", "DestinationHooks", "LockedCredential",
    ),
    "offramp.core.plugin_types": ("CredentialType", "DestinationCapabilities", "DestinationType", "NoRunOptions"),
    "offramp.core.registry": ("BrokenPlugin", "Registry", "discover"),
    "offramp.core.signatures": ("SIGNATURE_HEADER", "TIMESTAMP_HEADER", "signature_headers", "verify_signature"),
    "offramp.core.urls": ("HttpUrlText", "is_loopback"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}


__getattr__ = _lazy_names(globals(), _MODULE_OF)


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF} - {"_lazy_names", "_typing"})


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
    "RejectedColumns",
    "RejectedEvent",
    "SIGNATURE_HEADER",
    "SecretKeyError",
    "Sender",
    "StateError",
    "TIMESTAMP_HEADER",
    "Terminal",
    "Transient",
    "Verdict",
    "__version__",
    "concat_events",
    "describe_fields",
    "discover",
    "event_ids_of",
    "is_loopback",
    "joined_bodies",
    "offramp_command",
    "secret_field_names",
    "signature_headers",
    "validate_settings",
    "verify_signature",
]
