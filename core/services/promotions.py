"""Promotion: a sandbox's changes applied to production in one transaction, recorded, and revertible.

A promotion is refused while production has updates the sandbox has not pulled (so it can never overwrite a change
made in production since the sandbox's base) or while validation has errors. It then locks production, checks again
that production is still as the sandbox's base had it (two promotions at once: the second finds the first's changes
and is told to pull), writes every change, records the promotion with its message and diff, and commits once: a
process killed at any moment leaves production entirely before or entirely after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.environment import DEFAULT_WORKSPACE
from offramp.core.errors import ConfigError, ObjectNotFoundError, StateError
from offramp.core.hints import offramp_command
from offramp.core.services import audit
from offramp.core.services.config_snapshot import (
    KINDS,
    SECRETS_PREFIX,
    Entry,
    WorkspaceWriter,
    changed_fields,
    referred_keys,
    take_snapshot,
)
from offramp.core.services.context import Context
from offramp.core.services.diff_render import diff_document
from offramp.core.services.merge import ObjectChange
from offramp.core.services.sandboxes import (
    create_sandbox,
    delete_sandbox,
    get_sandbox,
    lock_production,
    sandbox_merge,
)
from offramp.core.services.workspaces import lock_for_change
from offramp.core.state.models import Promotion, Workspace


def _document(merged: Any) -> dict[str, Any]:
    sandbox = merged.sandbox
    return diff_document(
        merged.merge, merged.base, merged.current, merged.production_snapshot, sandbox_name=sandbox.name,
        base_revision=int(sandbox.base_revision or 0), production_revision=merged.production.revision,
    )  # fmt: skip


def _refuse_updates(name: str, merged: Any) -> None:
    updates = merged.merge.updates
    if updates:
        sandbox = merged.sandbox
        raise StateError(
            f"production changed since sandbox {name!r} was made or last pulled (revision {sandbox.base_revision} -> "
            f"{merged.production.revision}): {len(updates)} update(s) to pull first; nothing was promoted",
            hint="bring them in with " + offramp_command("sandboxes", "pull", name) + ", then promote again",
        )


def promote_sandbox(
    ctx: Context, name: str, message: str, *, delete: bool = False, connection_tests: bool = True
) -> Promotion:
    """Apply the sandbox's changes to production (see the module's docstring); return the recorded promotion."""
    message = message.strip()
    if not message:
        raise ConfigError(
            "a promotion needs a message: what changes and why",
            hint=offramp_command("sandboxes", "promote", name, "--message", "what changes and why"),
        )
    with ctx.store.read_session() as session:
        merged = sandbox_merge(session, get_sandbox(session, name))
        _refuse_updates(name, merged)
        if not merged.merge.changes:
            raise StateError(
                f"sandbox {name!r} has no changes to promote: it matches production",
                hint="change it first (e.g. " + offramp_command("orchestrations", "list", workspace=name) + ")",
            )
        reviewed = _document(merged)
    from offramp.core.services.sandbox_checks import validate_sandbox  # connection tests, sources: only when promoting

    validation = validate_sandbox(ctx, name, connection_tests=connection_tests)
    if validation.errors:
        first = validation.errors[0]
        more = f" (and {len(validation.errors) - 1} more)" if len(validation.errors) > 1 else ""
        raise ConfigError(
            f"sandbox {name!r} does not validate: {first.subject}: {first.message}{more}; nothing was promoted",
            hint="see every error with " + offramp_command("sandboxes", "validate", name),
        )
    with ctx.store.session() as session:
        production = lock_production(session, exclusive=True)
        sandbox = get_sandbox(session, name)
        lock_for_change(session, sandbox)  # after production's: every transaction takes the two in this order
        merged = sandbox_merge(session, sandbox, production)
        _refuse_updates(name, merged)
        if not merged.merge.changes:
            raise StateError(
                f"sandbox {name!r} has no changes left to promote: production has them already (promoted "
                "meanwhile); nothing was promoted",
                hint="see " + offramp_command("promotions", "list"),
            )
        document = _document(merged)
        if document["changes"] != reviewed["changes"]:
            raise StateError(
                f"sandbox {name!r} changed while it was being validated; nothing was promoted",
                hint="review it again with " + offramp_command("sandboxes", "diff", name) + "; then promote it again",
            )
        promotion = Promotion(
            actor=ctx.actor, sandbox=name, message=message, revision_before=production.revision,
            revision_after=production.revision, diff=document, reverts=sandbox.reverts_promotion,
        )  # fmt: skip
        session.add(promotion)
        session.flush()
        details = {"promotion": promotion.id, "sandbox": name, "message": message}
        target = WorkspaceWriter(session, ctx, production, details=details)
        source = WorkspaceWriter(session, ctx, sandbox)
        changes = merged.merge.changes
        for kind in KINDS:
            for change in changes:
                if change.kind == kind and change.after is not None:
                    target.put(kind, change.key, change.after, source.secrets_of(kind, change.key))
        for kind in reversed(KINDS):
            for change in changes:
                if change.kind == kind and change.after is None:
                    target.remove(kind, change.key)
        target.done()
        # The sandbox's new objects are now production's: record where they went, so that the sandbox (kept) is in
        # step with production, and the promotion's record names production's objects.
        promoted_keys: dict[tuple[str, str], str] = {}
        for (kind, key), row in target.added.items():
            promoted_keys[(kind, key)] = str(row.id)
            copy = source.row(kind, key)
            if copy is not None:
                copy.origin_id = row.id
        session.flush()
        session.refresh(production)
        after = take_snapshot(session, production)
        promotion.revision_after = production.revision
        promotion.before, promotion.after = _record(changes, merged.base, after, promoted_keys)
        audit.record(
            session, ctx.actor, "promote", "promotion", str(promotion.id), DEFAULT_WORKSPACE,
            {**details, "revision_before": promotion.revision_before, "revision_after": promotion.revision_after,
             "changes": [_line(change) for change in changes]},
        )  # fmt: skip
        if delete:
            delete_sandbox(session, ctx, name)
        else:
            sandbox.base_snapshot, sandbox.base_revision = after, production.revision
        session.flush()
        session.expunge(promotion)
        return promotion


def _line(change: ObjectChange) -> str:
    sign = {"add": "+", "change": "~", "remove": "-"}[change.action]
    renamed = f" (renamed from {change.old_name})" if change.old_name else ""
    return f"{sign} {change.kind} {change.name}{renamed}"


def _record(
    changes: list[ObjectChange], base: dict[str, Any], after: dict[str, Any], promoted: dict[tuple[str, str], str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per changed object, in production's keys: its entry before and after the promotion (None: absent)."""
    before_out: dict[str, Any] = {kind: {} for kind in KINDS}
    after_out: dict[str, Any] = {kind: {} for kind in KINDS}
    for change in changes:
        key = promoted.get((change.kind, change.key), change.key)
        before_out[change.kind][key] = base[change.kind].get(change.key)
        after_out[change.kind][key] = after[change.kind].get(key)
    return before_out, after_out


