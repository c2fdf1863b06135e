"""The service layer: what the CLI (and later the REST API) calls. Each module holds one kind of object."""

from offramp.core.services.context import Context, current_actor

__all__ = ["Context", "current_actor"]
