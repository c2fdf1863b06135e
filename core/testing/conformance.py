"""The destination conformance suite: what every destination's preparer and sender must do, checked generically.

See :mod:`offramp.core.testing` for how a plugin runs it.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from typing import Any, TypeVar

import orjson
import pyarrow as pa

from offramp.core.destination_api import DeliveryResult, PreparedBatch, PreparedEvent, Preparer, Sender
from offramp.core.errors import DestinationError, Terminal, Transient
from offramp.core.plugin_api import DestinationContext, DestinationHooks
from offramp.core.registry import load_hooks, validate_descriptor
from offramp.core.testing.checks import (
    assert_no_secrets,
    error_texts,
    leaf_values,
    log_texts,
    one_batch,
    prepare_all,
    record_batches,
)
from offramp.core.testing.harness import ConformanceHarness

# Shorter strings (a "1", "US", "yes") could occur in any sentence; longer ones in a rejection's detail are leaks.
_MIN_LEAK_LENGTH = 4


def _hooks(harness: ConformanceHarness) -> DestinationHooks:
    """The type's hooks, imported and checked as the registry does when the plugin is registered."""
    hooks = load_hooks("destination", harness.destination_type)
    assert isinstance(hooks, DestinationHooks)
    return hooks


def _context(harness: ConformanceHarness) -> DestinationContext:
    context = harness.context()
    assert isinstance(context, DestinationContext), f"context() returned a {type(context).__name__}"
    assert context.destination_type == harness.destination_type.name, (
        f"context() is for a {context.destination_type!r} destination, the harness tests "
        f"{harness.destination_type.name!r}"
    )
    return context


def _open_preparer(harness: ConformanceHarness) -> Preparer:
    return _hooks(harness).open_preparer(_context(harness))


def _open_sender(harness: ConformanceHarness) -> Sender:
    return _hooks(harness).open_sender(_context(harness))


def _prepare(harness: ConformanceHarness, table: pa.Table, sizes: Sequence[int] | None = None) -> PreparedBatch:
    with closing(_open_preparer(harness)) as preparer:
        batches = record_batches(table) if sizes is None else record_batches(table, sizes)
        return prepare_all(preparer, batches)


def _good_events(harness: ConformanceHarness, count: int) -> list[PreparedEvent]:
    prepared = _prepare(harness, harness.good_rows(count))
    assert not prepared.rejected, f"good rows were rejected: {sorted({r.reason for r in prepared.rejected})}"
    assert len(prepared.events) == count, f"good_rows({count}) prepared into {len(prepared.events)} events"
    return prepared.events


def _chunks(events: Sequence[PreparedEvent], size: int) -> list[list[PreparedEvent]]:
    return [list(events[start : start + size]) for start in range(0, len(events), size)]


def _assert_accounts_for(events: Sequence[PreparedEvent], result: DeliveryResult) -> None:
    """Every event handed in is in exactly one of sent, failed and unsent."""
    handed_in = Counter(event.event_id for event in events)
    came_out = (
        Counter(result.sent)
        + Counter(failed.event_id for failed in result.failed)
        + Counter(event.event_id for event in result.unsent)
    )
    assert came_out == handed_in, (
        f"{len(events)} events handed in, but sent {len(result.sent)} + failed {len(result.failed)} + "
        f"unsent {len(result.unsent)} do not match them one to one"
    )


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _no_secret_logged(harness: ConformanceHarness) -> Iterator[None]:
    """Capture every record that reaches the root logger at DEBUG; fail if one holds a secret of the harness."""
    root = logging.getLogger()
    handler = _Records()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert_no_secrets(harness.secrets(), log_texts(handler.records), "a log record")


_Test = TypeVar("_Test", bound=Callable[[Any, ConformanceHarness], None])


def _checks_logs(test: _Test) -> _Test:
    """Run a test of the suite with its logs watched for secrets (a decorator, so the kit needs no pytest)."""

    @functools.wraps(test)
    def watched(self: Any, conformance_harness: ConformanceHarness) -> None:
        with _no_secret_logged(conformance_harness):
            test(self, conformance_harness)

    return watched  # type: ignore[return-value]


_Error = TypeVar("_Error", bound=BaseException)


def _raises(expected: type[_Error], call: Callable[[], object]) -> _Error:
    try:
        call()
    except expected as error:
        return error
    raise AssertionError(f"expected {expected.__name__}, nothing was raised")


