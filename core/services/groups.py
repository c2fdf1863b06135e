"""Orchestration groups: orchestrations that run in order, as one unit, on a schedule of their own.

A group stores its members in order (``orchestration_group_members``), its cron expression and IANA timezone in the
columns ``schedule`` and ``timezone`` (None: UTC), and the options it shares with orchestrations for its schedule and
alerts (:class:`~offramp.core.orchestration_options.GroupOptions`: ``schedule_enabled``, ``catch_up``,
``max_lateness_minutes``, ``when_changed``, ``alerts``) in ``options``: only the values the user set, so that an
export writes back what was applied. Every change goes through this module (the CLI, apply, the alert rules), each
validated the same way and audited as object type ``group``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.errors import ConfigError, ObjectExistsError, ObjectNotFoundError, SettingsValidationError
from offramp.core.hints import offramp_command
from offramp.core.orchestration_options import GROUP_OPTIONS, GroupOptions, check_cron, check_timezone
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.naming import check_object_name
from offramp.core.services.orchestrations import changed_fields, get_orchestration
from offramp.core.services.workspaces import changing_workspace
from offramp.core.state.models import Orchestration, OrchestrationGroup, OrchestrationGroupMember, Workspace

# What `update_group(unset=...)` may remove besides an option: the schedule and the timezone (back to UTC).
UNSETTABLE_COLUMNS = ("schedule", "timezone")


def get_group(session: Session, workspace: Workspace, name: str) -> OrchestrationGroup:
    """The group ``name`` in ``workspace``; the error lists the existing ones."""
    found = session.scalar(
        select(OrchestrationGroup).where(
            OrchestrationGroup.workspace_id == workspace.id, OrchestrationGroup.name == name
        )
    )
    if found is None:
        names = ", ".join(group.name for group in list_groups(session, workspace)) or "none"
        raise ObjectNotFoundError(
            f"no group named {name!r} in workspace {workspace.name!r} (existing: {names})",
            hint=f"see `{offramp_command('groups', 'list', workspace=workspace.name)}`",
        )
    return found


def list_groups(session: Session, workspace: Workspace) -> list[OrchestrationGroup]:
    """The groups of a workspace, by name."""
    query = select(OrchestrationGroup).where(OrchestrationGroup.workspace_id == workspace.id)
    return list(session.scalars(query.order_by(OrchestrationGroup.name)))


def _field_error(group: str, field: str, problem: str, hint: str) -> ConfigError:
    return ConfigError(f"group {group!r}: {field}: {problem}", hint=hint, field=field)


def check_group_schedule(group: str, schedule: str | None, timezone: str | None) -> None:
    """Refuse a bad cron expression or timezone, naming the field (``schedule``, ``timezone``)."""
    try:
        check_cron(schedule)
    except ValueError as exc:
        raise _field_error(group, "schedule", str(exc), "give five fields: minute hour day month weekday") from None
    if timezone is not None:
        try:
            check_timezone(timezone)
        except ValueError as exc:
            raise _field_error(group, "timezone", str(exc), "see the names with: timedatectl list-timezones") from None


def check_group_options(group: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options to store (only those given, validated by GroupOptions); every bad one named at once."""
    unknown = sorted(key for key in options if key not in GROUP_OPTIONS)
    problems = [(key, f"unknown option (valid options: {', '.join(sorted(GROUP_OPTIONS))})") for key in unknown]
    checked: dict[str, Any] = {}
    try:
        model = GroupOptions.model_validate({key: value for key, value in options.items() if key in GROUP_OPTIONS})
        checked = model.model_dump(mode="json", exclude_unset=True)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            field = ".".join(str(part) for part in error["loc"]) or "options"
            problems.append((field, str(error["msg"]).removeprefix("Value error, ")))
    if problems:
        raise SettingsValidationError(
            f"group {group!r}", problems, hint=f"see the options with `{offramp_command('groups', 'add', '--help')}`"
        )
    # In the order given: an export writes them back in that order.
    return {key: checked[key] for key in options if key in checked}


