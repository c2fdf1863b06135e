"""The `tiktok-ads-offline-events` destination: TikTok Events API 2.0, offline (or web) event sets.

This module holds only the descriptor and settings, so listing plugins never imports the HTTP client code. Its
names are built when first used (PEP 562 ``__getattr__``; the entry point ``offramp.plugins.tiktok:DESTINATION_TYPE``
resolves through it): importing the package, as ``offramp demo`` and the other contributed commands in
``offramp.plugins.tiktok.commands`` do, loads no pydantic model, so ``offramp --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offramp.core import DestinationType
    from offramp.plugins.tiktok.events import KNOWN_EVENTS, LEGACY_EVENTS, STANDARD_EVENTS
    from offramp.plugins.tiktok.options import TikTokRunOptions
    from offramp.plugins.tiktok.settings import MAX_EVENTS_PER_REQUEST, TikTokOfflineEventsDestinationSettings

    DESTINATION_TYPE: DestinationType


def _destination_type() -> DestinationType:
    from offramp.core import DestinationCapabilities, DestinationType, __version__
    from offramp.plugins.tiktok.options import TikTokRunOptions
    from offramp.plugins.tiktok.rules import CONTRACT_COLUMNS
    from offramp.plugins.tiktok.settings import MAX_EVENTS_PER_REQUEST, TikTokOfflineEventsDestinationSettings

    return DestinationType(
        name="tiktok-ads-offline-events",
        display_name="TikTok Ads Offline Events",
        version=__version__,
        settings=TikTokOfflineEventsDestinationSettings,
        capabilities=DestinationCapabilities(
            max_batch_size=MAX_EVENTS_PER_REQUEST,
            event_sources=("offline", "web"),
            supports_dedupe=True,
            # Same event source, event name and event_id within 48 hours of the first (docs/tiktok-api-facts.md,
            # "Deduplication").
            dedup_window_seconds=48 * 3600,
            # event/track/ allows 1,000 requests per second per app (docs/tiktok-api-facts.md, "Rate limits"); a
            # fifth of it leaves room for the app's other users, and a 40100/40133 answer is retried after a wait.
            # 50 a second (the earlier figure) capped a run at 50,000 events/s, a third of what the emulator takes
            # on this project's 2 cores (docs/benchmarks.md): the limit, not offramp, bounded a big run.
            requests_per_second=200.0,
            max_in_flight=8,
            # A request with a top-level test_event_code (docs/tiktok-api-facts.md, "Request body") goes to the
            # event set's Test Events view, not to attribution: what every send from a sandbox carries.
            test_traffic_option="test_event_code",
        ),
        credential_types=("tiktok-offline-events",),
        description="Sends conversions to a TikTok offline event set (or pixel) through the Events API 2.0.",
        implementation="offramp.plugins.tiktok.destination:HOOKS",
        run_options=TikTokRunOptions,
        columns=CONTRACT_COLUMNS,
    )


# Where each re-exported name lives; DESTINATION_TYPE is built by _destination_type.
_REEXPORTS = {
    "KNOWN_EVENTS": "offramp.plugins.tiktok.events",
    "LEGACY_EVENTS": "offramp.plugins.tiktok.events",
    "STANDARD_EVENTS": "offramp.plugins.tiktok.events",
    "MAX_EVENTS_PER_REQUEST": "offramp.plugins.tiktok.settings",
    "TikTokOfflineEventsDestinationSettings": "offramp.plugins.tiktok.settings",
    "TikTokRunOptions": "offramp.plugins.tiktok.options",
}


def __getattr__(name: str) -> Any:
    if name == "DESTINATION_TYPE":
        value: Any = _destination_type()
    elif name in _REEXPORTS:
        import importlib

        value = getattr(importlib.import_module(_REEXPORTS[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # built once: later look-ups find it here
    return value


__all__ = [
    "DESTINATION_TYPE",
    "KNOWN_EVENTS",
    "LEGACY_EVENTS",
    "MAX_EVENTS_PER_REQUEST",
    "STANDARD_EVENTS",
    "TikTokOfflineEventsDestinationSettings",
    "TikTokRunOptions",
]
