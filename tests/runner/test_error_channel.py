"""The runner's rules for errors, one test per sentence of ``offramp.core.errors``' list (issue 12, item 4).

Every run here is real: a real SQLite store, an orchestration over an in-memory DuckDB query, and
``run_orchestration``. The destination is a small type defined in this file (``scripted``), registered into a
Registry like any plugin: its sender answers each call as the test's script says, so a test can make it raise
once, refuse, or stop half-way, and see what the runner records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from pydantic import Field

from offramp.core import (
    DeliveryResult,
    DestinationCapabilities,
    DestinationContext,
    DestinationError,
    DestinationHooks,
    DestinationType,
    FailedEvent,
    PluginSettings,
    PreparedBatch,
    PreparedEvent,
    RejectedEvent,
    Terminal,
    Transient,
)
from offramp.core.environment import DEFAULT_WORKSPACE, Environment
from offramp.core.errors import ConfigError
from offramp.core.registry import Registry, discover
from offramp.core.runner import RunRequest, RunSummary, run_orchestration
from offramp.core.runner import ledger as runner_ledger
from offramp.core.secrets import create_key_file
from offramp.core.services.context import Context
from offramp.core.services.credentials import add_credential
from offramp.core.services.destinations import add_destination
from offramp.core.services.orchestrations import add_orchestration
from offramp.core.state.models import Destination, Run
from offramp.core.state.store import initialize

WORKSPACE = DEFAULT_WORKSPACE
ROWS = 7
SQL = f"SELECT 'E' || i AS event_id, i AS n FROM range({ROWS}) t(i) ORDER BY i"
PII = "jane.doe@example.com"


class ScriptedSettings(PluginSettings):
    """Knobs of the test's destination."""

    batch_size: int = Field(default=3, ge=1, description="Events per request.")
    fail_prepare_at: int | None = Field(default=None, description="The preparer raises on this call (0-based).")
    hold_back: bool = Field(default=False, description="The preparer keeps every event until finish().")
    reject: list[str] = Field(default_factory=list, description="Event ids the preparer rejects.")


class ScriptedRunOptions(PluginSettings):
    """The test's run options."""

    test_event_code: str | None = Field(default=None, description="Send to the vendor's test view.")


Answer = Callable[[Sequence[PreparedEvent]], DeliveryResult]


@dataclass
class Vendor:
    """What the scripted sender answers, call by call (then it accepts everything), and what it accepted."""

    script: list[Answer] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    contexts: list[DestinationContext] = field(default_factory=list)


VENDOR = Vendor()


class TransientOutage(DestinationError, Transient):
    """The vendor is down for a moment."""


class RevokedGrant(DestinationError, Terminal):
    """The vendor revoked the grant."""


def accept(events: Sequence[PreparedEvent]) -> DeliveryResult:
    VENDOR.accepted.extend(event.event_id for event in events)
    return DeliveryResult(sent=[event.event_id for event in events])


class ScriptedSender:
    def __init__(self, settings: ScriptedSettings) -> None:
        self._settings = settings

    @property
    def max_batch_size(self) -> int:
        return self._settings.batch_size

    def send(self, events: Sequence[PreparedEvent]) -> DeliveryResult:
        VENDOR.calls.append([event.event_id for event in events])
        answer = VENDOR.script.pop(0) if VENDOR.script else accept
        return answer(events)

    def preview(self, events: Sequence[PreparedEvent]) -> bytes:
        return b"[" + b",".join(event.body for event in events) + b"]"

    def close(self) -> None:
        pass


class ScriptedPreparer:
    def __init__(self, settings: ScriptedSettings) -> None:
        self._settings = settings
        self._calls = 0
        self._held: list[PreparedEvent] = []

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        return ()

    def prepare(self, batch: pa.RecordBatch) -> PreparedBatch:
        call, self._calls = self._calls, self._calls + 1
        if call == self._settings.fail_prepare_at:
            raise RuntimeError(f"cannot parse the row of {PII}")  # a foreign error quoting a value: never stored
        result = PreparedBatch()
        for row in batch.to_pylist():
            event_id = str(row["event_id"])
            if event_id in self._settings.reject:
                result.rejected.append(RejectedEvent(event_id, "scripted_reject", "rejected by the script"))
            else:
                result.events.append(PreparedEvent(event_id, b'{"id":"' + event_id.encode() + b'"}'))
        if self._settings.hold_back:
            self._held += result.events
            result.events = []
        return result

    def finish(self) -> PreparedBatch:
        held, self._held = self._held, []
        return PreparedBatch(events=held)

    def close(self) -> None:
        pass


