"""Sending one batch with retries: a token bucket per credential, jittered backoff, the vendor's advised waits,
and a retry budget shared by the whole run.

One error channel (the rules are listed in ``offramp.core.errors``): a sender that raises a ``Transient`` error gives
the whole batch back, and it is sent again after the policy's back-off; a result whose ``error`` is transient (or
absent) gives its unsent events back, sent again after the vendor's advised wait. A sender that raises anything
else, or a result whose ``error`` is not transient, stops the run (``BatchResult.terminal``), and what is left comes
back ``unsent``. Waiting is interruptible, so a cancelled run does not sleep through its back-off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import stamina
import stamina.instrumentation

from offramp.core.destination_api import FailedEvent, PreparedEvent, Sender
from offramp.core.errors import DestinationError, Terminal, Transient
from offramp.core.retry_hooks import on_retry


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts up to ``burst``; thread-safe."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._capacity = float(max(1, burst))
        self._tokens = self._capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a token; False when ``stop`` was set while waiting."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return True
                wait = (1 - self._tokens) / self._rate
            if stop.wait(wait):
                return False


class RetryBudget:
    """Retries the whole run may spend; a run whose vendor keeps failing stops instead of retrying for hours.

    It starts with ``retries`` and grows by ``per_batch`` with every batch submitted, so a large run under a
    steady, moderate failure rate finishes, while a vendor that refuses most requests stops the run early.
    """

    def __init__(self, retries: int, per_batch: float = 1.0) -> None:
        self._left = float(retries)
        self._per_batch = per_batch
        self._lock = threading.Lock()

    def grow(self) -> None:
        """A batch was submitted: its share of retries becomes available."""
        with self._lock:
            self._left += self._per_batch

    def take(self) -> bool:
        with self._lock:
            if self._left < 1:
                return False
            self._left -= 1
            return True


class RetryBudgetExhaustedError(DestinationError, Terminal):
    """The run used up its retries on transient failures."""


# The `offramp` logger: the CLI shows its warnings on stderr, so a terminal user sees each retry as it is scheduled.
log = logging.getLogger("offramp.core.runner.sending")


class _GiveBack(Exception):  # noqa: N818 - internal signal to stamina: retry after ``wait`` seconds
    def __init__(self, wait: float | None, said: str = "", attempts: int = 0) -> None:
        super().__init__("transient")
        self.wait = wait
        self.said = said  # the retry's line before the wait and the attempt: the transient error's message
        self.attempts = attempts


def _on_retry(details: stamina.instrumentation.RetryDetails) -> None:
    """stamina's retry hook: one line per retry of ours, in words, instead of stamina's own instrumentation (its
    ``stamina.retry_scheduled`` warnings name a function and an exception class, and nothing a user can act on)."""
    cause = details.caused_by
    if not isinstance(cause, _GiveBack) or not cause.said:
        return
    wait = details.wait_for
    shown = f"{wait:.1f}" if wait < 10 else f"{wait:.0f}"
    log.warning("%s; retrying in %s s, attempt %d of %d", cause.said, shown, details.retry_num + 1, cause.attempts)


# Instead of stamina's default hooks (logging, structlog, prometheus): offramp says it itself.
on_retry(_on_retry)


def _backoff(exc: Exception) -> bool | float:
    """stamina's hook: retry our give-backs, after the vendor's advised wait when it gave one."""
    if isinstance(exc, _GiveBack):
        return exc.wait if exc.wait is not None else True
    return False


@dataclass
class BatchResult:
    """What became of one batch after its retries."""

    number: int
    events: Sequence[PreparedEvent]
    sent: list[str] = field(default_factory=list)
    failed: list[FailedEvent] = field(default_factory=list)
    unsent: Sequence[PreparedEvent] = field(default_factory=list)  # only when the run stopped
    attempts: int = 0
    request_ids: list[str] = field(default_factory=list)
    last_error: str | None = None
    terminal: BaseException | None = None  # the run must stop: retrying cannot help (what the sender raised or said)
    request_nos: list[int] = field(default_factory=list)  # the requests the gate recorded (inflight.RequestLog)


# Called with the events of a request just before it is sent: the request's number, once recorded, or None when the
# request must not be sent (the run's lease was lost to another process).
Gate = Callable[[Sequence[PreparedEvent]], int | None]


@dataclass(frozen=True)
class RetryPolicy:
    """How a batch is retried: attempts per batch and the back-off bounds (seconds)."""

    attempts: int = 10
    wait_initial: float = 0.5
    wait_max: float = 60.0


def _said(error: BaseException) -> str:
    """What the summary may say of a transient error: our own errors' message, a foreign one's type only (its
    message may quote a request, PII included)."""
    return str(error) if isinstance(error, DestinationError) else f"an unexpected {type(error).__name__}"


def _retry_line(error: BaseException | None, fallback: str) -> str:
    """The start of a retry's log line: the transient error's message without its hint (the line goes on with the
    wait). A destination's transient messages name what failed (``TikTok unreachable (connection refused)``,
    ``the webhook receiver at HOST answered HTTP 503``): offramp.core.errors.Transient asks it of them."""
    return error.message if isinstance(error, DestinationError) else fallback


def _exhausted(last_error: str) -> RetryBudgetExhaustedError:
    return RetryBudgetExhaustedError(
        f"the run used up its retries; the vendor kept answering: {last_error}",
        hint="wait until the vendor recovers",  # the runner adds the command that resumes the run
    )


def deliver(
    sender: Sender,
    number: int,
    events: Sequence[PreparedEvent],
    *,
    bucket: TokenBucket,
    budget: RetryBudget,
    stop: threading.Event,
    policy: RetryPolicy,
    gate: Gate | None = None,
) -> BatchResult:
    """Send ``events`` until each is sent or failed.

    Every retry is logged as one line: the transient error's message, the wait and the attempt
    (``TikTok unreachable (connection refused); retrying in 8 s, attempt 3 of 10``).

    ``gate`` is asked before every request (check the lease, record the request, then send): when it answers None,
    nothing more is sent and what is left comes back ``unsent``.

    ``policy.attempts`` bounds the attempts in a row that settle nothing. An attempt that settled some events (a
    batch split to isolate a refused event, interrupted by a transient answer) starts a fresh round for the rest:
    a thousand-event batch needs some twenty requests to isolate one refused event, and at a few percent of
    transient answers a fixed number of attempts for the whole batch would fail runs that make steady progress.
    Every give-back still draws on the run's retry budget, so a vendor that keeps failing stops the run.

    What is left when the run stops, or when retrying cannot help (``terminal`` set), comes back ``unsent``.
    """
    result = BatchResult(number, events)
    pending: Sequence[PreparedEvent] = events  # as handed in: columns stay columns (no object per event)
    while pending and result.terminal is None and not stop.is_set():
        progress_wait = _attempt_round(
            sender, result, pending, bucket=bucket, budget=budget, stop=stop, policy=policy, gate=gate
        )
        pending = result.unsent
        if progress_wait is None:
            break
        # The round settled events and was given the rest back: wait as advised, then a fresh round.
        if stop.wait(progress_wait):
            break
    result.unsent = pending
    return result


def _attempt_round(
    sender: Sender,
    result: BatchResult,
    pending: Sequence[PreparedEvent],
    *,
    bucket: TokenBucket,
    budget: RetryBudget,
    stop: threading.Event,
    policy: RetryPolicy,
    gate: Gate | None = None,
) -> float | None:
    """Up to ``policy.attempts`` attempts at ``pending``; leaves what is still unsent in ``result.unsent``.

    Returns the wait before a fresh round when an attempt settled some events and was given the rest back;
    None when the round ended otherwise (all settled, stopped, terminal, attempts used up).
    """
    try:
        for attempt in stamina.retry_context(
            on=_backoff, attempts=policy.attempts, timeout=None, wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
        ):  # fmt: skip
            with attempt:
                if stop.is_set() or not bucket.acquire(stop):
                    break
                if gate is not None:
                    number = gate(pending)
                    if number is None:
                        break
                    result.request_nos.append(number)
                try:
                    answer = sender.send(pending)
                except Transient as exc:
                    # Nothing of the batch was sent: all of it again, after the policy's back-off.
                    result.attempts += 1
                    result.last_error = _said(exc)
                    if not budget.take():
                        result.terminal = _exhausted(result.last_error)
                        break
                    said = _retry_line(exc, result.last_error)
                    raise _GiveBack(None, said, policy.attempts) from None
                except Exception as exc:  # noqa: BLE001 - any other error stops the run; the batch stays unsent
                    result.attempts += 1
                    result.terminal = exc
                    break
                result.attempts += 1
                result.sent.extend(answer.sent)
                result.failed.extend(answer.failed)
                result.request_ids.extend(answer.request_ids)
                pending = answer.unsent
                if answer.error is not None and not isinstance(answer.error, Transient):
                    result.terminal = answer.error  # what was settled is kept; the rest stays unsent
                    break
                if pending:
                    result.last_error = _said(answer.error) if answer.error else "transient failure"
                    if not budget.take():
                        result.terminal = _exhausted(result.last_error)
                        break
                    if answer.sent or answer.failed:
                        result.unsent = pending
                        advised = answer.retry_after_seconds
                        return advised if advised is not None else policy.wait_initial
                    said = _retry_line(answer.error, result.last_error)
                    raise _GiveBack(answer.retry_after_seconds, said, policy.attempts)
    except _GiveBack:
        # This batch's attempts are used up: its events stay unsent and the run stops as a failure.
        result.terminal = RetryBudgetExhaustedError(
            f"a batch still failed after {policy.attempts} attempts in a row: {result.last_error}",
            hint="wait until the vendor recovers",  # the runner adds the command that resumes the run
        )
    result.unsent = pending
    return None


__all__ = ["BatchResult", "Gate", "RetryBudget", "RetryBudgetExhaustedError", "RetryPolicy", "TokenBucket", "deliver"]
