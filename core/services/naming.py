"""Rules for the names users give to workspaces and configuration objects.

Names are checked with a full match: ``re.match`` with ``$`` also accepts a name followed by a newline, and
``production\\n`` would then become a second workspace that looks like ``production``.
"""

from __future__ import annotations

import re

from offramp.core.errors import ConfigError

_OBJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,126}")
_WORKSPACE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def _shown(name: str) -> str:
    # A 1,000-character name would make the error line unreadable; its start and length say enough.
    return repr(name) if len(name) <= 60 else f"{name[:40]!r}... ({len(name)} characters)"


def check_object_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid object name, else raise ConfigError saying what is allowed."""
    if not isinstance(name, str) or not _OBJECT_NAME.fullmatch(name):
        raise ConfigError(
            f"invalid {kind} name {_shown(str(name))}",
            hint="use 1-127 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def check_workspace_name(name: str) -> str:
    """Return ``name`` if it is a valid workspace name."""
    if not isinstance(name, str) or not _WORKSPACE_NAME.fullmatch(name):
        raise ConfigError(
            f"invalid workspace name {_shown(str(name))}",
            hint="use 1-63 lower-case letters, digits, '_' or '-', starting with a letter or digit",
        )
    return name


__all__ = ["check_object_name", "check_workspace_name"]
