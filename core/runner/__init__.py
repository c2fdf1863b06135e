"""The runner: one orchestration's run, from its SQL to every row accounted for in the ledger.

Start a run with :func:`run_orchestration`; it returns a :class:`RunSummary`. The CLI (`offramp run`), a
scheduler and the REST API all start runs this way.
"""

from offramp.core.runner.engine import DEFAULT_CONCURRENCY, run_orchestration
from offramp.core.runner.lifecycle import RunInProgressError
from offramp.core.runner.types import FINAL_STATUSES, RunRequest, RunStatus, RunSummary

__all__ = [
    "DEFAULT_CONCURRENCY",
    "FINAL_STATUSES",
    "RunInProgressError",
    "RunRequest",
    "RunStatus",
    "RunSummary",
    "run_orchestration",
]
