"""Orchestrations: one SQL query, one destination, the run options.

An orchestration's options are stored flat, as users write them: the options every destination shares
(:class:`~offramp.core.orchestration_options.OrchestrationOptions`) and those its destination type reads (its
``run_options`` model), only the values the user set. They are validated against both models, every error at once,
when an orchestration is added or updated (``orchestrations add``, ``apply``). Options stored before a destination
type owned its run options may hold one the type does not read: it is left out when they are read, kept as stored
(an export writes it back, and applying that export changes nothing).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.errors import ConfigError, ObjectInUseError, SettingsValidationError
from offramp.core.hints import offramp_command
from offramp.core.orchestration_options import (
    SHARED_OPTIONS,
    OrchestrationOptions,
    check_source,
    split_options,
    stored_options,
)
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.destinations import get_destination
from offramp.core.services.lookup import ensure_absent, get_named, list_named, rename_named
from offramp.core.services.naming import check_object_name
from offramp.core.services.workspaces import changing_workspace
from offramp.core.sources import check_read_only_query
from offramp.core.state.models import (
    Destination,
    Orchestration,
    OrchestrationGroup,
    OrchestrationGroupMember,
    Workspace,
)


def get_orchestration(session: Session, workspace: Workspace, name: str) -> Orchestration:
    """The orchestration ``name`` in ``workspace``; the error lists the existing ones."""
    return get_named(session, Orchestration, workspace, name)


def list_orchestrations(session: Session, workspace: Workspace) -> list[Orchestration]:
    """Orchestrations of a workspace, by name."""
    return list_named(session, Orchestration, workspace)


_ABSENT = object()


def _subject(name: str, destination: Destination) -> str:
    return f"orchestration {name!r} (destination {destination.name!r}, {destination.type})"


#: The form of each schedule option's flag, the hint of an error about it (``plugins show`` lists only the
#: destination type's options).
SCHEDULE_OPTION_FORMS = {
    "schedule": "--schedule with a cron expression such as '0 6 * * *'",
    "schedule_timezone": "--schedule-timezone with an IANA timezone such as Europe/Berlin",
    "max_lateness_minutes": "--max-lateness with whole minutes, 1 or more, such as 90",
    "catch_up": "--catch-up latest or --catch-up skip",
    "schedule_enabled": "--schedule-enabled or --schedule-disabled",
    "when_changed": "--when-changed with one read query, such as 'SELECT max(updated_at) FROM orders'",
}


def validate_options(ctx: Context, destination: Destination, raw: dict[str, Any], subject: str) -> dict[str, Any]:
    """Validate flat run options against the shared options and the destination type's ``run_options``, every
    error at once; return what is stored: the values the user set (defaults stay implicit).

    Raises:
        SettingsValidationError: naming every bad or unknown option (and the valid names).
    """
    run_options = ctx.registry.destination_type(destination.type).run_options
    try:
        return _in_order_of(raw, stored_options(*split_options(dict(raw), run_options, subject)))
    except SettingsValidationError as exc:
        problems = exc.fields["errors"]
        fields = [field.split(".", 1)[0] for field, _problem in problems]
        if all(field in SCHEDULE_OPTION_FORMS for field in fields):
            # Schedule options are core's, not the destination type's: their flag's form is what helps.
            forms = dict.fromkeys(SCHEDULE_OPTION_FORMS[field] for field in fields)
            raise SettingsValidationError(subject, problems, hint="give " + "; ".join(forms)) from None
        # The same problems, with the command that lists this destination type's options.
        listing = offramp_command("plugins", "show", destination.type)
        raise SettingsValidationError(subject, problems, hint=f"see `{listing}` for its run options") from None


def _in_order_of(written: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` in the order the options were written (the YAML a user applies, the order stored): an export
    writes them back in that order, so exporting what was applied gives the file back."""
    return {key: values[key] for key in [*written, *values] if key in values}


def read_options(ctx: Context, row: Orchestration) -> dict[str, Any]:
    """The stored options the orchestration's destination type and core read (an option no one reads is left out)."""
    run_options = ctx.registry.destination_type(row.destination.type).run_options
    subject = _subject(row.name, row.destination)
    return _in_order_of(
        row.options, stored_options(*split_options(dict(row.options), run_options, subject, strict=False))
    )