def list_promotions(session: Session, limit: int = 50) -> list[Promotion]:
    """Promotions, newest first."""
    return list(session.scalars(select(Promotion).order_by(Promotion.id.desc()).limit(limit)))


def get_promotion(session: Session, promotion_id: int) -> Promotion:
    """The promotion ``promotion_id``; the error says where to find the ids."""
    found = session.get(Promotion, promotion_id)
    if found is None:
        raise ObjectNotFoundError(
            f"no promotion {promotion_id}", hint="see the promotions with " + offramp_command("promotions", "list")
        )
    return found


@dataclass
class Revert:
    """The sandbox a revert made, and what it could not restore."""

    sandbox: str
    promotion: int
    notes: list[str] = field(default_factory=list)


def revert_promotion(ctx: Context, promotion_id: int, sandbox_name: str | None = None) -> Revert:
    """Make a sandbox holding the reverse of a promotion, to review and promote like any other.

    Only what the promotion changed is reversed, field by field, on top of production as it is now: a later change
    to another field of the same object stays. An object it added is removed; one it removed is added again (a new
    object: its past runs stay with the old one). A secret cannot be restored from history (none is kept): where
    the promotion changed one, the sandbox keeps the current value and the revert says which to set by hand.
    """
    name = sandbox_name or f"revert-{promotion_id}"
    with ctx.store.session() as session:
        promotion = get_promotion(session, promotion_id)
        result = Revert(name, promotion.id)
        sandbox = create_sandbox(
            session, ctx, name,
            description=f"Revert of promotion {promotion.id} ({promotion.sandbox}): {promotion.message}"[:500],
        )  # fmt: skip
        sandbox.reverts_promotion = promotion.id
        production = session.scalar(select(Workspace).where(Workspace.name == DEFAULT_WORKSPACE))
        assert production is not None
        source = WorkspaceWriter(session, ctx, production)
        writer = WorkspaceWriter(session, ctx, sandbox, details={"reverts_promotion": promotion.id})
        current = take_snapshot(session, production)
        writes: list[tuple[str, str, Entry | None]] = []
        for kind in KINDS:
            for key in sorted({*promotion.before.get(kind, {}), *promotion.after.get(kind, {})}):
                old = promotion.before.get(kind, {}).get(key)
                new = promotion.after.get(kind, {}).get(key)
                now = current[kind].get(key)
                if old is None:
                    writes.append((kind, key, None))  # the promotion added it
                elif now is None:
                    writes.append((kind, key, dict(old)))  # removed (by the promotion, or since)
                else:
                    entry = dict(now)
                    for field_name in changed_fields(old, new or {}):
                        if field_name in old:
                            entry[field_name] = old[field_name]
                        else:
                            entry.pop(field_name, None)
                    writes.append((kind, key, entry))
        refused = f"cannot revert promotion {promotion.id}"
        try:
            for kind, key, wanted in writes:
                if wanted is not None:
                    restorable = _restorable(kind, wanted, current[kind].get(key), result.notes, name)
                    writer.put(kind, key, restorable, source.secrets_of(kind, key))
        except ConfigError as exc:  # it refers to an object deleted since the promotion
            raise ConfigError(
                f"{refused}: {exc.message}, deleted since the promotion; nothing was created",
                hint="make a sandbox with " + offramp_command("sandboxes", "create", name) + "; there, undo it by hand",
            ) from None
        _refuse_removing_what_is_used(session, sandbox, writes, refused, name)
        for kind in reversed(KINDS):
            for k, key, wanted in writes:
                if k == kind and wanted is None:
                    writer.remove(kind, key)
        writer.done()
        audit.record(session, ctx.actor, "revert", "promotion", str(promotion.id), DEFAULT_WORKSPACE, {"sandbox": name})
    return result


