"""The behaviour of the `tiktok-ads-offline-events` destination: its :data:`HOOKS`, named by the descriptor.

It gathers the hooks from the modules that hold them: the connection test and the ``ensure-event-set`` action
(``connection``), preparation (``prepare``: the vectorized preparer; ``reference`` holds the same rules one row at
a time) and sending (``sender``).
"""

from __future__ import annotations

from offramp.core import DestinationAction, DestinationContext, DestinationHooks
from offramp.plugins.tiktok.connection import check_connection, ensure_event_set
from offramp.plugins.tiktok.options import TikTokPrepareOptions
from offramp.plugins.tiktok.prepare import VectorizedPreparer
from offramp.plugins.tiktok.rules import needed_identifiers
from offramp.plugins.tiktok.sender import open_sender
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings


def open_preparer(context: DestinationContext) -> VectorizedPreparer:
    """The preparer of a run: DuckDB over each record batch (see ``prepare``), shaped by the run options."""
    settings = context.settings
    if not isinstance(settings, TikTokOfflineEventsDestinationSettings):
        raise TypeError(f"expected tiktok-ads-offline-events settings, got {type(settings).__name__}")
    return VectorizedPreparer(settings, TikTokPrepareOptions.of(context))


def required_columns(context: DestinationContext) -> tuple[tuple[str, ...], ...]:
    """One column of each group, or every row is rejected (missing_event_name, missing_timestamp,
    missing_identifiers): the preparer's own rules, read from ``rules``."""
    settings = context.settings
    if not isinstance(settings, TikTokOfflineEventsDestinationSettings):
        raise TypeError(f"expected tiktok-ads-offline-events settings, got {type(settings).__name__}")
    event: tuple[tuple[str, ...], ...] = () if settings.fixed_event_name else (("event",),)
    return (*event, ("timestamp",), needed_identifiers(settings.event_source))


HOOKS = DestinationHooks(
    open_preparer=open_preparer,
    open_sender=open_sender,
    check_connection=check_connection,
    required_columns=required_columns,
    actions=(
        DestinationAction(
            "ensure-event-set",
            help="Create the destination's offline event set (with its name and auto tracking) when no event set "
            "ID is set, and store its ID on the destination.",
            run=ensure_event_set,
        ),
    ),
)

__all__ = ["HOOKS", "open_preparer", "required_columns"]
