"""Rules for the names users give to workspaces and configuration objects."""

from __future__ import annotations

import re

from offramp.core.errors import ConfigError

_OBJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$")
_WORKSPACE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def check_object_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid object name, else raise ConfigError saying what is allowed."""
    if not _OBJECT_NAME.match(name):
        raise ConfigError(
            f"invalid {kind} name {name!r}",
            hint="use 1-127 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def check_workspace_name(name: str) -> str:
    """Return ``name`` if it is a valid workspace name."""
    if not _WORKSPACE_NAME.match(name):
        raise ConfigError(
            f"invalid workspace name {name!r}",
            hint="use 1-63 lower-case letters, digits, '_' or '-', starting with a letter or digit",
        )
    return name


__all__ = ["check_object_name", "check_workspace_name"]