def open_preparer(context: DestinationContext) -> ScriptedPreparer:
    assert isinstance(context.settings, ScriptedSettings)
    return ScriptedPreparer(context.settings)


def open_sender(context: DestinationContext) -> ScriptedSender:
    assert isinstance(context.settings, ScriptedSettings)
    VENDOR.contexts.append(context)
    return ScriptedSender(context.settings)


HOOKS = DestinationHooks(open_preparer=open_preparer, open_sender=open_sender)

SCRIPTED = DestinationType(
    name="scripted",
    display_name="Scripted (tests)",
    version="1.0",
    settings=ScriptedSettings,
    capabilities=DestinationCapabilities(max_batch_size=100, requests_per_second=1000.0, max_in_flight=1),
    credential_types=("static-token",),
    description="Answers as the test says.",
    implementation=f"{__name__}:HOOKS",
    run_options=ScriptedRunOptions,
)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    VENDOR.script.clear()
    VENDOR.calls.clear()
    VENDOR.accepted.clear()
    VENDOR.contexts.clear()
    registry: Registry = discover()
    registry.register("destination", SCRIPTED)
    env = Environment(home=tmp_path, database_url=None, secret_key=None, workspace=WORKSPACE, auto_upgrade=True)
    store = initialize(env)[0]
    create_key_file(env.key_file)
    context = Context(env=env, store=store, actor="test", _registry=registry)
    with store.session() as session:
        add_credential(session, context, WORKSPACE, "tok", "static-token", {"token": "s3cret-token"})
    try:
        yield context
    finally:
        store.dispose()


def orchestration(ctx: Context, **settings: object) -> str:
    with ctx.store.session() as session:
        add_destination(session, ctx, WORKSPACE, "sink", "scripted", "tok", dict(settings))
        add_orchestration(session, ctx, WORKSPACE, "orders", "sink", SQL, "duckdb::memory:", {})
    return "orders"


def run(ctx: Context, batch_rows: int = 2, **request: object) -> RunSummary:
    """A run reading record batches of ``batch_rows`` rows."""
    return run_orchestration(
        ctx,
        RunRequest(workspace=WORKSPACE, orchestration="orders", batch_rows=batch_rows, **request),  # type: ignore[arg-type]
    )


def adds_up(summary: RunSummary, queried: int = ROWS) -> None:
    assert summary.queried == queried
    assert summary.sent + summary.rejected + summary.failed + summary.skipped + summary.unknown == queried


def ledger(ctx: Context, run_id: str) -> dict[str, tuple[str, str | None, int]]:
    with ctx.store.read_session() as session:
        stored = runner_ledger.entries(session, run_id)
        return {entry.event_id: (entry.outcome, entry.reason_code, entry.rows) for entry in stored}


def stored_error(ctx: Context, run_id: str) -> str | None:
    with ctx.store.read_session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run.error


def raises(error: BaseException) -> Answer:
    def answer(events: Sequence[PreparedEvent]) -> DeliveryResult:
        raise error

    return answer


def test_a_sender_raising_a_transient_error_gets_the_whole_batch_again(ctx: Context) -> None:
    # The repro: this failed the run on the first attempt, and reported queried 0 for 7 rows read.
    orchestration(ctx)
    VENDOR.script.append(raises(TransientOutage("the vendor is down", hint="wait")))
    summary = run(ctx)
    assert summary.status == "succeeded", summary.error
    adds_up(summary)
    assert summary.sent == ROWS
    assert VENDOR.calls[0] == VENDOR.calls[1]  # the whole batch, again
    assert sorted(VENDOR.accepted) == sorted(f"E{i}" for i in range(ROWS))  # each event once


