"""Commands named in the design whose machinery has not landed yet; they say so and exit 1."""

from __future__ import annotations

from offramp.core.errors import OfframpError


def _not_yet(what: str) -> None:
    raise OfframpError(f"{what} is not available in this version of offramp", hint="see the roadmap in docs/")


def bench() -> None:
    """[not yet available] Measure preparation and end-to-end throughput on synthetic orders."""
    _not_yet("`offramp bench`")
