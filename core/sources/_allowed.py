"""What a DuckDB source's SQL may read: its database file and the paths the orchestration names (``allowed_paths``).

DuckDB runs in offramp's process, so without a limit a query reads whatever offramp can: the key file, the state
store, ``/proc/self/environ`` (where ``OFFRAMP_SECRET_KEY`` and warehouse URLs live). The paths an orchestration
allows are therefore checked against offramp's own files, which are never allowed, whatever the orchestration says.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from offramp.core.environment import Environment
from offramp.core.errors import ConfigError

OPTION = "allowed_paths"
FLAG = "--allow-path"
# The process's own state and the machine's devices: never data to send.
_SYSTEM = (Path("/proc"), Path("/sys"), Path("/dev"))


def _absolute(text: str) -> Path:
    # abspath, not resolve(): DuckDB compares the paths the SQL names as written, so a symlinked directory stays
    # the name the user gave it.
    return Path(os.path.abspath(os.path.expanduser(text)))


def protected_paths(env: Environment | None = None) -> list[tuple[Path, str]]:
    """offramp's own files and the system's, each with how to name it in a message."""
    env = env or Environment()
    protected = [
        (_absolute(str(env.home)), "offramp's home (OFFRAMP_HOME)"),
        (_absolute(str(env.key_file)), "the key file"),
    ]
    try:
        store = make_url(env.store_url)
    except ArgumentError:
        store = None
    if store is not None and store.get_backend_name() == "sqlite" and store.database not in (None, "", ":memory:"):
        protected.append((_absolute(str(store.database)), "the state store"))
    protected.extend((path, f"the system's {path} files") for path in _SYSTEM)
    return protected


def _overlap(path: Path, other: Path) -> bool:
    return path == other or path in other.parents or other in path.parents


def check_allowed_paths(paths: Sequence[str], env: Environment | None = None) -> list[Path]:
    """The allowed paths as absolute paths; ConfigError for one that is empty, or holds or lies in offramp's home,
    its key file, its SQLite store, /proc, /sys or /dev."""
    checked: list[Path] = []
    protected = protected_paths(env)
    for text in paths:
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(
                f"{OPTION}: {text!r} is not a path", hint=f"name a file or directory, e.g. {FLAG} /srv/exports/orders"
            )
        path = _absolute(text.strip())
        for other, what in protected:
            # Resolved too: DuckDB follows symbolic links, so a link to the home would open it.
            if _overlap(path, other) or _overlap(path.resolve(), other.resolve()):
                relation = "is" if path == other else "lies in" if other in path.parents else "holds"
                raise ConfigError(
                    f"{OPTION}: {path} {relation} {what} ({other}), which a DuckDB source may never read",
                    hint=f"name only the directories that hold the data files, e.g. {FLAG} /srv/exports/orders",
                )
        checked.append(path)
    return checked


__all__ = ["FLAG", "OPTION", "check_allowed_paths", "protected_paths"]
