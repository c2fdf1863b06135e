"""The dummy destination runs the conformance suite with its real runtime, and its knobs do what they say.

The last tests run suite tests against deliberately broken variants of the dummy, to show the suite fails them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from pydantic import ValidationError

from offramp.core.destination_api import (
    DeliveryResult,
    FailedEvent,
    PreparedBatch,
    PreparedEvent,
    Preparer,
    RejectedEvent,
    Sender,
)
from offramp.core.errors import DestinationError, Terminal, Transient
from offramp.core.plugin_api import DestinationContext, DestinationHooks
from offramp.core.plugin_types import DestinationType
from offramp.core.testing import DestinationConformance, PluginWorkspace
from offramp.core.testing.checks import assert_no_secrets, one_batch, prepare_all, record_batches
from offramp.plugins.dummy import DESTINATION_TYPE, DummyDestinationSettings, runtime
from offramp.plugins.dummy.runtime import DummyPreparer, DummySender

NOW = 1_795_300_000
SCHEMA = pa.schema(
    {
        "event_id": pa.string(),
        "email": pa.string(),
        "value": pa.float64(),
        "event_time": pa.timestamp("s", tz="UTC"),
    }
)


def _moment(n: int) -> datetime:
    return datetime.fromtimestamp(NOW - 3600 * n, tz=UTC)


class DummyHarness:
    """The dummy destination under the conformance suite: a real store, a real destination and credential, the
    senders the suite opens through the type's hooks, and faults set on the destination's in-memory vendor."""

    def __init__(self, home: Path, destination_type: DestinationType = DESTINATION_TYPE, **knobs: Any) -> None:
        # A small maximum keeps the oversized-batch test quick (it prepares max + 1 events).
        self.knobs: dict[str, Any] = {"batch_size": 25, **knobs}
        self._type = destination_type
        self.workspace = PluginWorkspace(home)
        self.workspace.add_credential("tok", "static-token", {"token": "not-read-by-the-dummy"})
        # A destination of its own: the dummy's vendor is one per destination and process (runtime.vendor).
        self.destination = f"sink-{uuid.uuid4().hex[:12]}"
        self.workspace.add_destination(self.destination, "dummy", "tok", self.knobs)
        self.vendor = runtime.vendor(self.workspace.credential("tok").workspace, self.destination)

    @property
    def destination_type(self) -> DestinationType:
        return self._type

    def settings(self) -> DummyDestinationSettings:
        return DummyDestinationSettings(**self.knobs)

    def context(self) -> DestinationContext:
        return self.workspace.context(self.destination, now=NOW)

    def good_rows(self, events: int) -> pa.Table:
        return pa.Table.from_pylist(
            [
                {"event_id": f"order-{n}", "email": f"c{n}@example.com", "value": n + 0.5, "event_time": _moment(n)}
                for n in range(events)
            ],
            schema=SCHEMA,
        )

    def bad_rows(self) -> tuple[pa.Table, set[str]]:
        rows: list[dict[str, Any]] = [
            {"event_id": None, "email": "alice.smith@example.com", "value": 19.99, "event_time": _moment(1)},
            {"event_id": "", "email": "bob.jones@example.org", "value": 5.25, "event_time": _moment(2)},
            {"event_id": "   ", "email": "carol@example.net", "value": None, "event_time": None},
        ]
        return pa.Table.from_pylist(rows, schema=SCHEMA), {runtime.MISSING_EVENT_ID_REASON}

    @contextlib.contextmanager
    def _fault(self, **knobs: Any) -> Iterator[None]:
        before = dict(self.vendor.knobs)
        self.vendor.set(**knobs)
        try:
            yield
        finally:
            self.vendor.reset()
            self.vendor.set(**before)

    def transient(self) -> contextlib.AbstractContextManager[None]:
        return self._fault(transient_prob=1.0)

    def terminal(self) -> contextlib.AbstractContextManager[None]:
        return self._fault(terminal_after_batches=0)

    @contextlib.contextmanager
    def refusing(self, events: Sequence[PreparedEvent]) -> Iterator[set[str]]:
        # The dummy cannot be told which events to refuse, but its draws are fixed by the seed: find a seed that
        # refuses some and not all, and ask a sender under those knobs which ones.
        for seed in range(100):
            probe = DummySender(self.settings().model_copy(update={"fail_prob": 0.5, "seed": seed}))
            refused = {event.event_id for event in events if probe.would_refuse(event.event_id)}
            if 0 < len(refused) < len(events):
                with self._fault(fail_prob=0.5, seed=seed):
                    yield refused
                return
        raise AssertionError("no seed refuses some but not all of these events")

    def delivered(self) -> list[str]:
        return self.vendor.delivered_ids()

    def secrets(self) -> Sequence[str]:
        return ()  # the dummy holds none: its credential is never read


@pytest.fixture
def conformance_harness(tmp_path: Path) -> Iterator[DummyHarness]:
    harness = DummyHarness(tmp_path)
    yield harness
    harness.workspace.close()


class TestDummyConformance(DestinationConformance):
    pass


# --- the dummy's own behaviour -----------------------------------------------------------------------------------


def _prepare(table: pa.Table, **knobs: Any) -> PreparedBatch:
    return prepare_all(DummyPreparer(DummyDestinationSettings(**knobs)), record_batches(table))


def _rows(events: int) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"event_id": f"order-{n}", "email": f"c{n}@example.com", "value": n + 0.5, "event_time": _moment(n)}
            for n in range(events)
        ],
        schema=SCHEMA,
    )


def _events(count: int) -> list[PreparedEvent]:
    return _prepare(_rows(count)).events


def test_descriptor_names_the_runtimes_hooks(tmp_path: Path) -> None:
    assert DESTINATION_TYPE.implementation == "offramp.plugins.dummy.runtime:HOOKS"
    assert DESTINATION_TYPE.load() is runtime.HOOKS
    harness = DummyHarness(tmp_path, batch_size=7)
    try:
        preparer = runtime.HOOKS.open_preparer(harness.context())
        sender = runtime.HOOKS.open_sender(harness.context())
        assert isinstance(preparer, DummyPreparer)
        assert isinstance(sender, DummySender) and sender.max_batch_size == 7
    finally:
        harness.workspace.close()


def test_senders_of_one_destination_share_its_vendor(tmp_path: Path) -> None:
    harness = DummyHarness(tmp_path)
    try:
        first, second = (runtime.HOOKS.open_sender(harness.context()) for _ in range(2))
        events = _events(3)
        first.send(events[:2])
        second.send(events[2:])
        assert harness.delivered() == [event.event_id for event in events]
        assert first.preview(events[:1]) == b"[" + events[0].body + b"]"
        assert harness.delivered() == [event.event_id for event in events]  # a preview sends nothing
    finally:
        harness.workspace.close()


def test_body_is_the_row_as_json_and_event_id_the_column_as_string() -> None:
    table = pa.table(
        {
            "event_id": pa.array([1001, 1002], pa.int64()),
            "amount": pa.array([Decimal("12.30"), None], pa.decimal128(10, 2)),
            "day": pa.array([date(2026, 1, 2), date(2026, 1, 3)]),
            "raw": pa.array([b"\x00\x01", b""]),
            "tags": pa.array([["a", "b"], []]),
        }
    )
    events = _prepare(table).events
    assert [event.event_id for event in events] == ["1001", "1002"]
    assert orjson.loads(events[0].body) == {
        "event_id": 1001,
        "amount": "12.30",
        "day": "2026-01-02",
        "raw": "AAE=",
        "tags": ["a", "b"],
    }
    assert list(orjson.loads(events[1].body)) == ["event_id", "amount", "day", "raw", "tags"]


def test_without_an_event_id_column_the_id_is_a_hash_of_the_values() -> None:
    table = pa.table({"email": ["a@example.com", "b@example.com", "a@example.com"], "n": [1, 2, 1]})
    ids = [event.event_id for event in _prepare(table).events]
    assert ids[0] == ids[2] != ids[1]
    assert ids == [event.event_id for event in _prepare(table.select(["email", "n"])).events]
    assert ids[0] != _prepare(pa.table({"email": ["a@example.com"], "n": [2]})).events[0].event_id
    assert all(len(event_id) == 32 and "example" not in event_id for event_id in ids)


def test_null_or_blank_event_id_is_rejected_without_its_values() -> None:
    table = pa.table({"event_id": ["ok-1", None, "", " \t", "ok-2"], "email": ["x1@ex.com"] * 5})
    prepared = _prepare(table)
    assert [event.event_id for event in prepared.events] == ["ok-1", "ok-2"]
    assert [item.reason for item in prepared.rejected] == ["missing_event_id"] * 3
    assert all("x1@ex.com" not in item.detail and item.event_id for item in prepared.rejected)
    # The id a rejected row would have had is derived from its values, so a rerun names the same rows.
    again = _prepare(table)
    assert [item.event_id for item in again.rejected] == [item.event_id for item in prepared.rejected]
    assert len({item.event_id for item in prepared.rejected}) == 3


def test_reject_prob_is_a_seeded_draw_per_event() -> None:
    table = _rows(400)
    first = _prepare(table, reject_prob=0.25, seed=3)
    again = _prepare(table, reject_prob=0.25, seed=3)
    other_seed = _prepare(table, reject_prob=0.25, seed=4)
    rejected = {item.event_id for item in first.rejected}
    assert first.rows == 400
    assert {item.reason for item in first.rejected} == {"dummy_reject"}
    assert 60 < len(rejected) < 140, len(rejected)
    assert rejected == {item.event_id for item in again.rejected}
    assert rejected != {item.event_id for item in other_seed.rejected}
    # The draw is per event, so cutting the rows differently rejects the same ones.
    regrouped = prepare_all(DummyPreparer(DummyDestinationSettings(reject_prob=0.25, seed=3)), [one_batch(table)])
    assert rejected == {item.event_id for item in regrouped.rejected}
    assert _prepare(table, reject_prob=1.0).rejected[0].reason == "dummy_reject"
    assert len(_prepare(table, reject_prob=1.0).rejected) == 400


def test_fail_prob_refuses_the_same_events_on_every_resend() -> None:
    events = _events(200)
    sender = DummySender(DummyDestinationSettings(batch_size=200, fail_prob=0.3, seed=9))
    first = sender.send(events)
    second = sender.send(events)
    refused = {failed.event_id for failed in first.failed}
    assert 30 < len(refused) < 90, len(refused)
    assert refused == {failed.event_id for failed in second.failed}
    assert {failed.code for failed in first.failed} == {"dummy_refused"}
    assert refused == {event.event_id for event in events if sender.would_refuse(event.event_id)}
    assert Counter(sender.delivered_ids()) == Counter({e.event_id: 2 for e in events if e.event_id not in refused})


def test_transient_prob_leaves_whole_batches_unsent_reproducibly() -> None:
    events = _events(4)

    def outcomes(seed: int) -> list[bool]:
        sender = DummySender(DummyDestinationSettings(transient_prob=0.5, seed=seed))
        results = [sender.send(events) for _ in range(40)]
        for result in results:
            assert (result.sent, result.unsent) in (([e.event_id for e in events], []), ([], events))
        return [result.error is not None for result in results]

    failing = outcomes(1)
    assert 8 < sum(failing) < 32
    assert failing == outcomes(1)
    assert failing != outcomes(2)


def test_transient_error_is_a_transient_destination_error() -> None:
    sender = DummySender(DummyDestinationSettings(transient_prob=1.0))
    result = sender.send(_events(2))
    assert isinstance(result.error, DestinationError) and isinstance(result.error, Transient)
    assert result.error.hint and result.request_ids == ["dummy-0"]
    assert sender.delivered == []


def test_terminal_after_batches_counts_batches_and_stays_terminal() -> None:
    events = _events(3)
    sender = DummySender(DummyDestinationSettings(terminal_after_batches=2))
    assert sender.send(events).sent and sender.send(events).sent
    for _ in range(2):
        with pytest.raises(DestinationError) as caught:
            sender.send(events)
        assert isinstance(caught.value, Terminal) and caught.value.hint
    assert len(sender.delivered) == 6


def test_oversized_batch_raises_before_reaching_the_vendor() -> None:
    sender = DummySender(DummyDestinationSettings(batch_size=3, terminal_after_batches=1))
    with pytest.raises(ValueError, match="at most 3"):
        sender.send(_events(4))
    # The refused call did not count as a batch: the next one is still the first.
    assert len(sender.send(_events(3)).sent) == 3


def test_latency_is_added_to_every_batch_and_overlaps_across_threads() -> None:
    sender = DummySender(DummyDestinationSettings(latency_ms=60))
    events = _events(1)
    started = time.monotonic()
    sender.send(events)
    assert time.monotonic() - started >= 0.06
    threads = [threading.Thread(target=sender.send, args=(events,)) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Slept outside the lock: four concurrent batches take about one delay, not four.
    assert 0.06 <= time.monotonic() - started < 0.2


def test_delivered_keeps_ids_and_bodies_in_order_and_survives_close() -> None:
    events = _events(5)
    sender = DummySender()
    sender.send(events[3:])
    sender.send(events[:3])
    sender.close()
    order = [*events[3:], *events[:3]]
    assert [(d.event_id, d.body) for d in sender.delivered] == [(e.event_id, e.body) for e in order]
    assert sender.delivered_ids() == [event.event_id for event in order]
    with pytest.raises(RuntimeError, match="closed"):
        sender.send(events)


def test_sender_is_thread_safe() -> None:
    events = _events(300)
    sender = DummySender(DummyDestinationSettings(fail_prob=0.1, transient_prob=0.2, seed=5))
    results: list[DeliveryResult] = []
    lock = threading.Lock()

    def work(part: list[PreparedEvent]) -> None:
        for start in range(0, len(part), 3):
            result = sender.send(part[start : start + 3])
            with lock:
                results.append(result)

    threads = [threading.Thread(target=work, args=(events[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = [event_id for result in results for event_id in result.sent]
    assert sorted(sender.delivered_ids()) == sorted(sent)
    assert len(set(sent)) == len(sent)
    assert {request_id for result in results for request_id in result.request_ids} == {
        f"dummy-{n}" for n in range(len(results))
    }
    accounted = sent + [f.event_id for r in results for f in r.failed] + [e.event_id for r in results for e in r.unsent]
    assert sorted(accounted) == sorted(event.event_id for event in events)


def test_reconfigure_validates_knobs() -> None:
    sender = DummySender()
    with pytest.raises(ValidationError):
        sender.reconfigure(fail_prob=2)
    with pytest.raises(ValidationError):
        sender.reconfigure(fail_probability=0.5)
    sender.reconfigure(batch_size=4)
    assert sender.max_batch_size == 4 and sender.settings.fail_prob == 0.0


def test_the_runtime_logs_no_row_values(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="offramp.plugins.dummy.runtime")
    table = _rows(3)
    events = _prepare(table).events
    DummySender(DummyDestinationSettings(fail_prob=0.5)).send(events)
    assert caplog.records, "the runtime logs each batch at DEBUG"
    assert not [r for r in caplog.records if "example.com" in r.getMessage() or "order-" in r.getMessage()]


# --- the suite fails destinations that break the contract --------------------------------------------------------


class _WrappedSender:
    """A dummy sender with one thing broken."""

    def __init__(self, inner: DummySender, send: Callable[[DummySender, Sequence[PreparedEvent]], DeliveryResult]):
        self.inner = inner
        self._send = send

    @property
    def max_batch_size(self) -> int:
        return self.inner.max_batch_size

    def send(self, events: Sequence[PreparedEvent]) -> DeliveryResult:
        return self._send(self.inner, events)

    def preview(self, events: Sequence[PreparedEvent]) -> bytes:
        return self.inner.preview(events)

    def close(self) -> None:
        self.inner.close()


def _loses_unsent(inner: DummySender, events: Sequence[PreparedEvent]) -> DeliveryResult:
    result = inner.send(events)
    result.unsent = result.unsent[1:]
    return result


def _sends_twice(inner: DummySender, events: Sequence[PreparedEvent]) -> DeliveryResult:
    inner.send(events)
    return inner.send(events)


def _ignores_the_limit(inner: DummySender, events: Sequence[PreparedEvent]) -> DeliveryResult:
    inner.reconfigure(batch_size=10_000)
    try:
        return inner.send(events)
    finally:
        inner.reconfigure(batch_size=25)


def _transient_as_failed(inner: DummySender, events: Sequence[PreparedEvent]) -> DeliveryResult:
    result = inner.send(events)
    if result.error is not None:
        return DeliveryResult(failed=[FailedEvent(e.event_id, "busy", "try later") for e in result.unsent])
    return result


def _terminal_without_hint(inner: DummySender, events: Sequence[PreparedEvent]) -> DeliveryResult:
    try:
        return inner.send(events)
    except DestinationError as exc:
        raise runtime.DummyTerminalError(exc.message) from None


def _logs_the_token(inner: DummySender, events: Sequence[PreparedEvent]) -> DeliveryResult:
    logging.getLogger("acme.client").debug("POST /track Access-Token: %s", LEAKED_TOKEN)
    return inner.send(events)


LEAKED_TOKEN = "tok-5f1e9c0d2b7a"


def _drops_rejects(batch: PreparedBatch) -> PreparedBatch:
    return PreparedBatch(events=batch.events)


def _detail_with_values(batch: PreparedBatch) -> PreparedBatch:
    # Name a raw value of the bad rows in every detail, as a careless plugin would.
    rejected = [RejectedEvent(r.event_id, r.reason, "bad email alice.smith@example.com") for r in batch.rejected]
    return PreparedBatch(events=batch.events, rejected=rejected)


def _random_ids(batch: PreparedBatch) -> PreparedBatch:
    return PreparedBatch(
        events=[PreparedEvent(f"{e.event_id}-{time.perf_counter_ns()}", e.body) for e in batch.events],
        rejected=batch.rejected,
    )


def _broken_hooks(
    send: Callable[[DummySender, Sequence[PreparedEvent]], DeliveryResult] | None = None,
    prepare: Callable[[PreparedBatch], PreparedBatch] | None = None,
) -> DestinationHooks:
    """The dummy's hooks with one thing broken: what the suite opens through a broken type's implementation."""

    def open_sender(context: DestinationContext) -> Sender:
        inner = runtime.open_sender(context)
        return _WrappedSender(inner, send) if send else inner

    def open_preparer(context: DestinationContext) -> Preparer:
        inner = runtime.open_preparer(context)
        if prepare is None:
            return inner
        change = prepare

        class Broken:
            unknown_columns = inner.unknown_columns

            def prepare(self, batch: pa.RecordBatch) -> PreparedBatch:
                return change(inner.prepare(batch))

            def finish(self) -> PreparedBatch:
                return change(inner.finish())

            def close(self) -> None:
                inner.close()

        return Broken()

    return DestinationHooks(open_preparer=open_preparer, open_sender=open_sender)


# Module attributes, so that a broken type's implementation ("module:NAME") names them as a plugin's would.
LOSES_UNSENT = _broken_hooks(send=_loses_unsent)
TRANSIENT_AS_FAILED = _broken_hooks(send=_transient_as_failed)
SENDS_TWICE = _broken_hooks(send=_sends_twice)
IGNORES_THE_LIMIT = _broken_hooks(send=_ignores_the_limit)
TERMINAL_WITHOUT_HINT = _broken_hooks(send=_terminal_without_hint)
LOGS_THE_TOKEN = _broken_hooks(send=_logs_the_token)
DROPS_REJECTS = _broken_hooks(prepare=_drops_rejects)
DETAIL_WITH_VALUES = _broken_hooks(prepare=_detail_with_values)
RANDOM_IDS = _broken_hooks(prepare=_random_ids)


class _BrokenHarness(DummyHarness):
    """The dummy harness over a type whose implementation is one of the broken hooks above."""

    def __init__(self, home: Path, hooks: str) -> None:
        super().__init__(home, dataclasses.replace(DESTINATION_TYPE, implementation=f"{__name__}:{hooks}"))

    def secrets(self) -> Sequence[str]:
        return (LEAKED_TOKEN,)


BROKEN: dict[str, tuple[str, str]] = {
    "loses unsent events": ("LOSES_UNSENT", "test_transient_answer_loses_nothing_and_a_resend_delivers"),
    "transient reported as failed": (
        "TRANSIENT_AS_FAILED",
        "test_transient_answer_loses_nothing_and_a_resend_delivers",
    ),
    "delivers twice": ("SENDS_TWICE", "test_good_events_are_delivered_exactly_once"),
    "ignores max_batch_size": ("IGNORES_THE_LIMIT", "test_send_refuses_more_than_max_batch_size"),
    "terminal without hint": (
        "TERMINAL_WITHOUT_HINT",
        "test_terminal_answer_stops_with_a_terminal_destination_error_and_a_hint",
    ),
    "logs a secret": ("LOGS_THE_TOKEN", "test_good_events_are_delivered_exactly_once"),
    "drops rejected rows": ("DROPS_REJECTS", "test_bad_rows_are_rejected_with_reasons_and_without_raw_values"),
    "puts raw values in details": (
        "DETAIL_WITH_VALUES",
        "test_bad_rows_are_rejected_with_reasons_and_without_raw_values",
    ),
    "unstable event ids": ("RANDOM_IDS", "test_event_ids_are_stable_across_preparations"),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_the_suite_fails_a_broken_destination(breakage: str, tmp_path: Path) -> None:
    hooks, test_name = BROKEN[breakage]
    test = getattr(DestinationConformance(), test_name)
    # The same test passes on the intact dummy, so the failure below is the breakage's doing.
    intact = DummyHarness(tmp_path / "intact")
    broken = _BrokenHarness(tmp_path / "broken", hooks)
    try:
        test(intact)
        with pytest.raises(AssertionError):
            test(broken)
    finally:
        intact.workspace.close()
        broken.workspace.close()


def test_secret_check_names_the_secret_by_position_only() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_no_secrets(["abc123", LEAKED_TOKEN], ["nothing here", f"Bearer {LEAKED_TOKEN}".encode()], "a header")
    assert LEAKED_TOKEN not in str(caught.value)
    assert "secret #1" in str(caught.value) and "text #1" in str(caught.value)
    with pytest.raises(AssertionError, match="empty secret"):
        assert_no_secrets([""], ["x"], "anything")
