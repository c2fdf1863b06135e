"""The plugin author guide quotes the offramp-acme example as it is: a quoted block that drifted fails here.

A Python block of docs/plugin-author-guide.md whose first line is ``# PATH`` (a file of this repository) must
appear in that file verbatim, indentation included.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "plugin-author-guide.md"


def _quoted_blocks() -> list[tuple[str, str]]:
    blocks = re.findall(r"^```python\n# (\S+)\n(.*?)^```$", GUIDE.read_text(), re.MULTILINE | re.DOTALL)
    return [(path, body) for path, body in blocks]


def test_the_guide_quotes_files_that_exist_as_they_are() -> None:
    blocks = _quoted_blocks()
    assert len(blocks) >= 5, "the guide quotes the acme example less than before; check the pattern above"
    for path, body in blocks:
        source = REPO / path
        assert source.is_file(), f"the guide quotes {path}, which does not exist"
        assert body in source.read_text(), f"the guide's quote of {path} is not in the file any more:\n{body}"
