"""The run options of the `tiktok-ads-offline-events` destination: what an orchestration may set for TikTok.

They sit in an orchestration's flat ``options`` beside the options every destination shares (mode, timezone,
schedule, source limits); core validates both together, every error at once, and hands these to the hooks as
``context.options``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import Field, field_validator

from offramp.core import DestinationContext, PluginSettings
from offramp.plugins.tiktok.events import unknown_event_message

# TikTok attributes offline events up to 28 days after they happened (docs/tiktok-api-facts.md, "Time windows").
ATTRIBUTION_WINDOW_DAYS = 28


class TikTokRunOptions(PluginSettings):
    """How an orchestration's rows are shaped for TikTok."""

    default_phone_region: str = Field(
        default="US", description="Region (ISO 3166 alpha-2) of phone numbers written without a country code."
    )
    event_name_map: dict[str, str] = Field(
        default_factory=dict, description="Source event names translated to TikTok's, e.g. Order Completed."
    )
    attribution_window_days: int = Field(
        default=ATTRIBUTION_WINDOW_DAYS,
        ge=1,
        le=365,
        description="Rows older than this many days are rejected: TikTok attributes offline events up to 28 days.",
    )
    test_event_code: str | None = Field(default=None, description="Send to TikTok's Test Events view.")

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        # Imported here: the descriptor imports this module, and listing plugins should not load phonenumbers.
        import phonenumbers

        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r}; use an ISO 3166 code such as US, GB or DE")
        return region

    @field_validator("event_name_map")
    @classmethod
    def _known_targets(cls, value: dict[str, str]) -> dict[str, str]:
        # Checked when the orchestration is stored, rather than at run time with every row rejected. Against the
        # known events (case-sensitive, as the preparers check them): the event source is the destination's.
        problem = unknown_event_message(*value.values())
        if problem is not None:
            raise ValueError(problem)
        return value


@dataclass(frozen=True)
class TikTokPrepareOptions:
    """What both preparers read: the run options, the orchestration's timezone and the clock.

    Args:
        timezone: IANA zone of timestamps that carry none.
        default_phone_region: Region of phone numbers written without a country code.
        event_name_map: Source event names translated before validation (``Order Completed`` -> ``Purchase``).
        attribution_window_days: Events older than this are rejected (TikTok would not attribute them).
        future_tolerance_seconds: Events further than this in the future are rejected (clock skew allowance).
        now: Unix seconds the window is measured from; None means the clock at preparation time.
    """

    timezone: str = "UTC"
    default_phone_region: str = "US"
    event_name_map: Mapping[str, str] = field(default_factory=dict)
    attribution_window_days: int = ATTRIBUTION_WINDOW_DAYS
    future_tolerance_seconds: int = 600
    now: int | None = None

    @classmethod
    def of(cls, context: DestinationContext) -> TikTokPrepareOptions:
        """The options of a destination's context (its run options, timezone and ``now``)."""
        options = context.options
        if not isinstance(options, TikTokRunOptions):
            raise TypeError(f"expected TikTok run options, got {type(options).__name__}")
        return cls(
            timezone=context.timezone,
            default_phone_region=options.default_phone_region,
            event_name_map=dict(options.event_name_map),
            attribution_window_days=options.attribution_window_days,
            now=None if context.now is None else int(context.now),
        )


__all__ = ["ATTRIBUTION_WINDOW_DAYS", "TikTokPrepareOptions", "TikTokRunOptions"]
