"""Alert rules of an orchestration or a group: the option ``alerts`` (:class:`AlertOptions`), written through the
orchestration's update or the group's (so they are validated, audited, exported and promoted like any option).

A rule names channels by name; a name that no channel of the workspace (or, in a sandbox, of production) has is
refused, naming those that exist.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from offramp.core.errors import ConfigError, SettingsValidationError
from offramp.core.hints import offramp_command
from offramp.core.orchestration_options import AlertOptions
from offramp.core.services.alert_channels import check_channels
from offramp.core.services.context import Context
from offramp.core.services.workspaces import changing_workspace, get_workspace
from offramp.core.state.models import AlertStateRow, Orchestration, OrchestrationGroup, Workspace

OPTION = "alerts"


def _target(session: Session, workspace: Workspace, name: str, group: bool) -> Orchestration | OrchestrationGroup:
    if group:
        from offramp.core.services.groups import get_group

        return get_group(session, workspace, name)
    from offramp.core.services.orchestrations import get_orchestration

    return get_orchestration(session, workspace, name)


def _checked(subject: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as stored (only what was set), validated by :class:`AlertOptions`; every problem named."""
    try:
        model = AlertOptions.model_validate(values)
    except ValidationError as exc:
        problems = [
            (".".join(str(part) for part in error["loc"]) or OPTION, str(error["msg"]).removeprefix("Value error, "))
            for error in exc.errors(include_url=False)
        ]
        raise SettingsValidationError(
            f"alert rules of {subject}", problems,
            hint="see the rules with `" + offramp_command("alerts", "rules", "set", "--help") + "`",
        ) from None  # fmt: skip
    return model.model_dump(mode="json", exclude_unset=True)


def set_rules(
    session: Session,
    ctx: Context,
    workspace_name: str,
    name: str,
    changes: dict[str, Any],
    unset: Collection[str] = (),
    *,
    group: bool = False,
) -> list[str]:
    """Change the given rules of an orchestration (``group``: a group), keep the others; ``unset`` switches
    threshold rules off. Returns the rules that changed."""
    workspace = changing_workspace(session, workspace_name)
    row = _target(session, workspace, name, group)
    kind = "group" if group else "orchestration"
    subject = f"{kind} {name!r}"
    current = dict((row.options or {}).get(OPTION) or {})
    merged = {**{key: value for key, value in current.items() if key not in unset}, **changes}
    if "channels" not in merged:
        raise ConfigError(
            f"alert rules of {subject}: no channel to notify",
            hint="name one with --channel (see `"
            + offramp_command("alerts", "channels", "list", workspace=workspace.name)
            + "`)",
        )
    stored = _checked(subject, merged)
    check_channels(session, workspace, stored["channels"])
    changed = sorted(key for key in {*current, *stored} if current.get(key) != stored.get(key))
    if changed:
        if not current:
            _forget_state(session, kind, row.id)  # new rules start from a clean state, not one left from before
        _write(session, ctx, workspace, row, name, group, stored)
    return changed


def clear_rules(session: Session, ctx: Context, workspace_name: str, name: str, *, group: bool = False) -> bool:
    """Remove the alert rules of an orchestration (or a group); False when it had none."""
    workspace = changing_workspace(session, workspace_name)
    row = _target(session, workspace, name, group)
    if OPTION not in (row.options or {}):
        return False
    _write(session, ctx, workspace, row, name, group, None)
    # Runs without rules decide nothing: a state kept from before would make rules set later send no failure
    # notice (health already failed) or a recovery for a failure nobody was told about.
    _forget_state(session, "group" if group else "orchestration", row.id)
    return True


def _forget_state(session: Session, kind: str, target_id: int) -> None:
    where = (AlertStateRow.target_kind == kind, AlertStateRow.target_id == target_id)
    session.execute(delete(AlertStateRow).where(*where))


def _write(session: Session, ctx: Context, workspace: Workspace, row: Orchestration | OrchestrationGroup,
           name: str, group: bool, stored: dict[str, Any] | None) -> None:  # fmt: skip
    if group:
        from offramp.core.services.groups import update_group

        update_group(session, ctx, workspace.name, name, options={OPTION: stored})  # None removes the option
        return
    from offramp.core.services.orchestrations import edit_orchestration

    if stored is None:
        edit_orchestration(session, ctx, workspace.name, name, unset=[OPTION])
    else:
        edit_orchestration(session, ctx, workspace.name, name, options={OPTION: stored})


def describe_rules(session: Session, workspace_name: str, name: str, *, group: bool = False) -> dict[str, Any]:
    """What `alerts rules show` prints: the rules with every default (None: none set), and where their state
    stands after the last counted run (health, threshold rules firing)."""
    workspace = get_workspace(session, workspace_name)
    row = _target(session, workspace, name, group)
    kind = "group" if group else "orchestration"
    raw = (row.options or {}).get(OPTION)
    rules = AlertOptions.model_validate(raw).model_dump(mode="json") if raw is not None else None
    state_row = session.scalar(
        select(AlertStateRow).where(AlertStateRow.target_kind == kind, AlertStateRow.target_id == row.id)
    )
    return {
        "target": name,
        "target_kind": kind,
        "workspace": workspace.name,
        "rules": rules,
        "state": dict(state_row.state) if state_row is not None and state_row.state else None,
    }


__all__ = ["OPTION", "clear_rules", "describe_rules", "set_rules"]
