"""The `tiktok-ads-offline-events` destination: TikTok Events API 2.0, offline (or web) event sets.

This module holds only the descriptor and settings, so listing plugins never imports the HTTP client code.
"""

from offramp.core import DestinationCapabilities, DestinationType, __version__
from offramp.plugins.tiktok.events import KNOWN_EVENTS, LEGACY_EVENTS, STANDARD_EVENTS
from offramp.plugins.tiktok.options import TikTokRunOptions
from offramp.plugins.tiktok.settings import MAX_EVENTS_PER_REQUEST, TikTokOfflineEventsDestinationSettings

DESTINATION_TYPE = DestinationType(
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
        # twentieth of it leaves room for the app's other users and for TikTok's advertiser-level limits.
        requests_per_second=50.0,
        max_in_flight=8,
    ),
    credential_types=("tiktok-offline-events",),
    description="Sends conversions to a TikTok offline event set (or pixel) through the Events API 2.0.",
    implementation="offramp.plugins.tiktok.destination:HOOKS",
    run_options=TikTokRunOptions,
)

__all__ = [
    "DESTINATION_TYPE",
    "KNOWN_EVENTS",
    "LEGACY_EVENTS",
    "MAX_EVENTS_PER_REQUEST",
    "STANDARD_EVENTS",
    "TikTokOfflineEventsDestinationSettings",
    "TikTokRunOptions",
]
