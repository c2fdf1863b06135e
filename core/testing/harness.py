"""What a destination plugin gives the conformance suite: its real hooks, rows, and a way to make its vendor fail."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import pyarrow as pa

from offramp.core.destination_api import PreparedEvent
from offramp.core.plugin_api import DestinationContext
from offramp.core.plugin_types import DestinationType


class ConformanceHarness(Protocol):
    """One destination under test, with a vendor (real, emulated or in memory) the harness can make misbehave.

    A fresh harness per test: :meth:`delivered` counts from its creation. Build it from the plugin's real hooks
    and a real (or emulated) vendor, never from mocks of the plugin's own code, or the suite proves nothing.
    """

    @property
    def destination_type(self) -> DestinationType:
        """The descriptor the plugin registers; the suite imports and checks its hooks as the registry does."""
        ...

    def context(self) -> DestinationContext:
        """A real context for the destination under test, as core builds it: settings, run options that fit
        :meth:`good_rows` (for example a fixed ``now`` inside the rows' attribution window) and a real credential
        handle (:class:`offramp.core.testing.PluginWorkspace` makes one). The suite opens preparers and senders with
        it, through the plugin's own hooks, and closes them. Retries inside the sender, if it makes any, should be
        configured to wait little, so the suite stays fast."""
        ...

    def good_rows(self, events: int) -> pa.Table:
        """Valid rows, in the destination's column contract, that prepare into exactly ``events`` events with
        distinct ids. A destination that groups line items may return more rows than events; rows of one event are
        adjacent. The same ``events`` gives the same rows."""
        ...

    def bad_rows(self) -> tuple[pa.Table, set[str]]:
        """Rows the preparer must reject, every one of them, and the set of reason codes the rejections carry.

        The table has :meth:`good_rows`' schema (columns may be null), so the suite can mix good and bad rows in one
        batch. Put realistic raw values (emails, phone numbers) in them: no rejection's ``detail`` may repeat any.
        """
        ...

    def transient(self) -> AbstractContextManager[None]:
        """While open, the vendor answers every request with a transient failure (a 5xx, a rate limit); on exit it
        answers normally again. Applies to senders opened before and inside the block."""
        ...

    def terminal(self) -> AbstractContextManager[None]:
        """While open, the vendor answers with a terminal failure (revoked grant, missing permission)."""
        ...

    def refusing(self, events: Sequence[PreparedEvent]) -> AbstractContextManager[set[str]]:
        """While open, the vendor refuses some of ``events`` (at least one, not all) and accepts the others;
        yields the refused events' ids. ``events`` come from :meth:`good_rows`, at most ``max_batch_size`` of them."""
        ...

    def delivered(self) -> list[str]:
        """Ids of the events the vendor accepted since the harness was made, in order, repeats included."""
        ...

    def secrets(self) -> Sequence[str]:
        """Values that must never appear in a log record, an exception or a result (tokens, app secrets).

        Empty for a destination without secrets; then the suite's leak checks have nothing to find.
        """
        ...


__all__ = ["ConformanceHarness"]