def _members(session: Session, workspace: Workspace, group: str, names: list[str]) -> list[Orchestration]:
    if not names:
        raise _field_error(
            group, "orchestrations", "a group needs at least one orchestration", "give --orchestration once per member"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(
            f"group {group!r} lists orchestration(s) {', '.join(repeated)} more than once",
            hint="list each orchestration once; a group runs its orchestrations in the order listed",
            field="orchestrations",
        )
    return [get_orchestration(session, workspace, name) for name in names]


def _definition(row: OrchestrationGroup) -> dict[str, Any]:
    """What a change of a group compares: the fields its update names (options as ``options.KEY``)."""
    return {
        "orchestrations": [member.orchestration.name for member in row.members],
        "schedule": row.schedule,
        "timezone": row.timezone,
        "options": dict(row.options or {}),
    }


def _write(
    session: Session,
    row: OrchestrationGroup,
    members: list[Orchestration],
    schedule: str | None,
    timezone: str | None,
    options: dict[str, Any],
) -> None:
    row.schedule, row.timezone, row.options = schedule, timezone, dict(options)
    if [member.orchestration_id for member in row.members] != [member.id for member in members]:
        row.members.clear()
        session.flush()  # the old memberships go before the new ones (same primary keys) come
        row.members.extend(
            OrchestrationGroupMember(orchestration=orchestration, position=position)
            for position, orchestration in enumerate(members)
        )
    session.flush()


def add_group(
    session: Session,
    ctx: Context,
    workspace: str,
    name: str,
    orchestrations: list[str],
    schedule: str | None = None,
    timezone: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> OrchestrationGroup:
    """Validate and store a new group (members in the order given)."""
    check_object_name("group", name)
    ws = changing_workspace(session, workspace)
    if session.scalar(
        select(OrchestrationGroup.id).where(OrchestrationGroup.workspace_id == ws.id, OrchestrationGroup.name == name)
    ):
        raise ObjectExistsError(
            f"group {name!r} already exists in workspace {ws.name!r}",
            hint="pick another name, or change it with `"
            + offramp_command("groups", "update", name, workspace=ws.name)
            + "`",
        )
    check_group_schedule(name, schedule, timezone)
    stored = check_group_options(name, options or {})
    members = _members(session, ws, name, list(orchestrations))
    row = OrchestrationGroup(workspace=ws, name=name)
    session.add(row)
    _write(session, row, members, schedule, timezone, stored)
    audit.record(
        session, ctx.actor, "create", "group", name, ws.name,
        {"orchestrations": list(orchestrations), "schedule": schedule, "timezone": timezone, "options": stored},
    )  # fmt: skip
    return row


def replace_group(
    session: Session,
    ctx: Context,
    row: OrchestrationGroup,
    orchestrations: list[str],
    schedule: str | None,
    timezone: str | None,
    options: Mapping[str, Any],
) -> list[str]:
    """Make ``row`` exactly this definition (apply); return the fields that changed (options as ``options.KEY``)."""
    check_group_schedule(row.name, schedule, timezone)
    stored = check_group_options(row.name, options)
    members = _members(session, row.workspace, row.name, list(orchestrations))
    before = _definition(row)
    after = {
        "orchestrations": [member.name for member in members],
        "schedule": schedule,
        "timezone": timezone,
        "options": stored,
    }
    changed = changed_fields(before, after)
    if changed:
        _write(session, row, members, schedule, timezone, stored)
        audit.record(session, ctx.actor, "update", "group", row.name, row.workspace.name, {"fields": changed})
    return changed


def update_group(
    session: Session,
    ctx: Context,
    workspace: str,
    name: str,
    *,
    orchestrations: list[str] | None = None,
    schedule: str | None = None,
    timezone: str | None = None,
    options: Mapping[str, Any] | None = None,
    unset: Collection[str] = (),
) -> list[str]:
    """`groups update` (and the alert rules): change what is given, keep the rest; return the fields that changed.

    ``orchestrations`` given replaces the members (in that order). ``options`` are merged over the stored ones; an
    option given as None is removed (its default applies again), as is each option named in ``unset``, which may also
    name ``schedule`` and ``timezone``. ``update_group(..., options={"alerts": {...}})`` sets a group's alert rules.
    """
    row = get_group(session, changing_workspace(session, workspace), name)
    given = dict(options or {})
    both = sorted(set(given) & set(unset)) + sorted(
        column
        for column, value in (("schedule", schedule), ("timezone", timezone))
        if value is not None and column in unset
    )
    if both:
        raise ConfigError(f"group {name!r}: {', '.join(both)} given and unset at once", hint="give each field once")
    unknown = sorted(key for key in unset if key not in GROUP_OPTIONS and key not in UNSETTABLE_COLUMNS)
    if unknown:
        raise ConfigError(
            f"group {name!r}: cannot unset {', '.join(unknown)}: no such field "
            f"(valid: {', '.join([*UNSETTABLE_COLUMNS, *sorted(GROUP_OPTIONS)])})",
            hint=f"see `{offramp_command('groups', 'update', '--help')}`",
        )
    removed = set(unset) | {key for key, value in given.items() if value is None}
    merged = {key: value for key, value in (row.options or {}).items() if key not in removed}
    merged.update({key: value for key, value in given.items() if value is not None})
    members = [member.orchestration.name for member in row.members] if orchestrations is None else orchestrations
    new_schedule = None if "schedule" in unset else (schedule if schedule is not None else row.schedule)
    new_timezone = None if "timezone" in unset else (timezone if timezone is not None else row.timezone)
    return replace_group(session, ctx, row, members, new_schedule, new_timezone, merged)


def rename_group(session: Session, ctx: Context, workspace: str, old: str, new: str) -> bool:
    """Rename a group: it keeps its id, so its group runs and schedule history follow; False when it already has that
    name."""
    ws = changing_workspace(session, workspace)
    row = get_group(session, ws, old)
    if new == old:
        return False
    check_object_name("group", new)
    if session.scalar(
        select(OrchestrationGroup.id).where(OrchestrationGroup.workspace_id == ws.id, OrchestrationGroup.name == new)
    ):
        raise ObjectExistsError(f"group {new!r} already exists in workspace {ws.name!r}", hint="pick another name")
    row.name = new
    session.flush()
    audit.record(session, ctx.actor, "rename", "group", new, ws.name, {"from": old, "to": new})
    return True


def delete_group(session: Session, ctx: Context, workspace: str, name: str) -> None:
    """Delete a group (its orchestrations stay; its group runs stay as history)."""
    ws = changing_workspace(session, workspace)
    row = get_group(session, ws, name)
    session.delete(row)
    session.flush()
    audit.record(session, ctx.actor, "delete", "group", name, ws.name)


def group_json(session: Session, row: OrchestrationGroup) -> dict[str, Any]:
    """What `groups show --json` prints (and `groups list --json`, one per group): its members in order, schedule,
    timezone (UTC when none was set), its options as stored (``options``) and with every default (``settings``)."""
    stored = dict(row.options or {})
    return {
        "name": row.name,
        "workspace": row.workspace.name,
        "orchestrations": [member.orchestration.name for member in row.members],
        "schedule": row.schedule,
        "timezone": row.timezone or "UTC",
        "options": stored,
        "settings": {**GroupOptions().model_dump(mode="json"), **stored},
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


__all__ = [
    "UNSETTABLE_COLUMNS",
    "add_group",
    "check_group_options",
    "check_group_schedule",
    "delete_group",
    "get_group",
    "group_json",
    "list_groups",
    "rename_group",
    "replace_group",
    "update_group",
]