def test_a_transient_result_gives_its_unsent_events_back(ctx: Context) -> None:
    orchestration(ctx)

    def half(events: Sequence[PreparedEvent]) -> DeliveryResult:
        first, rest = events[0], list(events[1:])
        VENDOR.accepted.append(first.event_id)
        return DeliveryResult(sent=[first.event_id], unsent=rest, error=TransientOutage("rate limited"))

    VENDOR.script.append(half)
    summary = run(ctx)
    assert summary.status == "succeeded", summary.error
    adds_up(summary)
    assert VENDOR.calls[1] == VENDOR.calls[0][1:]  # only the unsent events, again
    assert sorted(VENDOR.accepted) == sorted(f"E{i}" for i in range(ROWS))


@pytest.mark.parametrize(
    "error",
    [RevokedGrant("the grant was revoked", hint="authorize again"), RuntimeError(f"boom for {PII}")],
    ids=["terminal", "foreign"],
)
def test_a_sender_raising_anything_else_stops_the_run_with_the_batch_not_sent(
    ctx: Context, error: BaseException
) -> None:
    # The repro: 7 rows read, the sender raises, and the run said queried 0.
    orchestration(ctx, batch_size=ROWS)
    VENDOR.script.append(raises(error))
    summary = run(ctx, batch_rows=ROWS)
    assert summary.status == "failed"
    adds_up(summary)
    assert len(VENDOR.calls) == 1  # stopped: no other batch was sent, and this one not again
    entries = ledger(ctx, summary.run_id)
    assert len(VENDOR.calls[0]) == ROWS
    assert all(entries[event_id][:2] == ("failed", "not_sent") for event_id in VENDOR.calls[0])
    assert summary.failed == ROWS
    if isinstance(error, RevokedGrant):
        assert summary.error == "the grant was revoked"
        assert summary.hint is not None and summary.hint.startswith("authorize again")
    else:
        assert summary.error is not None and "RuntimeError" in summary.error
        assert PII not in (summary.error or "") and PII not in (stored_error(ctx, summary.run_id) or "")
    assert summary.hint is not None and "offramp run orders --resume" in summary.hint
    resumed = run(ctx, batch_rows=ROWS, resume=True)
    assert resumed.status == "succeeded", resumed.error
    adds_up(resumed)
    assert resumed.sent == ROWS
    assert sorted(VENDOR.accepted) == sorted(f"E{i}" for i in range(ROWS))


def test_a_result_with_a_terminal_error_stops_the_run_after_recording_its_progress(ctx: Context) -> None:
    orchestration(ctx, batch_size=ROWS)

    def partly(events: Sequence[PreparedEvent]) -> DeliveryResult:
        sent, refused, rest = events[0], events[1], list(events[2:])
        VENDOR.accepted.append(sent.event_id)
        return DeliveryResult(
            sent=[sent.event_id],
            failed=[FailedEvent(refused.event_id, "bad_event", "refused")],
            unsent=rest,
            error=RevokedGrant("the grant was revoked half-way", hint="authorize again"),
        )

    VENDOR.script.append(partly)
    summary = run(ctx, batch_rows=ROWS)
    assert summary.status == "failed"
    assert summary.error == "the grant was revoked half-way"
    adds_up(summary)
    assert len(VENDOR.calls) == 1
    first, second, *rest = VENDOR.calls[0]
    entries = ledger(ctx, summary.run_id)
    assert entries[first][0] == "sent"
    assert entries[second][:2] == ("failed", "bad_event")
    assert all(entries[event_id][:2] == ("failed", "not_sent") for event_id in rest)
    assert summary.sent == 1 and summary.failed == ROWS - 1


