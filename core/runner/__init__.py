"""The runner: one orchestration's run, from its SQL to every row accounted for in the ledger.

Start a run with :func:`run_orchestration`; it returns a :class:`RunSummary`. The CLI (`offramp run`), a
scheduler and the REST API all start runs this way.

The names are read from their modules on first use: commands that only read runs (``offramp runs list``) import
``offramp.core.runner.ledger`` and must not load the engine, the sources and their database engines with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offramp.core.lazy_names import lazy_names

if TYPE_CHECKING:
    from offramp.core.runner.engine import DEFAULT_CONCURRENCY, run_orchestration
    from offramp.core.runner.lifecycle import RunInProgressError
    from offramp.core.runner.types import FINAL_STATUSES, RunRequest, RunStatus, RunSummary

_MODULE_OF = {
    "DEFAULT_CONCURRENCY": "offramp.core.runner.engine",
    "run_orchestration": "offramp.core.runner.engine",
    "RunInProgressError": "offramp.core.runner.lifecycle",
    "FINAL_STATUSES": "offramp.core.runner.types",
    "RunRequest": "offramp.core.runner.types",
    "RunStatus": "offramp.core.runner.types",
    "RunSummary": "offramp.core.runner.types",
}


__getattr__ = lazy_names(globals(), _MODULE_OF)


__all__ = [
    "DEFAULT_CONCURRENCY",
    "FINAL_STATUSES",
    "RunInProgressError",
    "RunRequest",
    "RunStatus",
    "RunSummary",
    "run_orchestration",
]
