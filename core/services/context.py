"""What every service call needs: the environment, the store, the registry, the keys and who acts."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field

from offramp.core.environment import Environment
from offramp.core.registry import Registry, discover
from offramp.core.secrets import SecretBox, load_secret_box
from offramp.core.state.store import StateStore


def current_actor() -> str:
    """The OS user running this process, the default actor of audit events."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        return f"uid:{os.getuid()}"


@dataclass
class Context:
    """Services' view of one process: loaded lazily so commands that need no keys run without them."""

    env: Environment
    store: StateStore
    actor: str = field(default_factory=current_actor)
    _registry: Registry | None = None
    _box: SecretBox | None = None

    @property
    def registry(self) -> Registry:
        """The plugin registry, discovered on first use."""
        if self._registry is None:
            self._registry = discover()
        return self._registry

    @property
    def secret_box(self) -> SecretBox:
        """The encryption keys, loaded on first use (raises SecretKeyError naming what to set)."""
        if self._box is None:
            self._box = load_secret_box(self.env)
        return self._box


__all__ = ["Context", "current_actor"]
