"""Sandboxes: copies of production's configuration to change and test safely, pulled and promoted by a three-way
merge (``offramp sandboxes ...``).

A sandbox is made from production at a revision (its base): destinations, orchestrations and groups are copied, with
their options; credentials are shared by reference (a sandbox's destination is bound to production's credential row
itself: TikTok rotates refresh tokens, so a copy that refreshed would invalidate production's); runs and ledgers
never are. The base's configuration is kept with the sandbox (``Workspace.base_snapshot``), so that what the sandbox
changed, what production changed since, and where the two collide can always be told apart
(``offramp.core.services.merge``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from offramp.core.environment import DEFAULT_WORKSPACE
from offramp.core.errors import ConfigError, ObjectExistsError, ObjectNotFoundError
from offramp.core.hints import offramp_command
from offramp.core.services import audit
from offramp.core.services.alert_channels import drop_channels
from offramp.core.services.config_snapshot import KINDS, Snapshot, WorkspaceWriter, take_snapshot
from offramp.core.services.context import Context
from offramp.core.services.merge import Merge, Side, pull_plan, three_way
from offramp.core.services.naming import check_workspace_name
from offramp.core.services.workspaces import get_workspace, lock_for_change
from offramp.core.state.models import Credential, Run, Workspace, utcnow


def lock_production(session: Session, *, exclusive: bool) -> Workspace:
    """Production's workspace row, locked for the rest of the transaction (PostgreSQL).

    ``exclusive`` (a promotion): no other promotion, and no other change of production's configuration (each takes
    this row's lock as it advances the revision), commits until this transaction ends. Shared (a sandbox being made
    or pulled): production's configuration is read as of one revision, never half-way through a promotion. On
    SQLite every write transaction holds the database's write lock from its start, which serializes them already.
    """
    production = get_workspace(session, DEFAULT_WORKSPACE)
    lock_for_change(session, production, shared=not exclusive)
    session.refresh(production)  # the revision as of the lock
    return production


def get_sandbox(session: Session, name: str) -> Workspace:
    """The sandbox ``name`` that was made from production (refuses production and workspaces made empty)."""
    if name == DEFAULT_WORKSPACE:
        raise ConfigError(
            "production is not a sandbox",
            hint="make one from it: see " + offramp_command("sandboxes", "create", "--help"),
        )
    workspace = session.scalar(select(Workspace).where(Workspace.name == name, Workspace.deleted_at.is_(None)))
    if workspace is None:
        names = ", ".join(row.name for row in _sandboxes(session)) or "none"
        raise ObjectNotFoundError(
            f"no sandbox named {name!r} (existing: {names})",
            hint="make one with " + offramp_command("sandboxes", "create", name),
        )
    if workspace.base_snapshot is None or workspace.base_revision is None:
        raise ConfigError(
            f"workspace {name!r} was not made from production (it was added empty), so it has no base to compare "
            "with production and cannot be pulled or promoted",
            hint="make a sandbox from production: see " + offramp_command("sandboxes", "create", "--help"),
        )
    return workspace


def _sandboxes(session: Session) -> list[Workspace]:
    query = select(Workspace).where(Workspace.name != DEFAULT_WORKSPACE, Workspace.deleted_at.is_(None))
    return list(session.scalars(query.order_by(Workspace.name)))


def create_sandbox(
    session: Session,
    ctx: Context,
    name: str,
    *,
    description: str | None = None,
    test_event_code: str | None = None,
) -> Workspace:
    """Make a sandbox from production's configuration now (its base); see the module's docstring for what is copied."""
    check_workspace_name(name)
    if name == DEFAULT_WORKSPACE or session.scalar(
        select(Workspace.id).where(Workspace.name == name, Workspace.deleted_at.is_(None))
    ):
        raise ObjectExistsError(
            f"workspace {name!r} already exists",
            hint="pick another name, or see " + offramp_command("sandboxes", "list"),
        )
    production = lock_production(session, exclusive=False)
    base = take_snapshot(session, production)
    sandbox = Workspace(
        name=name,
        description=description,
        created_by=ctx.actor,
        base_revision=production.revision,
        base_snapshot=base,
        test_event_code=_checked_code(test_event_code),
    )
    session.add(sandbox)
    session.flush()
    audit.record(
        session, ctx.actor, "create", "sandbox", name, name,
        {"base_revision": production.revision, "description": description},
    )  # fmt: skip
    source = WorkspaceWriter(session, ctx, production)
    copy = WorkspaceWriter(session, ctx, sandbox, details={"copied_from": DEFAULT_WORKSPACE})
    for kind in KINDS:
        for key, entry in base[kind].items():
            copy.put(kind, key, entry, source.secrets_of(kind, key))
    return sandbox


def _checked_code(code: str | None) -> str | None:
    if code is None:
        return None
    code = code.strip()
    if not code:
        raise ConfigError(
            "--test-event-code is empty",
            hint="give the code TikTok's Events Manager shows under Test Events (e.g. TEST12345)",
        )
    return code


def update_sandbox(
    session: Session,
    ctx: Context,
    name: str,
    *,
    description: str | None = None,
    test_event_code: str | None = None,
    unset_test_event_code: bool = False,
    schedules_enabled: bool | None = None,
) -> list[str]:
    """Change a sandbox's description, test event code or whether its schedules fire (``schedules_enabled``: they
    then fire as test traffic, like every run of a sandbox); return the fields that changed."""
    workspace = _any_sandbox(session, name)
    changed = []
    if description is not None and description != workspace.description:
        workspace.description = description
        changed.append("description")
    code = None if unset_test_event_code else _checked_code(test_event_code)
    if (test_event_code is not None or unset_test_event_code) and code != workspace.test_event_code:
        workspace.test_event_code = code
        changed.append("test_event_code")
    if schedules_enabled is not None and schedules_enabled != bool(workspace.schedules_enabled):
        workspace.schedules_enabled = schedules_enabled
        changed.append("schedules_enabled")
    if changed:
        audit.record(session, ctx.actor, "update", "sandbox", name, name, {"fields": changed})
    return changed


def _any_sandbox(session: Session, name: str) -> Workspace:
    """A sandbox with or without a base (a workspace other than production)."""
    if name == DEFAULT_WORKSPACE:
        raise ConfigError("production is not a sandbox", hint="see " + offramp_command("sandboxes", "list"))
    workspace = session.scalar(select(Workspace).where(Workspace.name == name, Workspace.deleted_at.is_(None)))
    if workspace is None:
        get_sandbox(session, name)  # raises, listing the sandboxes
        raise AssertionError("unreachable")
    return workspace


@dataclass(frozen=True)
class SandboxMerge:
    """A sandbox's three-way merge and the snapshots it was computed from."""

    sandbox: Workspace
    production: Workspace
    merge: Merge
    base: Snapshot
    current: Snapshot  # the sandbox's configuration now
    production_snapshot: Snapshot


