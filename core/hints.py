"""Commands offramp prints as hints, written so that pasting one runs it on the right objects.

Every hint is a command that works when pasted: real names and ids (never a placeholder such as ``NAME``), quoted
for a POSIX shell where a name needs it, and ``-w WORKSPACE`` whenever the workspace is not the default one (a hint
printed in a sandbox, pasted, must not act on production). ``tests/conftest.py`` checks every hint the CLI tests
print against these rules.
"""

from __future__ import annotations

import shlex


def offramp_command(*args: str, workspace: str | None = None) -> str:
    """``offramp ARGS`` for a shell, with ``-w WORKSPACE`` when ``workspace`` is given and not the default.

    >>> offramp_command("run", "orders", "--resume", workspace="sandbox")
    'offramp run orders --resume -w sandbox'
    >>> offramp_command("runs", "show", "ab12", workspace="production")
    'offramp runs show ab12'
    """
    # Imported here: offramp.core.environment loads pydantic-settings, and `offramp --help` must stay light.
    from offramp.core.environment import DEFAULT_WORKSPACE

    parts = ["offramp", *(shlex.quote(arg) for arg in args)]
    if workspace is not None and workspace != DEFAULT_WORKSPACE:
        parts += ["-w", shlex.quote(workspace)]
    return " ".join(parts)


__all__ = ["offramp_command"]
