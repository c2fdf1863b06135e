"""Private scratch directories a process makes for itself, and removes even when an earlier process was killed.

A run's index of prepared ids (``offramp.core.runner.repeats``) and a DuckDB source's spill directory
(``offramp.core.sources``) hold event ids and rows: each is made by ``mkdtemp`` (mode 0700) under ``TMPDIR``, named
``PREFIX<pid>-...``, so that a later process can remove those of processes that no longer exist (SIGKILL runs no
cleanup).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def private_directory(prefix: str) -> Path:
    """A new directory only this user can enter, named after this process; orphans of ``prefix`` removed first."""
    remove_orphans(prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def remove_orphans(prefix: str) -> None:
    """Remove the ``prefix`` directories of processes that no longer exist (killed before they removed their own)."""
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue  # alive, or another user's: not ours to judge


__all__ = ["private_directory", "remove_orphans"]