def _refuse_removing_what_is_used(
    session: Session, sandbox: Workspace, writes: list[tuple[str, str, Entry | None]], refused: str, name: str
) -> None:
    """Refuse a revert that would remove an object the promotion added but something added or changed since uses."""
    removing = {(kind, key) for kind, key, wanted in writes if wanted is None}
    snapshot = take_snapshot(session, sandbox)
    for kind in KINDS:
        for key, entry in snapshot[kind].items():
            if (kind, key) in removing:
                continue
            for target, referred in referred_keys(kind, entry):
                if (target, referred) in removing:
                    used = snapshot[target].get(referred, {}).get("name", referred)
                    raise ConfigError(
                        f"{refused}: {target} {used!r}, which it added, is now used by {kind} {entry['name']!r} "
                        "(added or changed since); nothing was created",
                        hint="make a sandbox with "
                        + offramp_command("sandboxes", "create", name)
                        + f"; there, move {entry['name']} off {used} and remove {used} by hand",
                    )


def _restorable(kind: str, entry: Entry, now: Entry | None, notes: list[str], sandbox: str) -> Entry:
    """``entry`` with each secret it cannot restore (no stored value has its fingerprint) left as it is now."""
    if kind != "destination":
        return entry
    out = dict(entry)
    for field_name in [f for f in entry if f.startswith(SECRETS_PREFIX)]:
        current = (now or {}).get(field_name)
        if current == entry[field_name]:
            continue
        secret = field_name.removeprefix(SECRETS_PREFIX)
        if current is None:
            del out[field_name]
        else:
            out[field_name] = current
        notes.append(
            f"destination {entry['name']}: its secret {secret} cannot be restored from history; set it with "
            + offramp_command(
                "destinations", "update", str(entry["name"]), "--set", f"{secret}=env:VAR", workspace=sandbox
            )
        )
    return out


__all__ = ["Revert", "get_promotion", "list_promotions", "promote_sandbox", "revert_promotion"]
