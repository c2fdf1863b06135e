"""docs/tiktok-destination.md lists TikTok's event names and currencies exactly as the plugin checks them.

Each list sits between ``<!-- vocabulary:NAME -->`` and ``<!-- /vocabulary:NAME -->`` as backquoted names. A name
the code accepts but the page leaves out (or the reverse) would send a user to a wrong `--map` target or currency.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from offramp.plugins.tiktok.events import LEGACY_EVENTS, STANDARD_EVENTS
from offramp.plugins.tiktok.rules import CURRENCIES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tiktok-destination.md"


def _listed(block: str) -> list[str]:
    """The backquoted names between a block's markers, in the order written."""
    text = PAGE.read_text()
    found = re.search(rf"<!-- vocabulary:{block} -->\n(.*?)<!-- /vocabulary:{block} -->", text, re.DOTALL)
    assert found is not None, f"docs/tiktok-destination.md has no vocabulary:{block} block"
    return re.findall(r"`([^`]+)`", found.group(1))


@pytest.mark.parametrize(
    ("block", "accepted"),
    [("standard-events", STANDARD_EVENTS), ("legacy-events", LEGACY_EVENTS), ("currencies", CURRENCIES)],
)
def test_the_page_lists_exactly_what_the_plugin_accepts(block: str, accepted: frozenset[str]) -> None:
    listed = _listed(block)
    assert len(listed) == len(set(listed)), f"vocabulary:{block} lists a name twice"
    assert set(listed) == set(accepted), (
        f"vocabulary:{block}: missing from the page {sorted(set(accepted) - set(listed))}, "
        f"not accepted by the plugin {sorted(set(listed) - set(accepted))}"
    )
    assert listed == sorted(listed), f"vocabulary:{block}: keep the list sorted, so a reader can find a name"
