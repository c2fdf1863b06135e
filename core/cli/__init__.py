"""The `offramp` command line."""

from offramp.core.cli.app import app, main

__all__ = ["app", "main"]
