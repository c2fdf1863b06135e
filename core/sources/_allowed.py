"""What a DuckDB source's SQL may read: its database file and the paths the orchestration names (``allowed_paths``).

DuckDB runs in offramp's process, so without a limit a query reads whatever offramp can: the key file, the state
store, ``/proc/self/environ`` (where ``OFFRAMP_SECRET_KEY`` and warehouse URLs live), ``~/.pgpass``. The paths an
orchestration allows, and the database file of a SQLite or DuckDB source, are therefore checked against one list
(:func:`protected_paths`), never allowed whatever the orchestration says.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from offramp.core.environment import Environment
from offramp.core.errors import ConfigError

OPTION = "allowed_paths"
FLAG = "--allow-path"
#: The sample orders `offramp demo` writes into offramp's home: the one database file there a source may open.
DEMO_DATABASE = "demo-orders.duckdb"
# The process's own state and the machine's devices: never data to send.
_SYSTEM = (Path("/proc"), Path("/sys"), Path("/dev"))


@dataclass(frozen=True)
class Protected:
    """A path no source may read, and how to name it in a message.

    ``inside_allowed``: only the path itself and the directories holding it are refused, not what lies in it
    (the user's home directory: data files live under it, but allowing the home itself opens ~/.pgpass and ~/.ssh).
    """

    path: Path
    what: str
    inside_allowed: bool = False


def _absolute(text: str) -> Path:
    # abspath, not resolve(): DuckDB compares the paths the SQL names as written, so a symlinked directory stays
    # the name the user gave it.
    return Path(os.path.abspath(os.path.expanduser(text)))


def protected_paths(env: Environment | None = None) -> list[Protected]:
    """The one list of what no source may read (docs/operations.md, 'What DuckDB sources may read'): offramp's
    home, key file and SQLite store; libpq's password and service files (PGPASSFILE or ~/.pgpass, PGSERVICEFILE or
    ~/.pg_service.conf), which docs/operations.md tells users to keep passwords in; ~/.ssh; the user's home
    directory itself (not what lies in it); /proc, /sys and /dev."""
    env = env or Environment()
    # The files first, then the directories: a message names the most particular path (the store, not the home).
    protected = [Protected(_absolute(str(env.key_file)), "the key file")]
    try:
        store = make_url(env.store_url)
    except ArgumentError:
        store = None
    if store is not None and store.get_backend_name() == "sqlite" and store.database not in (None, "", ":memory:"):
        protected.append(Protected(_absolute(str(store.database)), "the state store"))
    user_home = os.path.expanduser("~")
    protected.extend(
        Protected(_absolute(os.environ.get(variable) or os.path.join(user_home, default)), what)
        for variable, default, what in (
            ("PGPASSFILE", ".pgpass", "libpq's password file (PGPASSFILE, ~/.pgpass)"),
            ("PGSERVICEFILE", ".pg_service.conf", "libpq's service file (PGSERVICEFILE, ~/.pg_service.conf)"),
        )
    )
    protected.append(Protected(_absolute(os.path.join(user_home, ".ssh")), "the user's SSH keys (~/.ssh)"))
    protected.append(Protected(_absolute(str(env.home)), "offramp's home (OFFRAMP_HOME)"))
    if user_home not in ("", "/"):  # no home (a service account with HOME=/): nothing to refuse but what is above
        protected.append(Protected(_absolute(user_home), "the user's home directory", inside_allowed=True))
    protected.extend(Protected(path, f"the system's {path} files") for path in _SYSTEM)
    return protected


def _relation(path: Path, other: Protected) -> str | None:
    """How ``path`` meets the protected path: "is", "holds" or "lies in"; None when it may be read."""
    if path == other.path:
        return "is"
    if path in other.path.parents:
        return "holds"
    if other.path in path.parents and not other.inside_allowed:
        return "lies in"
    return None


def forbidden(path: Path, env: Environment | None = None, skip: Path | None = None) -> tuple[str, Protected] | None:
    """Whether the absolute ``path`` is, holds or lies in a protected path (but ``skip``), as written or with
    symbolic links resolved (DuckDB and SQLite follow links, so a link to the home would open it): the relation
    and the path."""
    found: list[tuple[str, Protected]] = []
    for other in protected_paths(env):
        if other.path == skip:
            continue
        relation = _relation(path, other)
        if relation is None:
            resolved = Protected(other.path.resolve(), other.what, other.inside_allowed)
            relation = _relation(path.resolve(), resolved)
        if relation is not None:
            found.append((relation, other))
    # "is" first: --allow-path ~ is the home, though the home also holds ~/.pgpass.
    return min(found, key=lambda match: match[0] != "is", default=None)


def check_allowed_paths(paths: Sequence[str], env: Environment | None = None) -> list[Path]:
    """The allowed paths as absolute paths; ConfigError for one that is empty, or is, holds or lies in a protected
    path (:func:`protected_paths`)."""
    checked: list[Path] = []
    for text in paths:
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(
                f"{OPTION}: {text!r} is not a path", hint=f"name a file or directory, e.g. {FLAG} /srv/exports/orders"
            )
        path = _absolute(text.strip())
        found = forbidden(path, env)
        if found is not None:
            relation, other = found
            raise ConfigError(
                f"{OPTION}: {path} {relation} {other.what} ({other.path}), which a DuckDB source may never read",
                hint=f"name only the directories that hold the data files, e.g. {FLAG} /srv/exports/orders",
            )
        checked.append(path)
    return checked


def check_database_file(text: str, engine: str, env: Environment | None = None) -> Path:
    """The absolute path of a SQLite or DuckDB source's database file; ConfigError when it is or lies in a
    protected path (a query over ``sqlite:///$OFFRAMP_HOME/offramp.db`` would send the store's rows).

    One file in offramp's home is a source: the sample orders ``offramp demo`` writes (``DEMO_DATABASE``); it is
    still refused when it is, or links to, any other protected path.
    """
    path = _absolute(text)
    env = env or Environment()
    home = _absolute(str(env.home))
    demo = home / DEMO_DATABASE
    found = forbidden(path, env, skip=home if path in (demo, demo.resolve()) else None)
    if found is not None:
        relation, other = found
        raise ConfigError(
            f"source: the {engine} database file {path} {relation} {other.what} ({other.path}), which a source may "
            "never read",
            hint="point the source at the database that holds the data to send, outside offramp's home",
        )
    return path


__all__ = [
    "DEMO_DATABASE",
    "FLAG",
    "OPTION",
    "Protected",
    "check_allowed_paths",
    "check_database_file",
    "forbidden",
    "protected_paths",
]
