"""Settings of the `tiktok-ads-offline-events` destination."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from offramp.core import PluginSettings
from offramp.plugins.tiktok.events import unknown_event_message

MAX_EVENTS_PER_REQUEST = 1000
_DIGITS = re.compile(r"^[0-9]+$")
_PIXEL_CODE = re.compile(r"^[A-Z0-9]{10,32}$")


class TikTokOfflineEventsDestinationSettings(PluginSettings):
    """Where and how events are sent to TikTok. The API host comes from the credential's `api_base_url`."""

    advertiser_id: str = Field(
        pattern=r"^[0-9]+$",
        description="Advertiser (ad account) ID, digits only, from the top-right menu of TikTok Ads Manager.",
    )
    event_source: Literal["offline", "web"] = Field(
        default="offline", description="TikTok event source: offline (store, call centre, CRM) or web."
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

    # Field validators (not a model validator) so these errors are reported together with every other one;
    # event_source is declared first, so its validated value is in info.data.
    @field_validator("event_set_id")
    @classmethod
    def _event_set_id_fits_source(cls, value: str | None, info: ValidationInfo) -> str | None:
        source = info.data.get("event_source")
        if value is not None and source == "offline" and not _DIGITS.match(value):
            raise ValueError("an offline event set ID is digits only (TikTok answers 40002 otherwise)")
        if value is not None and source == "web" and not _PIXEL_CODE.match(value):
            raise ValueError("for event_source web, give the pixel code (A-Z and 0-9)")
        return value

    @field_validator("fixed_event_name")
    @classmethod
    def _standard_event_for_offline(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("event_source") == "offline":
            problem = unknown_event_message(value)
            if problem is not None:
                raise ValueError(f"offline takes standard events only: {problem}")
        return value


__all__ = ["MAX_EVENTS_PER_REQUEST", "TikTokOfflineEventsDestinationSettings"]
