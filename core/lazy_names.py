"""Names a package exports but imports only when first used (PEP 562), so that ``offramp --version`` and
``--help`` load none of the libraries behind them (tests/cli/test_cli_startup.py)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(namespace: dict[str, Any], module_of: Mapping[str, str]) -> Callable[[str], Any]:
    """A module's ``__getattr__`` for the names in ``module_of`` (name -> the module defining it).

    Use it as ``__getattr__ = lazy_names(globals(), {...})``; a name is imported on first use and kept in
    ``namespace``, so later look-ups do not come back here.
    """
    owner = namespace["__name__"]

    def getattr_(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {owner!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return getattr_


__all__ = ["lazy_names"]
