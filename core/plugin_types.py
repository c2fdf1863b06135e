"""Descriptors: what a credential or destination type declares about itself.

A descriptor is metadata: names, settings models, capabilities. The behaviour is named by ``implementation``
(``"module:ATTRIBUTE"``, a :class:`~offramp.core.plugin_api.DestinationHooks` or
:class:`~offramp.core.plugin_api.CredentialHooks` instance), which the registry imports and checks when the plugin is
registered, so that a broken hook shows in ``offramp plugins list`` instead of in the middle of a run.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any

from offramp.core.config import PluginSettings
from offramp.core.errors import PluginError

# \A and \Z, not ^ and $: `$` also matches before a trailing newline, so "tiktok\n" would pass a `.match`.
NAME_PATTERN = re.compile(r"\A[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")


def _load_implementation(reference: str | None, name: str) -> Any:
    if reference is None:
        raise PluginError(f"plugin {name!r} has no implementation yet", hint="upgrade the plugin's distribution")
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


class NoRunOptions(PluginSettings):
    """The run options of a destination type that reads none besides those every destination shares."""


@dataclass(frozen=True)
class CredentialType:
    """A kind of credential: its settings model and the code that uses it.

    Args:
        name: Stable identifier, lower-case words joined by hyphens (``tiktok-offline-events``).
        display_name: What a person reads in lists.
        version: The plugin's version.
        settings: The pydantic model its settings must satisfy; secrets typed ``SecretStr``.
        description: One sentence on what it authenticates.
        implementation: ``"module:attribute"`` of the behaviour, imported lazily.
        authorization_fields: Secret fields of which at least one must hold a value before the credential can be
            used (for OAuth: the tokens an authorization produces). Without any, the credential's status is
            ``needs_authorization``.
        endpoint_fields: Settings that say where the credential's secrets are sent (API and authorization URLs).
            Changing one requires the secrets to be given again with the change, and drops the tokens not given
            (authorize again): a secret is only ever sent to the host it was given for.
        authorization_prompt: What ``offramp credentials authorize`` asks of the person opening the consent page
            (``sign in with an Admin or Operator of the ad account, and approve``).
    """

    name: str
    display_name: str
    version: str
    settings: type[PluginSettings]
    description: str = ""
    implementation: str | None = None
    authorization_fields: tuple[str, ...] = ()
    endpoint_fields: tuple[str, ...] = ()
    authorization_prompt: str = "sign in and approve"

    def load(self) -> Any:
        """Import and return the implementation (a :class:`~offramp.core.plugin_api.CredentialHooks`), or None."""
        return _load_implementation(self.implementation, self.name) if self.implementation else None


@dataclass(frozen=True)
class DestinationCapabilities:
    """What the framework needs to know to drive a destination.

    Args:
        max_batch_size: The most rows the vendor takes in one request.
        event_sources: The event sources the destination can send to (for TikTok: ``offline``, ``web``).
        supports_dedupe: Whether the vendor deduplicates on a stable event id, which makes resends harmless.
        dedup_window_seconds: How long after an event's first delivery the vendor drops a resend of it (TikTok:
            48 hours); None when it deduplicates for ever. After the window, the runner does not resend events
            whose outcome is unknown (a run died with their request in flight) unless the user asks.
        requests_per_second: The most requests per second the runner sends per credential, shared by every run of
            the process that uses it (the vendor's rate limit, with a margin).
        max_in_flight: The most requests one run has in flight at once; ``--concurrency`` may ask for fewer.
        test_traffic_option: The run option that sends a run's events to the vendor's test view instead of its live
            stream, where they are shown but never attributed (TikTok: ``test_event_code``, its Test Events view).
            A run whose options set it is test traffic. Every send from a sandbox must be: a sandbox's non-dry run
            sets it from ``--test-event-code``, the orchestration's option or the sandbox's test code, and is
            refused without one. None: the vendor cannot keep test traffic apart, so a sandbox only dry-runs the type.
    """

    max_batch_size: int
    event_sources: tuple[str, ...] = ()
    supports_dedupe: bool = False
    dedup_window_seconds: float | None = None
    requests_per_second: float = 10.0
    max_in_flight: int = 4
    test_traffic_option: str | None = None


@dataclass(frozen=True)
class DestinationType:
    """A kind of destination: settings model, capabilities, accepted credential types, behaviour.

    Args:
        name: Stable identifier (``tiktok-ads-offline-events``).
        display_name: What a person reads in lists.
        version: The plugin's version.
        settings: The pydantic model its settings must satisfy.
        capabilities: Batch limits and supported event sources.
        credential_types: Names of the credential types a destination of this type may be bound to.
        description: One sentence on what it sends where.
        implementation: ``"module:ATTRIBUTE"`` of its :class:`~offramp.core.plugin_api.DestinationHooks`.
        run_options: The model of the orchestration options this type reads (TikTok: default phone region,
            attribution window, event name map, test event code); core keeps the options every destination shares
            (mode, timezone, schedule, source limits). An orchestration's options are validated against both.
        columns: The column contract: every query column name the type reads (TikTok: ``email``, ``phone``,
            ``event``, ``timestamp`` ...). Empty for a type that reads every column (a webhook sends them all).
            A run lists the query's columns that are not in it as not used, with the closest contract column as a
            suggestion (``emial (did you mean email?)``).
    """

    name: str
    display_name: str
    version: str
    settings: type[PluginSettings]
    capabilities: DestinationCapabilities
    credential_types: tuple[str, ...] = field(default=())
    description: str = ""
    implementation: str | None = None
    run_options: type[PluginSettings] = NoRunOptions
    columns: tuple[str, ...] = ()

    def load(self) -> Any:
        """Import and return the implementation."""
        return _load_implementation(self.implementation, self.name)


__all__ = ["NAME_PATTERN", "CredentialType", "DestinationCapabilities", "DestinationType", "NoRunOptions"]
