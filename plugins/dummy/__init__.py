"""The `dummy` destination: accepts everything, sends nothing, and fails on request.

Its knobs let tests drive every path of the runner (transient errors, vendor refusals, rejects, a terminal
failure) without a network. It is also the worked example of the plugin author guide. Its hooks
(`offramp.plugins.dummy.runtime:HOOKS`) are imported when the descriptor is registered; its sender keeps what it
"delivered" in memory (`runtime.vendor`) instead of calling a vendor.
"""

from __future__ import annotations

from pydantic import Field

from offramp.core import DestinationCapabilities, DestinationType, PluginSettings, __version__


class DummyDestinationSettings(PluginSettings):
    """Failure knobs of the dummy destination. Probabilities are per batch, or per row where stated."""

    batch_size: int = Field(default=100, ge=1, le=10_000, description="Rows per batch, 1 to 10000.")
    transient_prob: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Chance that a batch fails with a transient (retryable) error.",
    )
    fail_prob: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Chance that a row is refused by the 'vendor' (outcome failed).",
    )
    reject_prob: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Chance that a row is rejected by validation (outcome rejected).",
    )
    terminal_after_batches: int | None = Field(
        default=None, ge=0, description="Fail terminally after this many batches, as a revoked grant would."
    )
    latency_ms: int = Field(default=0, ge=0, le=60_000, description="Delay added to every batch, in ms.")
    seed: int = Field(default=0, description="Seed of the random draws, so a failing test replays exactly.")


class DummyRunOptions(PluginSettings):
    """What an orchestration may set for the dummy destination."""

    test_event_code: str | None = Field(
        default=None,
        description="Marks the run's events as test traffic (kept with each delivered event); as TikTok's, so that "
        "the dummy can run in a sandbox.",
    )


DESTINATION_TYPE = DestinationType(
    name="dummy",
    display_name="Dummy (for tests)",
    version=__version__,
    settings=DummyDestinationSettings,
    # Nothing is sent, so nothing limits the rate: the runner's throttle would only slow the tests down.
    capabilities=DestinationCapabilities(
        max_batch_size=10_000,
        event_sources=(),
        supports_dedupe=True,
        requests_per_second=1000.0,
        max_in_flight=16,
        # It sends nothing anyway; declaring the option lets tests run it in a sandbox as TikTok runs there.
        test_traffic_option="test_event_code",
    ),
    credential_types=("static-token",),
    description="Sends nothing; fails on purpose according to its knobs.",
    implementation="offramp.plugins.dummy.runtime:HOOKS",
    run_options=DummyRunOptions,
)

__all__ = ["DESTINATION_TYPE", "DummyDestinationSettings", "DummyRunOptions"]