def sandbox_merge(session: Session, sandbox: Workspace, production: Workspace | None = None) -> SandboxMerge:
    """The merge of ``sandbox`` (made from production) with production now."""
    assert sandbox.base_snapshot is not None
    production = production or get_workspace(session, DEFAULT_WORKSPACE)
    base, current = sandbox.base_snapshot, take_snapshot(session, sandbox)
    theirs = take_snapshot(session, production)
    return SandboxMerge(sandbox, production, three_way(base, current, theirs), base, current, theirs)


def list_sandboxes(session: Session) -> list[dict[str, Any]]:
    """Every sandbox with its base, changes ready to promote, production updates to pull and last run."""
    production = get_workspace(session, DEFAULT_WORKSPACE)
    out = []
    for sandbox in _sandboxes(session):
        last = session.scalar(select(Run).where(Run.workspace_id == sandbox.id).order_by(Run.started_at.desc()))
        info: dict[str, Any] = {
            "name": sandbox.name,
            "description": sandbox.description,
            "created_at": sandbox.created_at,
            "created_by": sandbox.created_by,
            "base_revision": sandbox.base_revision,
            "production_revision": production.revision,
            "test_event_code": sandbox.test_event_code,
            "schedules_enabled": bool(sandbox.schedules_enabled),
            "changes": None,
            "updates": None,
            "conflicts": None,
            "last_run": None
            if last is None
            else {
                "id": last.id,
                "orchestration": last.orchestration_name,
                "status": last.status,
                "started_at": last.started_at,
                "dry_run": last.dry_run,
            },  # fmt: skip
        }
        if sandbox.base_snapshot is not None:
            merged = sandbox_merge(session, sandbox, production).merge
            info.update(changes=len(merged.changes), updates=len(merged.updates), conflicts=len(merged.conflicts))
        out.append(info)
    return out