def shown_options(ctx: Context, row: Orchestration) -> dict[str, Any]:
    """The options `export` writes and `orchestrations show` prints: :func:`read_options`, or the stored ones as they
    are when they no longer validate (the run reports why; showing them must not fail)."""
    try:
        return read_options(ctx, row)
    except SettingsValidationError:
        return dict(row.options)


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The default of every field of ``model`` that has one, as JSON values."""
    found = {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if not info.is_required()
    }
    return dict(to_jsonable_python(found))


def check_sql(sql: str, subject: str) -> str:
    """A query must be one read query (:func:`~offramp.core.sources.check_read_only_query`), checked when it is
    stored so that ``DELETE FROM orders`` is refused by ``add``, not at its first run (which checks again)."""
    if not sql.strip():
        raise ConfigError(f"{subject}: the SQL is empty", hint="pass --sql TEXT or --sql-file FILE")
    try:
        check_read_only_query(sql)
    except ConfigError as exc:
        raise ConfigError(f"{subject}: {exc.message}", hint=exc.hint) from None
    return sql


def _validated(
    ctx: Context, destination: Destination, subject: str, sql: str, source: str, options: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    """The source, SQL and stored options of an orchestration, every problem of the three reported at once.

    One problem is raised as it is; several as one error naming each (options by name).
    """
    problems: list[tuple[str, ConfigError]] = []  # (label, error)
    checked: list[Any] = []
    for label, check in (
        ("", lambda: check_source(source)),  # its messages start with "source"
        ("sql: ", lambda: check_sql(sql, subject)),
        ("", lambda: validate_options(ctx, destination, options, subject)),
    ):
        try:
            checked.append(check())
        except ConfigError as exc:
            problems.append((label, exc))
    if len(problems) == 1:
        raise problems[0][1]
    if problems:
        details: list[str] = []
        for label, problem in problems:
            if isinstance(problem, SettingsValidationError):
                details += [f"{field}: {text}" for field, text in problem.fields["errors"]]
            else:
                details.append(label + problem.message.removeprefix(f"{subject}: "))
        hints = [problem.hint for _, problem in problems if problem.hint]
        raise ConfigError(
            f"invalid settings for {subject}: {'; '.join(details)}", hint="; ".join(dict.fromkeys(hints)) or None
        )
    checked_source, checked_sql, stored = checked
    return str(checked_source), str(checked_sql), dict(stored)


def add_orchestration(
    session: Session,
    ctx: Context,
    workspace_name: str,
    name: str,
    destination_name: str,
    sql: str,
    source: str,
    options: dict[str, Any],
) -> Orchestration:
    """Validate and store a new orchestration."""
    check_object_name("orchestration", name)
    workspace = changing_workspace(session, workspace_name)
    ensure_absent(session, Orchestration, workspace, name)
    destination = get_destination(session, workspace, destination_name)
    subject = _subject(name, destination)
    checked_source, checked_sql, stored = _validated(ctx, destination, subject, sql, source, options)
    row = Orchestration(
        workspace=workspace, name=name, destination=destination, source=checked_source, sql=checked_sql, options=stored
    )
    session.add(row)
    session.flush()
    audit.record(
        session, ctx.actor, "create", "orchestration", name, workspace.name,
        {"destination": destination.name, "source": row.source, "options": row.options},
    )  # fmt: skip
    return row


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The fields that differ between two definitions; a change of options as ``options.KEY``, one per option."""
    changed = []
    for key in sorted({*old, *new}):
        before, after = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if before == after:
            continue
        if key == "options" and isinstance(before, dict) and isinstance(after, dict):
            changed += [
                f"options.{option}"
                for option in sorted({*before, *after})
                if before.get(option, _ABSENT) != after.get(option, _ABSENT)
            ]
        else:
            changed.append(key)
    return sorted(changed)


def update_orchestration(
    session: Session,
    ctx: Context,
    row: Orchestration,
    destination_name: str,
    sql: str,
    source: str,
    options: dict[str, Any],
) -> list[str]:
    """Replace an orchestration's definition; return the fields that changed (options as ``options.KEY``).

    The orchestration keeps its id, and with it its runs, its delivery history (mode ``new``) and its groups.

    Its options are validated as ``add`` validates them, with one leniency for options stored before destination
    types owned their run options: one the type does not read, given back exactly as stored (an export of an earlier
    version), is no error; and options equal to what is read of the stored ones (:func:`shown_options`, what an
    export writes) are no change, so the unread option stays stored, unread.
    """
    destination = get_destination(session, row.workspace, destination_name)
    subject = _subject(row.name, destination)
    same_destination = destination.id == row.destination_id
    raw = dict(options)
    if same_destination:
        known = SHARED_OPTIONS | set(ctx.registry.destination_type(destination.type).run_options.model_fields)
        raw = {key: value for key, value in raw.items() if key in known or row.options.get(key, _ABSENT) != value}
    checked_source, checked_sql, new_options = _validated(ctx, destination, subject, sql, source, raw)
    if same_destination and new_options == shown_options(ctx, row):
        new_options = dict(row.options)
    new: dict[str, Any] = {
        "destination": destination.name,
        "sql": checked_sql,
        "source": checked_source,
        "options": new_options,
    }
    old = {"destination": row.destination.name, "sql": row.sql, "source": row.source, "options": row.options}
    changed = changed_fields(old, new)
    if changed:
        row.destination, row.sql, row.source, row.options = (
            destination,
            new["sql"],
            new["source"],
            new["options"],
        )
        audit.record(session, ctx.actor, "update", "orchestration", row.name, row.workspace.name, {"fields": changed})
    return changed


