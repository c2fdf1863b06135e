"""The behaviour of the `tiktok-ads-offline-events` destination, as the framework looks it up.

The descriptor's ``implementation`` names this module. It gathers the hooks from the modules that hold them:
the connection test and event-set set-up (``connection``), preparation (``prepare``: the vectorized preparer;
``reference`` holds the same rules one row at a time) and sending (``sender``).
"""

from __future__ import annotations

from offramp.core.destination_api import PrepareOptions
from offramp.plugins.tiktok.connection import check_connection, create_event_set
from offramp.plugins.tiktok.prepare import VectorizedPreparer
from offramp.plugins.tiktok.sender import open_sender
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings


def open_preparer(settings: TikTokOfflineEventsDestinationSettings, options: PrepareOptions) -> VectorizedPreparer:
    """The preparer of a run: DuckDB over each record batch (see ``prepare``)."""
    return VectorizedPreparer(settings, options)


__all__ = ["check_connection", "create_event_set", "open_preparer", "open_sender"]
