"""Each package exposes a small, sorted public surface, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "offramp.core",
    "offramp.credentials",
    "offramp.plugins",
    "offramp.core.state",
    "offramp.core.cli",
    "offramp.core.commands",
    "offramp.core.testing",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def test_the_commands_facade_exports_what_contributed_commands_use() -> None:
    import offramp.core.commands as commands

    assert {"CommandContribution", "Offramp", "RunSummary", "run_report_lines", "say"} <= set(commands.__all__)
    public = {name for name, value in vars(commands).items() if not name.startswith("_") and callable(value)}
    defined_here = {name for name in public if getattr(vars(commands)[name], "__module__", None) == commands.__name__}
    assert defined_here <= set(commands.__all__), "a public function or class of the module is not exported"


def test_core_surface_is_what_plugin_authors_use() -> None:
    import offramp.core as core

    public = {name for name in dir(core) if not name.startswith("_")} - {"annotations"}
    modules = {name for name in public if type(getattr(core, name)).__name__ == "module"}
    assert public - modules == set(core.__all__) - {"__version__"}
