"""Helpers for the CLI tests: JSON answers, one-line errors, and a store with a few objects."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def cli_json(cli: Any) -> Callable[..., Any]:
    """Run a command with --json, assert success, and return the parsed answer."""

    def run(*args: str, env: dict[str, str] | None = None) -> Any:
        result = cli.ok(*args, "--json", env=env)
        return json.loads(result.stdout)

    return run


@pytest.fixture
def cli_error(cli: Any) -> Callable[..., str]:
    """Run a command that must fail the way a user's mistake fails: exit 1, one line on stderr, no traceback.

    Returns that line.
    """

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
        return str(cli(*args, input=input, env=env).one_line_error())

    return run


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """An environment variable holding a static token; returns the variable's name."""
    monkeypatch.setenv("SHOP_TOKEN", "tok-value-7f3a")
    return "SHOP_TOKEN"


@pytest.fixture
def with_token(cli: Any, initialized: Path, token_env: str) -> str:
    """An initialized store with a static-token credential `shop-token`; returns the credential name."""
    cli.ok("credentials", "add", "shop-token", "--type", "static-token", "--set", f"token=env:{token_env}")
    return "shop-token"