def test_a_preparer_that_raises_stops_the_run_and_its_rows_are_not_prepared(ctx: Context) -> None:
    orchestration(ctx, fail_prepare_at=1)  # the second record batch (rows 2 and 3)
    summary = run(ctx)
    assert summary.status == "failed"
    adds_up(summary, queried=4)  # two record batches read: the first's rows sent or not sent, the second's not prepared
    assert summary.error is not None and "RuntimeError" in summary.error and PII not in summary.error
    assert PII not in (stored_error(ctx, summary.run_id) or "")
    entries = ledger(ctx, summary.run_id)
    assert outcome_rows(entries, "not_prepared") == 2
    assert [key for key, (_, reason, _) in entries.items() if reason == "not_prepared"] == [ledger_key()]
    # --resume forgets the failed entries, the made-up one included, and prepares everything again.
    set_settings(ctx, fail_prepare_at=None)
    resumed = run(ctx, resume=True)
    assert resumed.status == "succeeded", resumed.error
    adds_up(resumed)
    assert resumed.sent == ROWS
    assert all(reason != "not_prepared" for _, reason, _ in ledger(ctx, summary.run_id).values())


def ledger_key() -> str:
    """The made-up key of rows not prepared: it holds U+FFFF, which no event id's key holds."""
    key = runner_ledger.not_prepared_key()
    assert "\uffff" in key and runner_ledger.key(key) != key
    return key


def outcome_rows(entries: dict[str, tuple[str, str | None, int]], reason: str) -> int:
    return sum(rows for _, why, rows in entries.values() if why == reason)


def set_settings(ctx: Context, **settings: object) -> None:
    """Change the destination's stored settings (the preparer recovers) without a service: a test's shortcut."""
    with ctx.store.session() as session:
        row = session.scalar(sa.select(Destination).where(Destination.name == "sink"))
        assert row is not None
        row.settings = {**row.settings, **settings}


def test_rows_a_preparer_holds_back_when_the_run_stops_are_counted(ctx: Context) -> None:
    orchestration(ctx, hold_back=True, fail_prepare_at=2)  # holds rows 0-3, then raises on rows 4-5
    summary = run(ctx)
    assert summary.status == "failed"
    adds_up(summary, queried=6)
    assert outcome_rows(ledger(ctx, summary.run_id), "not_prepared") == 6
    assert VENDOR.calls == []


def test_rejection_is_data_and_the_run_goes_on(ctx: Context) -> None:
    orchestration(ctx, reject=["E1", "E4"])
    summary = run(ctx)
    assert summary.status == "succeeded", summary.error
    adds_up(summary)
    assert summary.rejected == 2 and summary.sent == ROWS - 2
    assert summary.reason_counts == {"scripted_reject": 2}


def test_a_terminal_error_shows_its_hint_in_the_summary(ctx: Context) -> None:
    orchestration(ctx, batch_size=ROWS)
    VENDOR.script.append(raises(RevokedGrant("the grant was revoked", hint="offramp credentials authorize tok")))
    summary = run(ctx, batch_rows=ROWS)
    assert summary.status == "failed"
    assert summary.error == "the grant was revoked"
    assert summary.hint is not None and summary.hint.startswith("offramp credentials authorize tok")


def test_run_options_are_overridden_for_one_run_and_recorded(ctx: Context) -> None:
    orchestration(ctx)
    summary = run(ctx, options={"test_event_code": "TEST123"})
    assert summary.status == "succeeded", summary.error
    assert VENDOR.contexts[-1].options == ScriptedRunOptions(test_event_code="TEST123")
    with ctx.store.read_session() as session:
        stored = session.get(Run, summary.run_id)
        assert stored is not None
        assert stored.options["options"] == {"test_event_code": "TEST123"}


def test_an_unknown_run_option_is_refused_before_anything_is_written(ctx: Context) -> None:
    orchestration(ctx)
    with pytest.raises(ConfigError, match="valid options: test_event_code"):
        run(ctx, options={"test_event_kode": "X"})
    with ctx.store.read_session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Run)) == 0


def test_concurrency_above_the_destinations_limit_is_lowered_with_a_warning(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    orchestration(ctx)
    with caplog.at_level(logging.WARNING, logger="offramp.core.runner.engine"):
        summary = run(ctx, concurrency=8)
    assert summary.status == "succeeded", summary.error
    assert any("running with 1 requests in flight" in record.getMessage() for record in caplog.records)
