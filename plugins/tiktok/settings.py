"""Settings of the `tiktok-ads-offline-events` destination."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from offramp.core import PluginSettings
from offramp.plugins.tiktok.events import KNOWN_EVENTS

MAX_EVENTS_PER_REQUEST = 1000
_DIGITS = re.compile(r"^[0-9]+$")
_PIXEL_CODE = re.compile(r"^[A-Z0-9]{10,32}$")


class TikTokOfflineEventsDestinationSettings(PluginSettings):
    """Where and how events are sent to TikTok. The API host comes from the credential's `api_base_url`."""

    advertiser_id: str = Field(
        pattern=r"^[0-9]+$",
        description="Advertiser (ad account) ID, digits only, from the top-right menu of TikTok Ads Manager.",
    )
    event_set_id: str | None = Field(
        default=None,
        description="Offline event set ID (digits), or the pixel code when event_source is web; "
        "`offramp destinations ensure-event-set` creates the set and fills this in.",
    )
    event_set_name: str | None = Field(
        default=None,
        min_length=1,
        description="Name of the event set; checked by `destinations test`, used when creating the set.",
    )
    event_source: Literal["offline", "web"] = Field(
        default="offline", description="TikTok event source: offline (store, call centre, CRM) or web."
    )
    auto_tracking: bool = Field(
        default=False,
        description="Whether new campaigns of the advertiser measure with this event set automatically.",
    )
    fixed_event_name: str | None = Field(
        default=None,
        description="Send every row as this event (for example CompletePayment), ignoring an `event` column.",
    )
    limited_data_use: bool = Field(
        default=False, description="Flag events for TikTok's Limited Data Use (US state privacy laws)."
    )
    partner_name: str | None = Field(
        default=None, max_length=64, description="Integration partner label sent with each request."
    )
    batch_size: int = Field(
        default=MAX_EVENTS_PER_REQUEST,
        ge=1,
        le=MAX_EVENTS_PER_REQUEST,
        description="Events per request, 1 to 1000 (TikTok refuses more than 1000).",
    )

    @model_validator(mode="after")
    def _check_event_source_fields(self) -> TikTokOfflineEventsDestinationSettings:
        if self.event_set_id is not None:
            if self.event_source == "offline" and not _DIGITS.match(self.event_set_id):
                raise ValueError("event_set_id: an offline event set ID is digits only (TikTok answers 40002)")
            if self.event_source == "web" and not _PIXEL_CODE.match(self.event_set_id):
                raise ValueError("event_set_id: for event_source web, give the pixel code (A-Z and 0-9)")
        if (
            self.fixed_event_name is not None
            and self.event_source == "offline"
            and self.fixed_event_name not in KNOWN_EVENTS
        ):
            known = ", ".join(sorted(KNOWN_EVENTS))
            raise ValueError(f"fixed_event_name: offline accepts standard events only ({known})")
        return self


__all__ = ["MAX_EVENTS_PER_REQUEST", "TikTokOfflineEventsDestinationSettings"]
