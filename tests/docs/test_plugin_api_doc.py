"""docs/plugin-api.md is what tests/docs/plugin_api_doc.py generates from the code's docstrings, to the byte."""

from __future__ import annotations

import difflib

from plugin_api_doc import OUTPUT, render


def test_the_plugin_api_reference_is_up_to_date() -> None:
    expected = render()
    written = OUTPUT.read_text() if OUTPUT.exists() else ""
    if written != expected:
        diff = "".join(
            list(difflib.unified_diff(written.splitlines(True), expected.splitlines(True), "docs/plugin-api.md",
                                      "generated"))[:60]
        )  # fmt: skip
        raise AssertionError(
            "docs/plugin-api.md differs from the docstrings of the public API; regenerate it with\n"
            f"    .venv/bin/python tests/docs/plugin_api_doc.py\nand commit the result. First differences:\n{diff}"
        )


def test_the_reference_documents_every_public_name() -> None:
    import offramp.core
    import offramp.core.testing

    text = render()
    names = [name for name in [*offramp.core.__all__, *offramp.core.testing.__all__] if name != "__version__"]
    missing = [name for name in names if f"### `{name}`" not in text]
    assert missing == []