def edit_orchestration(
    session: Session,
    ctx: Context,
    workspace_name: str,
    name: str,
    *,
    destination_name: str | None = None,
    sql: str | None = None,
    source: str | None = None,
    options: dict[str, Any] | None = None,
    unset: Collection[str] = (),
) -> list[str]:
    """`orchestrations update`: change what is given, keep the rest (``options`` over the stored ones, ``unset``
    options removed), validated as ``add`` validates; return the fields that changed."""
    row = get_orchestration(session, changing_workspace(session, workspace_name), name)
    given = options or {}
    both = sorted(set(given) & set(unset))
    if both:
        raise ConfigError(
            f"orchestration {name!r}: option(s) {', '.join(both)} given and unset at once", hint="give each option once"
        )
    destination = get_destination(session, row.workspace, destination_name) if destination_name else row.destination
    known = SHARED_OPTIONS | set(ctx.registry.destination_type(destination.type).run_options.model_fields)
    unknown = sorted(key for key in unset if key not in known and key not in row.options)
    if unknown:
        raise ConfigError(
            f"orchestration {name!r}: cannot unset {', '.join(unknown)}: no such option "
            f"(valid options: {', '.join(sorted(known))})",
            hint=f"see `{offramp_command('plugins', 'show', destination.type)}` for its run options",
        )
    merged = {**{key: value for key, value in row.options.items() if key not in unset}, **given}
    return update_orchestration(
        session, ctx, row, destination.name,
        row.sql if sql is None else sql, row.source if source is None else source, merged,
    )  # fmt: skip


def rename_orchestration(session: Session, ctx: Context, workspace_name: str, old: str, new: str) -> bool:
    """Rename an orchestration: it keeps its id, so its runs, delivery history (mode ``new``) and groups follow."""
    return rename_named(session, ctx.actor, Orchestration, changing_workspace(session, workspace_name), old, new)


def groups_of(session: Session, row: Orchestration) -> list[str]:
    """Names of the orchestration groups an orchestration belongs to."""
    query = (
        select(OrchestrationGroup.name)
        .join(OrchestrationGroupMember, OrchestrationGroupMember.group_id == OrchestrationGroup.id)
        .where(OrchestrationGroupMember.orchestration_id == row.id)
        .order_by(OrchestrationGroup.name)
    )
    return list(session.scalars(query))


def _leave_commands(session: Session, row: Orchestration, workspace: str) -> list[str]:
    """The commands that take ``row`` out of each of its groups: the group with its other members, or, for a group of
    it alone, the group's delete."""
    commands = []
    query = (
        select(OrchestrationGroup)
        .join(OrchestrationGroupMember, OrchestrationGroupMember.group_id == OrchestrationGroup.id)
        .where(OrchestrationGroupMember.orchestration_id == row.id)
        .order_by(OrchestrationGroup.name)
    )
    for group in session.scalars(query):
        others = [member.orchestration.name for member in group.members if member.orchestration_id != row.id]
        if not others:
            commands.append(offramp_command("groups", "delete", group.name, workspace=workspace))
            continue
        flags = [word for other in others for word in ("--orchestration", other)]
        commands.append(offramp_command("groups", "update", group.name, *flags, workspace=workspace))
    return commands


def describe_orchestration(session: Session, ctx: Context, row: Orchestration) -> dict[str, Any]:
    """What `orchestrations show` prints; its options with every default: the shared ones, then the destination
    type's run options."""
    run_options = ctx.registry.destination_type(row.destination.type).run_options
    defaults = {**OrchestrationOptions().model_dump(mode="json"), **_defaults(run_options)}
    return {
        "name": row.name,
        "workspace": row.workspace.name,
        "destination": row.destination.name,
        "source": row.source,
        "options": {**defaults, **shown_options(ctx, row)},
        "groups": groups_of(session, row),
        "sql": row.sql,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def delete_orchestration(session: Session, ctx: Context, workspace_name: str, name: str) -> None:
    """Delete an orchestration that no group runs; its past runs stay as history."""
    workspace = changing_workspace(session, workspace_name)
    row = get_orchestration(session, workspace, name)
    groups = groups_of(session, row)
    if groups:
        raise ObjectInUseError(
            f"orchestration {name!r} belongs to group(s) {', '.join(groups)}",
            hint="remove it from those groups first: " + "; ".join(_leave_commands(session, row, workspace.name)),
            users=groups,
        )
    session.delete(row)
    audit.record(session, ctx.actor, "delete", "orchestration", name, workspace.name)


__all__ = [
    "add_orchestration",
    "delete_orchestration",
    "changed_fields",
    "describe_orchestration",
    "edit_orchestration",
    "get_orchestration",
    "list_orchestrations",
    "read_options",
    "rename_orchestration",
    "shown_options",
    "update_orchestration",
    "validate_options",
]
