"""The state store: tables, migrations, and how to open it."""

from offramp.core.state.models import (
    AuditEvent,
    Base,
    Credential,
    Destination,
    Orchestration,
    OrchestrationGroup,
    OrchestrationGroupMember,
    RowOutcome,
    Run,
    Workspace,
    utcnow,
)
from offramp.core.state.store import StateStore, create_store_engine, head_revision, initialize, open_store

__all__ = [
    "AuditEvent",
    "Base",
    "Credential",
    "Destination",
    "Orchestration",
    "OrchestrationGroup",
    "OrchestrationGroupMember",
    "RowOutcome",
    "Run",
    "StateStore",
    "Workspace",
    "create_store_engine",
    "head_revision",
    "initialize",
    "open_store",
    "utcnow",
]