def delete_sandbox(session: Session, ctx: Context, name: str) -> int:
    """Delete a sandbox's objects and retire it; return how many of its runs stay as history.

    Its own credentials go with it (production's, which it only shared, stay). The workspace's row stays, renamed
    ``NAME~deleted-ID``, because its runs refer to it; the name is free for a new sandbox.
    """
    sandbox = _any_sandbox(session, name)
    writer = WorkspaceWriter(session, ctx, sandbox)
    for kind in reversed(KINDS):
        for key in writer.keys(kind):
            writer.remove(kind, key)
    drop_channels(session, ctx, sandbox, name)  # before its credentials: a channel may name one
    for credential in session.scalars(select(Credential).where(Credential.workspace_id == sandbox.id)):
        session.delete(credential)
        session.flush()
        audit.record(session, ctx.actor, "delete", "credential", credential.name, name, {"type": credential.type})
    runs = session.scalar(select(func.count()).select_from(Run).where(Run.workspace_id == sandbox.id)) or 0
    sandbox.name = f"{name}~deleted-{sandbox.id}"
    sandbox.deleted_at = utcnow()
    audit.record(session, ctx.actor, "delete", "sandbox", name, name, {"runs_kept": runs, "renamed": sandbox.name})
    session.flush()
    return int(runs)


@dataclass
class PullResult:
    """What a pull brought into the sandbox."""

    sandbox: str
    base_before: int
    base_after: int
    written: list[str] = field(default_factory=list)  # "~ orchestration store-orders" ...


def pull_sandbox(
    session: Session, ctx: Context, name: str, take: Mapping[tuple[str, str], Side] | None = None
) -> PullResult:
    """Bring production's changes since the base into the sandbox; its base becomes production's revision.

    All or nothing: while a conflict is unresolved (no ``take`` for it), nothing is changed and the ConfigError lists
    every conflict field by field with the commands that resolve it.
    """
    sandbox = get_sandbox(session, name)
    production = lock_production(session, exclusive=False)
    lock_for_change(session, sandbox)  # after production's: every transaction takes the two in this order
    merged = sandbox_merge(session, sandbox, production)
    plan = pull_plan(merged.base, merged.current, merged.production_snapshot, take or {})
    if plan.unresolved:
        from offramp.core.services.diff_render import conflict_lines, diff_document

        unresolved = dataclasses.replace(merged.merge, conflicts=plan.unresolved)
        document = diff_document(
            unresolved, merged.base, merged.current, merged.production_snapshot, sandbox_name=name,
            base_revision=int(sandbox.base_revision or 0), production_revision=production.revision,
        )  # fmt: skip
        lines = conflict_lines(document)
        raise ConfigError(
            f"sandbox {name!r} and production both changed {len(plan.unresolved)} object(s) differently; nothing was "
            "pulled",
            hint="choose a side for each with the commands listed above (repeat --take to resolve several at once), "
            "or edit the sandbox to match production and pull again",
            conflicts=plan.unresolved,
            conflict_lines=lines,
        )
    result = PullResult(name, int(sandbox.base_revision or 0), production.revision)
    source = WorkspaceWriter(session, ctx, production)
    writer = WorkspaceWriter(session, ctx, sandbox, details={"pulled_from": DEFAULT_WORKSPACE})
    for kind, sandbox_key, production_key in plan.adopt:
        row = writer.row(kind, sandbox_key)
        if row is not None:
            row.origin_id = int(production_key)
    if plan.adopt:
        session.flush()
        writer = WorkspaceWriter(session, ctx, sandbox, details={"pulled_from": DEFAULT_WORKSPACE})
    for kind, key, entry in plan.writes:
        if entry is None:
            removed = writer.remove(kind, key)
            if removed is not None:
                result.written.append(f"- {kind} {removed}")
        else:
            existed = writer.row(kind, key) is not None
            _, changed = writer.put(kind, key, entry, source.secrets_of(kind, key))
            if changed:
                sign = "~" if existed else "+"
                result.written.append(
                    f"{sign} {kind} {entry['name']}" + (f" ({', '.join(changed)})" if existed else "")
                )
    writer.done()
    sandbox.base_snapshot = merged.production_snapshot
    sandbox.base_revision = production.revision
    audit.record(
        session, ctx.actor, "pull", "sandbox", name, name,
        {"base_before": result.base_before, "base_after": result.base_after, "changes": result.written,
         "resolved": {f"{kind}:{key}": side for (kind, key), side in (take or {}).items()}},
    )  # fmt: skip
    return result


__all__ = [
    "PullResult",
    "SandboxMerge",
    "create_sandbox",
    "delete_sandbox",
    "get_sandbox",
    "list_sandboxes",
    "lock_production",
    "pull_sandbox",
    "sandbox_merge",
    "update_sandbox",
]
