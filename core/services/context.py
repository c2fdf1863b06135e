"""What every service call needs: the environment, the store, the registry, the keys and who acts."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field

from sqlalchemy import select

from offramp.core.environment import Environment
from offramp.core.registry import Registry, discover
from offramp.core.secrets import SecretBox, load_secret_box
from offramp.core.state.locks import SECRET_MODELS
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
        """The encryption keys, loaded on first use (raises SecretKeyError naming what to set).

        The keys must open a secret the store already holds: a wrong key would otherwise encrypt new secrets
        under a key the rest of the store cannot be read with, and the mix would surface only much later.
        """
        if self._box is None:
            box = load_secret_box(self.env)
            _check_keys_open_store(self.store, box)
            self._box = box
        return self._box


def first_stored_secret(store: StateStore) -> tuple[str, str] | None:
    """(what, ciphertext) of one stored secret, or None when the store holds none."""
    with store.session() as session:
        for model in SECRET_MODELS:
            for name, records in session.execute(select(model.name, model.secrets)):
                for field_name, record in records.items():
                    return f"{model.__name__.lower()} {name!r} field {field_name}", str(record["ciphertext"])
    return None


def _check_keys_open_store(store: StateStore, box: SecretBox) -> None:
    """Decrypt one stored secret (raises SecretKeyError naming what to set if no key opens it)."""
    found = first_stored_secret(store)
    if found is not None:
        box.decrypt(found[1], found[0])


__all__ = ["Context", "current_actor", "first_stored_secret"]
