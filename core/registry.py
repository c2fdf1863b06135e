"""The plugin registry: credential and destination types, filled from entry points.

Discovery and the registry are separate: :class:`Registry` is a typed pair of dicts with ``register``/``get``;
:func:`discover` fills one from the entry point groups ``offramp.credentials`` and ``offramp.destinations``.
Our own types register through the same groups, so a third-party plugin is a first-class citizen.

Registering a type imports its implementation and checks every hook's signature
(:func:`offramp.core.plugin_api.check_hooks`). A plugin that fails to import or to validate is recorded as broken,
with its reason, and everything else keeps working. Two plugins that claim one name make discovery fail with an
error naming both distributions, because silently picking one would send data through code the user did not choose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Literal

from offramp.core.config import PluginSettings
from offramp.core.errors import PluginConflictError, PluginError, PluginNotFoundError
from offramp.core.plugin_api import CredentialHooks, DestinationHooks, check_hooks
from offramp.core.plugin_types import NAME_PATTERN, CredentialType, DestinationType

logger = logging.getLogger(__name__)

Kind = Literal["credential", "destination"]
GROUPS: dict[Kind, str] = {"credential": "offramp.credentials", "destination": "offramp.destinations"}
_DESCRIPTOR: dict[Kind, type] = {"credential": CredentialType, "destination": DestinationType}


@dataclass(frozen=True)
class Registered:
    """A loaded plugin type, its checked hooks, and where it came from."""

    kind: Kind
    descriptor: CredentialType | DestinationType
    distribution: str
    entry_point: str
    hooks: DestinationHooks | CredentialHooks | None = None


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded; listed so the user sees why it is missing."""

    kind: Kind
    name: str
    distribution: str
    entry_point: str
    reason: str


def validate_descriptor(kind: Kind, descriptor: object, entry_name: str | None = None) -> None:
    """Check a descriptor's declared interface; raise :class:`PluginError` naming what is wrong."""
    expected = _DESCRIPTOR[kind]
    if not isinstance(descriptor, expected):
        raise PluginError(f"entry point must point at a {expected.__name__}, got {type(descriptor).__name__}")
    assert isinstance(descriptor, CredentialType | DestinationType)
    if not NAME_PATTERN.match(descriptor.name):
        raise PluginError(f"name {descriptor.name!r} must be lower-case words joined by hyphens")
    if entry_name is not None and entry_name != descriptor.name:
        raise PluginError(f"entry point is named {entry_name!r} but the type declares {descriptor.name!r}")
    settings = descriptor.settings
    if not (isinstance(settings, type) and issubclass(settings, PluginSettings)):
        raise PluginError("settings must be a subclass of offramp.core.PluginSettings")
    if settings.model_config.get("extra") != "forbid":
        raise PluginError("settings model must set extra='forbid'")
    undocumented = [name for name, info in settings.model_fields.items() if not info.description]
    if undocumented:
        raise PluginError(f"settings fields without a description: {', '.join(undocumented)}")
    if isinstance(descriptor, DestinationType):
        capabilities = descriptor.capabilities
        if capabilities.max_batch_size < 1:
            raise PluginError("capabilities.max_batch_size must be at least 1")
        if capabilities.requests_per_second <= 0 or capabilities.max_in_flight < 1:
            raise PluginError("capabilities.requests_per_second must be above 0 and max_in_flight at least 1")
        options = descriptor.run_options
        if not (isinstance(options, type) and issubclass(options, PluginSettings)):
            raise PluginError("run_options must be a subclass of offramp.core.PluginSettings")
        if options.model_config.get("extra") != "forbid":
            raise PluginError("run_options model must set extra='forbid'")
        undocumented = [name for name, info in options.model_fields.items() if not info.description]
        if undocumented:
            raise PluginError(f"run options without a description: {', '.join(undocumented)}")
        test_option = capabilities.test_traffic_option
        if test_option is not None and test_option not in options.model_fields:
            # A sandbox's runs set this option to send test traffic; one the type does not read would send live.
            raise PluginError(f"capabilities.test_traffic_option {test_option!r} is not one of the run options")
        if descriptor.implementation is None:
            raise PluginError("a destination type needs an implementation ('module:HOOKS')")


def load_hooks(kind: Kind, descriptor: CredentialType | DestinationType) -> DestinationHooks | CredentialHooks | None:
    """Import a type's implementation and check its hooks; raise :class:`PluginError` naming what is wrong."""
    hooks = descriptor.load()
    if hooks is None and kind == "credential":
        return None
    try:
        check_hooks(hooks, kind)
    except PluginError as exc:
        raise PluginError(f"{descriptor.implementation}: {exc.message}", hint=exc.hint) from None
    assert isinstance(hooks, DestinationHooks | CredentialHooks)
    return hooks


