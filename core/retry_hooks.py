"""offramp's stamina instrumentation, installed once for the process by whichever module retries first.

stamina's default hooks log a bare ``stamina.retry_scheduled`` warning at every retry (a function's name and an
exception class: nothing a user can act on). Each module of offramp that retries says what it retries itself, in
words: the runner's sender through a hook registered here (:func:`on_retry`), the alert channels in their own
attempt loop. Both call into this one module, so the process-wide setting is made in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import stamina.instrumentation

RetryHook = Callable[[stamina.instrumentation.RetryDetails], None]

_hooks: list[RetryHook] = []
_lock = threading.Lock()
_installed = False


def _dispatch(details: stamina.instrumentation.RetryDetails) -> None:
    for hook in list(_hooks):
        hook(details)


def quiet_stamina() -> None:
    """Replace stamina's default hooks (logging, structlog, prometheus) with offramp's own, once per process."""
    global _installed
    with _lock:
        if not _installed:
            stamina.instrumentation.set_on_retry_hooks([_dispatch])
            _installed = True


def on_retry(hook: RetryHook) -> None:
    """Call ``hook`` at every retry stamina schedules (it ignores the retries that are not its module's)."""
    quiet_stamina()
    with _lock:
        if hook not in _hooks:
            _hooks.append(hook)


__all__ = ["RetryHook", "on_retry", "quiet_stamina"]
