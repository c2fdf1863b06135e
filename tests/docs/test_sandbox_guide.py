"""docs/sandboxes.md shows commands that exist (the sandbox workflow); the checks are tests/docs/guide_checks.py's."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from guide_checks import (
    check_documented,
    check_group_covered,
    check_links,
    check_pasted,
    documented_commands,
    pasted_commands,
)

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "sandboxes.md"


def test_the_guide_has_commands_to_check() -> None:
    assert len(pasted_commands(GUIDE)) >= 30, "fewer pasted commands than expected: check guide_checks.py"
    assert len(documented_commands(GUIDE)) >= 20


@pytest.mark.parametrize("words", pasted_commands(GUIDE), ids=shlex.join)
def test_a_pasted_command_parses(words: list[str]) -> None:
    check_pasted(words)


@pytest.mark.parametrize("words", documented_commands(GUIDE), ids=" ".join)
def test_a_documented_command_exists_with_its_options(words: list[str]) -> None:
    check_documented(words)


@pytest.mark.parametrize("group", ["sandboxes", "promotions"])
def test_every_command_and_option_of_the_workflow_is_in_the_guide(group: str) -> None:
    check_group_covered(GUIDE, group)


def test_every_link_of_the_guide_leads_somewhere() -> None:
    check_links(GUIDE)