@dataclass
class Registry:
    """Credential and destination types by name, plus the plugins that failed to load."""

    credentials: dict[str, Registered] = field(default_factory=dict)
    destinations: dict[str, Registered] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)

    def _table(self, kind: Kind) -> dict[str, Registered]:
        return self.credentials if kind == "credential" else self.destinations

    def register(
        self,
        kind: Kind,
        descriptor: CredentialType | DestinationType,
        distribution: str = "(in process)",
        entry_point: str = "",
    ) -> None:
        """Add a type, its hooks imported and checked; a second type with the same name raises
        :class:`PluginConflictError`, hooks that do not check out :class:`PluginError`."""
        validate_descriptor(kind, descriptor)
        hooks = load_hooks(kind, descriptor)
        table = self._table(kind)
        existing = table.get(descriptor.name)
        if existing is not None:
            raise PluginConflictError(
                f"two {kind} types are named {descriptor.name!r}: one from distribution "
                f"{existing.distribution!r} ({existing.entry_point}), one from {distribution!r} ({entry_point})",
                hint=f"uninstall one of them: pip uninstall {existing.distribution}, or pip uninstall {distribution}",
                name=descriptor.name,
                distributions=(existing.distribution, distribution),
            )
        table[descriptor.name] = Registered(kind, descriptor, distribution, entry_point, hooks)

    def credential_type(self, name: str) -> CredentialType:
        """The credential type registered as ``name``."""
        found = self._get("credential", name).descriptor
        assert isinstance(found, CredentialType)
        return found

    def destination_type(self, name: str) -> DestinationType:
        """The destination type registered as ``name``."""
        found = self._get("destination", name).descriptor
        assert isinstance(found, DestinationType)
        return found

    def destination_hooks(self, name: str) -> DestinationHooks:
        """The checked hooks of the destination type ``name``."""
        hooks = self._get("destination", name).hooks
        assert isinstance(hooks, DestinationHooks)
        return hooks

    def credential_hooks(self, name: str) -> CredentialHooks:
        """The checked hooks of the credential type ``name`` (empty ones for a type that only holds secrets)."""
        hooks = self._get("credential", name).hooks
        return hooks if isinstance(hooks, CredentialHooks) else CredentialHooks()

    def _get(self, kind: Kind, name: str) -> Registered:
        table = self._table(kind)
        if name in table:
            return table[name]
        for broken in self.broken:
            if broken.kind == kind and broken.name == name:
                raise PluginNotFoundError(
                    f"{kind} type {name!r} is installed but broken: {broken.reason}",
                    hint=f"fix or reinstall distribution {broken.distribution!r}",
                )
        known = ", ".join(sorted(table)) or "none"
        raise PluginNotFoundError(
            f"no {kind} type named {name!r} (installed: {known})", hint="see `offramp plugins list`"
        )

    def find(self, name: str) -> Registered:
        """A type of either kind by name (credential types first)."""
        for table in (self.credentials, self.destinations):
            if name in table:
                return table[name]
        for broken in self.broken:
            if broken.name == name:
                raise PluginNotFoundError(
                    f"plugin {name!r} is installed but broken: {broken.reason}",
                    hint=f"fix or reinstall distribution {broken.distribution!r}",
                )
        known = ", ".join(sorted([*self.credentials, *self.destinations])) or "none"
        raise PluginNotFoundError(f"no plugin named {name!r} (installed: {known})", hint="see `offramp plugins list`")


def _distribution_name(entry: EntryPoint) -> str:
    dist = entry.dist
    return dist.metadata["Name"] if dist is not None else "(unknown distribution)"


def discover() -> Registry:
    """Build a registry from the installed entry points."""
    registry = Registry()
    for kind, group in GROUPS.items():
        seen: set[tuple[str, str, str]] = set()
        for entry in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
            distribution = _distribution_name(entry)
            # A distribution can be visible twice on sys.path (an editable install next to a build dir).
            identity = (entry.name, entry.value, distribution)
            if identity in seen:
                continue
            seen.add(identity)
            try:
                descriptor = entry.load()
                validate_descriptor(kind, descriptor, entry.name)
                load_hooks(kind, descriptor)  # imported once more by register(): a module import is cached
            except Exception as exc:  # noqa: BLE001 - any failure of plugin code makes it broken, not fatal
                reason = f"{type(exc).__name__}: {exc}"
                logger.warning("%s plugin %r from %s is broken: %s", kind, entry.name, distribution, reason)
                registry.broken.append(BrokenPlugin(kind, entry.name, distribution, entry.value, reason))
                continue
            registry.register(kind, descriptor, distribution, entry.value)
    return registry


__all__ = [
    "GROUPS",
    "BrokenPlugin",
    "Kind",
    "Registered",
    "Registry",
    "discover",
    "load_hooks",
    "validate_descriptor",
]