def _send_or_raise(sender: Sender, events: Sequence[PreparedEvent]) -> DeliveryResult | DestinationError:
    """What ``send`` gave: its result, or the DestinationError it raised (anything else propagates)."""
    try:
        return sender.send(events)
    except DestinationError as error:
        return error


def _result_texts(result: DeliveryResult) -> list[str]:
    texts = [f"{failed.code} {failed.message}" for failed in result.failed]
    if result.error is not None:
        texts.extend(error_texts(result.error))
    return texts


class DestinationConformance:
    """Mix into a test class and provide a ``conformance_harness`` fixture (a :class:`ConformanceHarness`).

    The suite opens preparers and senders through the type's own hooks, imported and checked as the registry does
    (``offramp.core.registry.load_hooks``), with the harness's real :meth:`~ConformanceHarness.context`, and closes
    them. Every test below also checks, after it ran, that no secret of the harness appears in any log record that
    reached the root logger (at DEBUG, from every logger that propagates).
    """

    @_checks_logs
    def test_hooks_check_out_as_at_registration(self, conformance_harness: ConformanceHarness) -> None:
        """The descriptor validates and its implementation is a DestinationHooks whose hooks take the right
        arguments: what ``offramp plugins list`` checks, so a broken hook never waits for a run to show."""
        kind = conformance_harness.destination_type
        validate_descriptor("destination", kind, kind.name)
        hooks = _hooks(conformance_harness)
        assert hooks is kind.load(), "load_hooks() must return the descriptor's implementation itself"
        context = _context(conformance_harness)
        assert isinstance(context.settings, kind.settings), (
            f"context().settings is a {type(context.settings).__name__}, not the type's {kind.settings.__name__}"
        )
        assert isinstance(context.options, kind.run_options), (
            f"context().options is a {type(context.options).__name__}, not the type's {kind.run_options.__name__}"
        )
        # An empty credential_types accepts any credential type.
        assert not kind.credential_types or context.credential.type in kind.credential_types, (
            f"the context's credential is a {context.credential.type!r}, which the type does not accept "
            f"({', '.join(kind.credential_types)})"
        )

    @_checks_logs
    def test_preparation_accounts_for_every_row(self, conformance_harness: ConformanceHarness) -> None:
        table = conformance_harness.good_rows(23)
        batches = record_batches(table)
        assert any(batch.num_rows == 0 for batch in batches) and len(batches) > 3
        with closing(_open_preparer(conformance_harness)) as preparer:
            parts = [preparer.prepare(batch) for batch in batches] + [preparer.finish()]
            unknown = preparer.unknown_columns
        assert sum(part.rows for part in parts) == table.num_rows
        events = [event for part in parts for event in part.all_events()]
        assert not [item for part in parts for item in part.all_rejected()]
        assert len(events) == 23
        assert len({event.event_id for event in events}) == 23, "event ids repeat"
        for event in events:
            assert isinstance(event.event_id, str) and event.event_id, f"event id {event.event_id!r} is not a string"
            assert event.rows >= 1
            assert isinstance(orjson.loads(event.body), dict), f"the body of {event.event_id} is not a JSON object"
        assert unknown == (), f"good rows have unknown columns {unknown}"
        texts = [event.body for event in events]
        assert_no_secrets(conformance_harness.secrets(), texts, "a prepared event's body")

    @_checks_logs
    def test_an_empty_batch_prepares_nothing(self, conformance_harness: ConformanceHarness) -> None:
        empty = one_batch(conformance_harness.good_rows(1).slice(0, 0))
        with closing(_open_preparer(conformance_harness)) as preparer:
            assert preparer.prepare(empty).rows == 0
            assert preparer.finish().rows == 0

    @_checks_logs
    def test_event_ids_are_stable_across_preparations(self, conformance_harness: ConformanceHarness) -> None:
        """A rerun must produce the same ids, and the same bodies, or the vendor's deduplication cannot work."""
        table = conformance_harness.good_rows(12)
        first = _prepare(conformance_harness, table)
        # Cut differently the second time: where batches end must not change what an event is.
        second = _prepare(conformance_harness, table, (4, 9))
        assert [event.event_id for event in first.events] == [event.event_id for event in second.events]
        assert {e.event_id: e.body for e in first.events} == {e.event_id: e.body for e in second.events}

    @_checks_logs
    def test_bad_rows_are_rejected_with_reasons_and_without_raw_values(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        table, reasons = conformance_harness.bad_rows()
        assert table.num_rows > 0 and reasons, "bad_rows() must give rows and their reason codes"
        prepared = _prepare(conformance_harness, table)
        assert not prepared.events, f"bad rows became events: {[event.event_id for event in prepared.events]}"
        assert sum(item.rows for item in prepared.rejected) == table.num_rows
        assert {item.reason for item in prepared.rejected} == reasons
        raw = {str(value) for value in leaf_values(table.to_pylist()) if not isinstance(value, bool)}
        raw = {value for value in raw if len(value) >= _MIN_LEAK_LENGTH}
        for item in prepared.rejected:
            assert item.detail, f"rejection {item.reason} has no detail"
            leaked = sorted(value for value in raw if value in item.detail)
            assert not leaked, f"the detail of a {item.reason} rejection repeats input values {leaked}"
        texts = [f"{item.event_id} {item.reason} {item.detail}" for item in prepared.rejected]
        assert_no_secrets(conformance_harness.secrets(), texts, "a rejection")

    @_checks_logs
    def test_rejects_do_not_disturb_good_rows(self, conformance_harness: ConformanceHarness) -> None:
        """Bad rows around good ones, in the same batches: the good ones make the same events as alone."""
        good = conformance_harness.good_rows(9)
        bad, _ = conformance_harness.bad_rows()
        alone = _prepare(conformance_harness, good)
        mixed_table = pa.concat_tables([bad, good, bad], promote_options="default")
        mixed = _prepare(conformance_harness, mixed_table)
        assert mixed.rows == mixed_table.num_rows
        assert sum(item.rows for item in mixed.rejected) == 2 * bad.num_rows
        assert [e.event_id for e in mixed.events] == [e.event_id for e in alone.events]

    @_checks_logs
    def test_send_refuses_more_than_max_batch_size(self, conformance_harness: ConformanceHarness) -> None:
        """``send`` takes at most ``max_batch_size`` events; more is a caller's bug: ValueError, before any request."""
        with closing(_open_sender(conformance_harness)) as sender:
            limit = sender.max_batch_size
            declared = conformance_harness.destination_type.capabilities.max_batch_size
            assert 1 <= limit <= declared, f"max_batch_size {limit} is not within 1..{declared} (the capabilities)"
            events = _good_events(conformance_harness, limit + 1)
            _raises(ValueError, lambda: sender.send(events))
        assert conformance_harness.delivered() == [], "an oversized batch reached the vendor"

    @_checks_logs
    def test_preview_gives_the_body_and_sends_nothing(self, conformance_harness: ConformanceHarness) -> None:
        """A dry run calls ``preview``: it returns the request body as bytes, reaches no vendor, and does not change
        what a later ``send`` does."""
        with closing(_open_sender(conformance_harness)) as sender:
            events = _good_events(conformance_harness, min(sender.max_batch_size, 4))
            body = sender.preview(events)
            assert isinstance(body, bytes) and body, f"preview() returned {type(body).__name__}, not non-empty bytes"
            assert conformance_harness.delivered() == [], "preview() reached the vendor"
            assert_no_secrets(conformance_harness.secrets(), [body], "a previewed body")
            result = sender.send(events)
        _assert_accounts_for(events, result)
        assert result.error is None and sorted(result.sent) == sorted(event.event_id for event in events)
        assert Counter(conformance_harness.delivered()) == Counter(event.event_id for event in events)

    @_checks_logs
    def test_good_events_are_delivered_exactly_once(self, conformance_harness: ConformanceHarness) -> None:
        events = _good_events(conformance_harness, 25)
        with closing(_open_sender(conformance_harness)) as sender:
            for chunk in _chunks(events, min(sender.max_batch_size, 10)):
                result = sender.send(chunk)
                _assert_accounts_for(chunk, result)
                assert result.error is None and not result.failed and not result.unsent
                assert sorted(result.sent) == sorted(event.event_id for event in chunk)
        delivered = conformance_harness.delivered()
        assert Counter(delivered) == Counter(event.event_id for event in events), "not every event exactly once"

    @_checks_logs
    def test_concurrent_sends_deliver_every_event_once(self, conformance_harness: ConformanceHarness) -> None:
        events = _good_events(conformance_harness, 40)
        with closing(_open_sender(conformance_harness)) as sender:
            chunks = _chunks(events, min(sender.max_batch_size, 5))
            with ThreadPoolExecutor(max_workers=4) as pool:
                results = list(pool.map(sender.send, chunks))
        for chunk, result in zip(chunks, results, strict=True):
            _assert_accounts_for(chunk, result)
            assert result.error is None and len(result.sent) == len(chunk)
        assert Counter(conformance_harness.delivered()) == Counter(event.event_id for event in events)

    @_checks_logs
    def test_transient_answer_loses_nothing_and_a_resend_delivers(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        """A transient answer leaves the whole batch unsent: either ``send`` raises a Transient DestinationError
        (nothing of the batch was sent), or it returns every event unsent with a Transient error. Resending the
        batch delivers each event once."""
        events = _good_events(conformance_harness, 6)
        with closing(_open_sender(conformance_harness)) as sender:
            with conformance_harness.transient():
                outcome = _send_or_raise(sender, events)
            if isinstance(outcome, DestinationError):
                assert isinstance(outcome, Transient), (
                    f"send() raised {type(outcome).__name__}, which is not marked Transient: the runner would stop "
                    "the run instead of retrying"
                )
                texts = error_texts(outcome)
                unsent = list(events)
            else:
                _assert_accounts_for(events, outcome)
                assert not outcome.sent and not outcome.failed, "a transient answer must leave every event unsent"
                assert sorted(e.event_id for e in outcome.unsent) == sorted(e.event_id for e in events)
                assert isinstance(outcome.error, DestinationError) and isinstance(outcome.error, Transient), (
                    f"the error of unsent events must be a transient DestinationError, got {type(outcome.error)}"
                )
                texts = _result_texts(outcome)
                unsent = list(outcome.unsent)
            assert conformance_harness.delivered() == []
            assert_no_secrets(conformance_harness.secrets(), texts, "a transient error")
            again = sender.send(unsent)
        _assert_accounts_for(events, again)
        assert again.error is None and sorted(again.sent) == sorted(event.event_id for event in events)
        assert Counter(conformance_harness.delivered()) == Counter(event.event_id for event in events)

    @_checks_logs
    def test_terminal_answer_stops_with_a_terminal_destination_error_and_a_hint(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        """A terminal answer either raises a DestinationError marked Terminal, or returns a result whose ``error``
        is one (not Transient) with every event unsent; either way the error has a hint and nothing was delivered."""
        events = _good_events(conformance_harness, 3)
        with closing(_open_sender(conformance_harness)) as sender, conformance_harness.terminal():
            outcome = _send_or_raise(sender, events)
        if isinstance(outcome, DeliveryResult):
            _assert_accounts_for(events, outcome)
            assert outcome.error is not None, "a terminal answer returned a result without an error"
            assert not outcome.sent and not outcome.failed, "a terminal answer must leave every event unsent"
            error: DestinationError = outcome.error
            assert isinstance(error, DestinationError), f"the result's error is a {type(error).__name__}"
            assert not isinstance(error, Transient), "a terminal answer's error must not be marked Transient"
            texts = _result_texts(outcome)
        else:
            error = outcome
            texts = error_texts(error)
        assert isinstance(error, Terminal), f"{type(error).__name__} is not marked Terminal"
        assert error.hint, "a terminal error must say what to do next (hint)"
        assert conformance_harness.delivered() == []
        assert_no_secrets(conformance_harness.secrets(), texts, "a terminal error")

    @_checks_logs
    def test_vendor_refusal_fails_those_events_and_sends_the_rest(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        """Events the vendor refuses come back failed with its code; the others of the same batch are delivered."""
        with closing(_open_sender(conformance_harness)) as sender:
            events = _good_events(conformance_harness, min(sender.max_batch_size, 12))
            ids = {event.event_id for event in events}
            with conformance_harness.refusing(events) as refused:
                assert refused and refused < ids, "refusing() must refuse some of the events, not all"
                result = sender.send(events)
        _assert_accounts_for(events, result)
        assert {failed.event_id for failed in result.failed} == refused
        assert set(result.sent) == ids - refused
        assert not result.unsent and result.error is None
        for failed in result.failed:
            assert isinstance(failed.code, str) and failed.code, "a refusal needs the vendor's code"
            assert isinstance(failed.message, str)
        assert Counter(conformance_harness.delivered()) == Counter(ids - refused)
        assert_no_secrets(conformance_harness.secrets(), _result_texts(result), "a refusal")


__all__ = ["DestinationConformance"]
