"""Configuration as code: export a workspace as YAML, apply a YAML file to make the store match it.

Secrets never appear as values in a file. Export writes each one as an ``env:VARIABLE`` reference (the variable
it was read from, or a name derived from the object and field); apply reads the variable, and keeps the stored
value when the variable is unset. Apply runs in one transaction: a dry run is the same work, rolled back, so the
plan it prints is exactly what a real apply does.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from offramp.core.config import is_env_reference, secret_field_names
from offramp.core.errors import ConfigError, OfframpError
from offramp.core.orchestration_options import DUCKDB_MEMORY, check_cron, check_timezone
from offramp.core.services import audit
from offramp.core.services.alert_channels import (
    DEFAULT_SMTP_PORT,
    ChannelFields,
    add_channel,
    available_channels,
    channels_of_options,
    delete_channel,
    list_channels,
    update_channel,
)
from offramp.core.services.context import Context
from offramp.core.services.credentials import (
    add_credential,
    delete_credential,
    list_credentials,
    moved_endpoints,
    update_credential,
)
from offramp.core.services.destinations import (
    add_destination,
    delete_destination,
    list_destinations,
    update_destination,
)
from offramp.core.services.groups import add_group, delete_group, replace_group
from offramp.core.services.orchestrations import (
    add_orchestration,
    delete_orchestration,
    list_orchestrations,
    shown_options,
    update_orchestration,
)
from offramp.core.services.workspaces import add_workspace, changing_workspace, get_workspace
from offramp.core.state.models import (
    AlertChannel,
    Credential,
    Destination,
    Orchestration,
    OrchestrationGroup,
    Workspace,
)

FORMAT_VERSION = 1


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CredentialDoc(_Doc):
    name: str
    type: str
    settings: dict[str, Any] = Field(default_factory=dict)


class DestinationDoc(_Doc):
    name: str
    type: str
    credential: str
    settings: dict[str, Any] = Field(default_factory=dict)


class OrchestrationDoc(_Doc):
    name: str
    destination: str
    source: str = DUCKDB_MEMORY
    options: dict[str, Any] = Field(default_factory=dict)
    sql: str


class GroupDoc(_Doc):
    name: str
    schedule: str | None = None
    timezone: str | None = None
    orchestrations: list[str] = Field(default_factory=list)
    # The group's schedule and alert options (offramp.core.orchestration_options.GroupOptions): only those set.
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


class AlertChannelDoc(_Doc):
    """An alert channel (`offramp alerts channels`): a webhook's URL and signing credential, a Slack channel's URL
    (a secret, so an env: reference), or an email channel's SMTP server, sender, recipients and login credential."""

    name: str
    type: str
    url: str | None = None
    credential: str | None = None
    host: str | None = None
    port: int | None = None
    starttls: bool | None = None
    sender: str | None = None
    recipients: list[str] | None = None


class ConfigDocument(_Doc):
    """The YAML file `offramp export` writes and `offramp apply` reads."""

    version: Literal[1] = 1
    workspace: str
    credentials: list[CredentialDoc] = Field(default_factory=list)
    destinations: list[DestinationDoc] = Field(default_factory=list)
    orchestrations: list[OrchestrationDoc] = Field(default_factory=list)
    groups: list[GroupDoc] = Field(default_factory=list)
    alert_channels: list[AlertChannelDoc] = Field(default_factory=list)
    # Variables that feed more than one secret on purpose; any other variable feeds one secret only, so that a
    # name collision can never silently make several secrets one.
    shared_secret_variables: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class PlanItem:
    """One line of a plan: ``add``, ``change`` or ``remove`` an object (with the fields that change).

    The fields are those the services' updates return: setting names (a secret by its name, never its value) and,
    for an orchestration, ``options.KEY`` per option, e.g. ``~ orchestration store-orders (options.mode, sql)``.
    """

    action: Literal["add", "change", "remove"]
    kind: str
    name: str
    fields: tuple[str, ...] = ()
    # Fields whose change moves where the object's secrets are sent: shown apart, never as a harmless change.
    endpoints: tuple[str, ...] = ()

    def __str__(self) -> str:
        sign = {"add": "+", "change": "~", "remove": "-"}[self.action]
        parts = [f"{field}: secrets' destination changes" for field in self.endpoints]
        others = [field for field in self.fields if field not in self.endpoints]
        if others:
            parts.append(", ".join(others))
        detail = f" ({'; '.join(parts)})" if parts else ""
        return f"{sign} {self.kind} {self.name}{detail}"


@dataclass
class Plan:
    """What apply did (or, for a dry run, would do)."""

    workspace: str
    items: list[PlanItem] = field(default_factory=list)
    applied: bool = False

    def count(self, action: str) -> int:
        return sum(1 for item in self.items if item.action == action)

    @property
    def summary(self) -> str:
        return f"{self.count('add')} to add, {self.count('change')} to change, {self.count('remove')} to remove"


def default_secret_variable(object_name: str, field_name: str) -> str:
    """The environment variable export names for a secret that was not read from one.

    Different names can give the same variable (``shop-token``, ``shop_token`` and ``shop.token``); export makes
    the variables of one file unique (see `_SecretVariables`).
    """
    return re.sub(r"[^A-Z0-9]+", "_", f"{object_name}_{field_name}".upper()).strip("_")


SecretKey = tuple[str, str, str]  # (kind, object name, field) of one secret


class _SecretVariables:
    """The variable each secret of an exported file is written as, unique within the file.

    A secret read from a variable keeps it (several secrets read from one variable share it, and the file lists
    it under ``shared_secret_variables``). A derived name taken by another secret gets a suffix from a hash of
    its kind, object and field, so the names depend only on the file's objects, never on their order.
    """

    def __init__(self, wanted: dict[SecretKey, str | None]) -> None:
        sources = {key: source for key, source in wanted.items() if source}
        derived = {key: default_secret_variable(key[1], key[2]) for key in wanted if not wanted[key]}
        taken = set(sources.values())
        counts: dict[str, int] = {}
        for variable in derived.values():
            counts[variable] = counts.get(variable, 0) + 1
        self.variables: dict[SecretKey, str] = dict(sources)
        for key, variable in derived.items():
            if variable in taken or counts[variable] > 1:
                digest = hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:8].upper()
                variable = f"{variable}_{digest}"
            self.variables[key] = variable
        readers: dict[str, int] = {}
        for variable in self.variables.values():
            readers[variable] = readers.get(variable, 0) + 1
        self.shared = sorted(variable for variable, count in readers.items() if count > 1)


def _settings_out(
    kind: str, owner: str, model_fields: list[str], plain: dict[str, Any], secrets: dict[str, Any],
    variables: _SecretVariables,
) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    for name in model_fields:
        if name in plain:
            out[name] = plain[name]
        elif name in secrets:
            out[name] = f"env:{variables.variables[(kind, owner, name)]}"
    return out


def build_document(session: Session, ctx: Context, workspace_name: str) -> ConfigDocument:
    """The workspace's configuration as a document; secrets only as ``env:`` references."""
    workspace = get_workspace(session, workspace_name)
    credential_rows, destination_rows = list_credentials(session, workspace), list_destinations(session, workspace)
    wanted: dict[SecretKey, str | None] = {}
    for kind, rows in (("credential", credential_rows), ("destination", destination_rows)):
        for typed in rows:
            for field_name, record in typed.secrets.items():
                wanted[(kind, typed.name, field_name)] = record.get("source")
    channel_rows = list_channels(session, workspace)
    for channel in channel_rows:
        for field_name, record in channel.secrets.items():
            wanted[("alert_channel", channel.name, field_name)] = record.get("source")
    variables = _SecretVariables(wanted)
    credentials = []
    for row in credential_rows:
        model = ctx.registry.credential_type(row.type).settings
        settings = _settings_out("credential", row.name, list(model.model_fields), row.settings, row.secrets, variables)
        credentials.append(CredentialDoc(name=row.name, type=row.type, settings=settings))
    destinations = []
    for dest in destination_rows:
        model = ctx.registry.destination_type(dest.type).settings
        settings = _settings_out(
            "destination", dest.name, list(model.model_fields), dest.settings, dest.secrets, variables
        )
        destinations.append(
            DestinationDoc(name=dest.name, type=dest.type, credential=dest.credential.name, settings=settings)
        )
    orchestrations = [
        OrchestrationDoc(
            name=row.name,
            destination=row.destination.name,
            source=row.source,
            options=shown_options(ctx, row),
            sql=row.sql,
        )
        for row in list_orchestrations(session, workspace)
    ]
    groups = [
        GroupDoc(
            name=group.name,
            schedule=group.schedule,
            timezone=group.timezone,
            orchestrations=[member.orchestration.name for member in group.members],
            options=dict(group.options or {}),
        )
        for group in _groups(session, workspace)
    ]
    return ConfigDocument(
        workspace=workspace.name,
        credentials=credentials,
        destinations=destinations,
        orchestrations=orchestrations,
        groups=groups,
        alert_channels=[_channel_doc(row, variables) for row in channel_rows],
        shared_secret_variables=variables.shared,
    )


class LiteralDumper(yaml.SafeDumper):
    """YAML with multi-line strings (SQL, diffs) as literal blocks, so a file reads and diffs like the query itself.

    A string is written exactly (``|-`` when it does not end with a newline), so it reads back the same.
    """


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


LiteralDumper.add_representer(str, _str_presenter)


def export_yaml(session: Session, ctx: Context, workspace_name: str) -> str:
    """The workspace as YAML text."""
    document = build_document(session, ctx, workspace_name)
    data = document.model_dump(mode="json", exclude_defaults=False)
    if not data["shared_secret_variables"]:
        del data["shared_secret_variables"]  # written only when some variable does feed several secrets
    if data["alert_channels"]:
        # Only the fields of each channel's type (a webhook has no SMTP host).
        data["alert_channels"] = [{k: v for k, v in item.items() if v is not None} for item in data["alert_channels"]]
    else:
        del data["alert_channels"]  # written only when the workspace has some
    for group in data["groups"]:
        if not group["options"]:
            del group["options"]  # written only when the group has some: most groups have none
    for orchestration in data["orchestrations"]:
        if not orchestration["sql"].endswith("\n") and "\n" in orchestration["sql"]:
            orchestration["sql"] += "\n"
    header = f"# offramp configuration of workspace {document.workspace}; secrets are env: references.\n"
    return header + yaml.dump(data, Dumper=LiteralDumper, sort_keys=False, allow_unicode=True, width=120)


def parse_document(text: str, origin: str) -> ConfigDocument:
    """Parse and validate a configuration file, reporting every structural error at once."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{origin} is not valid YAML{where}", hint="fix the syntax and apply again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} must hold a mapping with workspace, credentials, destinations, ...")
    try:
        return ConfigDocument.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {str(error['msg']).removeprefix('Value error, ')}"
            for error in exc.errors(include_url=False)
        )
        raise ConfigError(f"{origin}: {problems}", hint="compare with the output of `offramp export`") from None


def _groups(session: Session, workspace: Workspace) -> list[OrchestrationGroup]:
    query = select(OrchestrationGroup).where(OrchestrationGroup.workspace_id == workspace.id)
    return list(session.scalars(query.order_by(OrchestrationGroup.name)))


def _present_settings(
    raw: dict[str, Any], secret_fields: frozenset[str], required: set[str], existing: bool
) -> dict[str, Any]:
    """Drop secret references whose variable is unset where the stored value (or no value) is acceptable."""
    kept = {}
    for name, value in raw.items():
        if name in secret_fields and is_env_reference(value):
            variable = value.split(":", 1)[1]
            if variable not in os.environ and (existing or name not in required):
                continue
        kept[name] = value
    return kept


def _required(model: Any) -> set[str]:
    return {name for name, info in model.model_fields.items() if info.is_required()}


def _check_unique(document: ConfigDocument) -> None:
    for kind, items in (
        ("credential", document.credentials),
        ("destination", document.destinations),
        ("orchestration", document.orchestrations),
        ("group", document.groups),
        ("alert channel", document.alert_channels),
    ):
        names = [item.name for item in items]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"{kind} names appear twice in the file: {', '.join(duplicates)}")


def _nul_paths(value: Any, path: str) -> list[str]:
    """Where a NUL character hides in a parsed document (keys included): PostgreSQL text cannot hold one."""
    if isinstance(value, str):
        return [path or "the file"] if "\x00" in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found.extend([f"{where!r} (a key)"] if "\x00" in str(key) else _nul_paths(item, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            # Objects by name (credentials['tt'].settings.app_id), so the line says which one; else by position.
            name = item.get("name") if isinstance(item, dict) else None
            usable = isinstance(name, str) and "\x00" not in name
            found.extend(_nul_paths(item, f"{path}[{name!r}]" if usable else f"{path}[{index}]"))
    return found


def _check_text(document: ConfigDocument) -> None:
    paths = _nul_paths(document.model_dump(mode="python"), "")
    if paths:
        raise ConfigError(
            f"{', '.join(paths)}: holds a NUL character (\\x00), which no configuration value can contain",
            hint="remove it from the file and apply again; nothing was changed",
        )


def _check_secret_variables(document: ConfigDocument, ctx: Context) -> None:
    """Refuse one variable feeding two different secrets, unless the file lists it as shared on purpose."""
    readers: dict[str, list[str]] = {}
    typed: list[tuple[str, CredentialDoc | DestinationDoc, Any]] = []
    for credential in document.credentials:
        if credential.type in ctx.registry.credentials:
            typed.append(("credential", credential, ctx.registry.credential_type(credential.type).settings))
    for dest in document.destinations:
        if dest.type in ctx.registry.destinations:
            typed.append(("destination", dest, ctx.registry.destination_type(dest.type).settings))
    for kind, doc, model in typed:
        for field_name in sorted(secret_field_names(model) & doc.settings.keys()):
            value = doc.settings[field_name]
            if is_env_reference(value):
                readers.setdefault(value.split(":", 1)[1], []).append(f"{kind} {doc.name!r} {field_name}")
    for channel_doc in document.alert_channels:
        if channel_doc.type == "slack" and is_env_reference(channel_doc.url):
            variable = str(channel_doc.url).split(":", 1)[1]
            readers.setdefault(variable, []).append(f"alert channel {channel_doc.name!r} url")
    shared = set(document.shared_secret_variables)
    clashes = {variable: who for variable, who in sorted(readers.items()) if len(who) > 1 and variable not in shared}
    if clashes:
        problems = "; ".join(f"env:{variable} feeds {', '.join(who)}" for variable, who in clashes.items())
        raise ConfigError(
            f"one variable would set several secrets to one value: {problems}",
            hint="give each secret its own variable, or list the variable under shared_secret_variables if "
            "those secrets are meant to be the same; nothing was changed",
        )


def _lock_workspace(session: Session, name: str) -> None:
    """Serialize applies to one workspace on PostgreSQL, so two applies of one file at once both succeed.

    Without it both would see no workspace (or no credential) and insert it, and the second would fail on the
    unique name. The lock is held until the transaction ends; the second apply then sees the first's rows and
    has nothing (or only the rest) to do. SQLite's write lock serializes the applies already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"offramp apply {name}"})


def apply_document(session: Session, ctx: Context, document: ConfigDocument, *, dry_run: bool) -> Plan:
    """Make the workspace match ``document``. Every error is collected; any error rolls everything back."""
    _check_text(document)
    _check_unique(document)
    _check_secret_variables(document, ctx)
    _lock_workspace(session, document.workspace)
    plan = Plan(workspace=document.workspace)
    errors: list[str] = []
    workspace = session.scalar(select(Workspace).where(Workspace.name == document.workspace))
    if workspace is not None:
        changing_workspace(session, workspace.name)  # refuses a deleted sandbox; locks before reading what changes
    if workspace is None:
        workspace = add_workspace(session, ctx, document.workspace)
        plan.items.append(PlanItem("add", "workspace", document.workspace))

    def attempt(action: Any, *args: Any) -> Any:
        try:
            with session.begin_nested():
                return action(*args)
        except OfframpError as exc:
            errors.append(str(exc))
            return None

    credentials = {row.name: row for row in list_credentials(session, workspace)}
    for item in document.credentials:
        model = ctx.registry.credential_type(item.type).settings if item.type in ctx.registry.credentials else None
        if model is None:
            errors.append(f"credential {item.name!r}: no credential type named {item.type!r}")
            continue
        existing_row: Credential | None = credentials.get(item.name)
        raw = _present_settings(item.settings, secret_field_names(model), _required(model), existing_row is not None)
        if existing_row is not None and existing_row.type != item.type:
            errors.append(f"credential {item.name!r}: its type cannot change ({existing_row.type} -> {item.type})")
        elif existing_row is None:
            if _has_literal_secrets(item.name, "credential", raw, secret_field_names(model), errors):
                continue
            if attempt(add_credential, session, ctx, workspace.name, item.name, item.type, raw) is not None:
                plan.items.append(PlanItem("add", "credential", item.name))
        else:
            before = dict(existing_row.settings)
            changed = attempt(update_credential, session, ctx, existing_row, raw)
            if changed:
                moved = moved_endpoints(ctx, item.type, before, existing_row.settings)
                plan.items.append(PlanItem("change", "credential", item.name, tuple(changed), tuple(moved)))

    # After the credentials (a channel names one), before the orchestrations and groups (their rules name channels).
    channels = {row.name: row for row in list_channels(session, workspace)}
    for c in document.alert_channels:
        channel_item = attempt(_apply_channel, session, ctx, workspace, channels.get(c.name), c)
        if channel_item is not None:
            plan.items.append(channel_item)

    destinations = {row.name: row for row in list_destinations(session, workspace)}
    for d in document.destinations:
        if d.type not in ctx.registry.destinations:
            errors.append(f"destination {d.name!r}: no destination type named {d.type!r}")
            continue
        model = ctx.registry.destination_type(d.type).settings
        dest_row: Destination | None = destinations.get(d.name)
        raw = _present_settings(d.settings, secret_field_names(model), _required(model), dest_row is not None)
        if dest_row is not None and dest_row.type != d.type:
            errors.append(f"destination {d.name!r}: its type cannot change ({dest_row.type} -> {d.type})")
        elif dest_row is None:
            if _has_literal_secrets(d.name, "destination", raw, secret_field_names(model), errors):
                continue
            if attempt(add_destination, session, ctx, workspace.name, d.name, d.type, d.credential, raw) is not None:
                plan.items.append(PlanItem("add", "destination", d.name))
        else:
            changed = attempt(update_destination, session, ctx, dest_row, d.credential, raw)
            if changed:
                plan.items.append(PlanItem("change", "destination", d.name, tuple(changed)))

    orchestrations = {row.name: row for row in list_orchestrations(session, workspace)}
    for o in document.orchestrations:
        orch_row: Orchestration | None = orchestrations.get(o.name)
        if orch_row is None:
            args = (session, ctx, workspace.name, o.name, o.destination, o.sql, o.source, o.options)
            if attempt(add_orchestration, *args) is not None:
                plan.items.append(PlanItem("add", "orchestration", o.name))
        else:
            changed = attempt(update_orchestration, session, ctx, orch_row, o.destination, o.sql, o.source, o.options)
            if changed:
                plan.items.append(PlanItem("change", "orchestration", o.name, tuple(changed)))

    groups = {group.name: group for group in _groups(session, workspace)}
    for g in document.groups:
        result = attempt(_apply_group, session, ctx, workspace, groups.get(g.name), g)
        if result is not None:
            plan.items.append(result)

    wanted = {
        "group": {g.name for g in document.groups},
        "orchestration": {o.name for o in document.orchestrations},
        "destination": {d.name for d in document.destinations},
        "alert channel": {c.name for c in document.alert_channels},
        "credential": {c.name for c in document.credentials},
    }
    current: dict[str, dict[str, Any]] = {
        "group": groups,
        "orchestration": orchestrations,
        "destination": destinations,
        "alert channel": channels,
        "credential": credentials,
    }
    for kind in ("group", "orchestration", "destination", "alert channel", "credential"):
        for name in sorted(set(current[kind]) - wanted[kind]):
            attempt(_remove, session, ctx, workspace, kind, name)
            plan.items.append(PlanItem("remove", kind, name))

    errors.extend(_unknown_rule_channels(session, workspace, document))
    if errors:
        raise ConfigError(
            f"cannot apply to workspace {document.workspace!r}: " + "; ".join(dict.fromkeys(errors)),
            hint="nothing was changed; fix the file and apply again",
            errors=errors,
        )
    if plan.items and not dry_run:
        audit.record(
            session, ctx.actor, "apply", "workspace", workspace.name, workspace.name,
            {"plan": [str(item) for item in plan.items]},
        )  # fmt: skip
    plan.applied = not dry_run
    return plan


def _has_literal_secrets(
    name: str, kind: str, raw: dict[str, Any], secret_fields: frozenset[str], errors: list[str]
) -> bool:
    """Record an error for each secret written as a value; such a file must never be applied."""
    literal = sorted(field_name for field_name in secret_fields & raw.keys() if not is_env_reference(raw[field_name]))
    errors.extend(
        f"{kind} {name!r}: {field_name} is a secret; write it as env:VARIABLE, never as a value"
        for field_name in literal
    )
    return bool(literal)


def _apply_group(
    session: Session, ctx: Context, workspace: Workspace, group: OrchestrationGroup | None, doc: GroupDoc
) -> PlanItem | None:
    # The groups service validates (name, members, cron, zone, options) and audits, as `offramp groups` does.
    if group is None:
        add_group(session, ctx, workspace.name, doc.name, doc.orchestrations, doc.schedule, doc.timezone, doc.options)
        return PlanItem("add", "group", doc.name)
    changed = replace_group(session, ctx, group, doc.orchestrations, doc.schedule, doc.timezone, doc.options)
    return PlanItem("change", "group", doc.name, tuple(changed)) if changed else None


def _channel_doc(row: AlertChannel, variables: _SecretVariables) -> AlertChannelDoc:
    """A channel as a file holds it: only its type's fields; a Slack URL as an env: reference."""
    settings = row.settings
    credential = row.credential.name if row.credential is not None else None
    if row.type == "slack":
        variable = variables.variables[("alert_channel", row.name, "url")]
        return AlertChannelDoc(name=row.name, type=row.type, url=f"env:{variable}")
    if row.type == "webhook":
        return AlertChannelDoc(name=row.name, type=row.type, url=settings.get("url"), credential=credential)
    return AlertChannelDoc(
        name=row.name, type=row.type, host=settings.get("host"), port=settings.get("port"),
        starttls=settings.get("starttls"), sender=settings.get("sender"),
        recipients=list(settings.get("recipients") or []), credential=credential,
    )  # fmt: skip


def _apply_channel(
    session: Session, ctx: Context, workspace: Workspace, row: AlertChannel | None, doc: AlertChannelDoc
) -> PlanItem | None:
    """Add or change one channel as the file says; the file is the whole truth (a field left out is its default)."""
    if row is not None and row.type != doc.type:
        raise ConfigError(f"alert channel {doc.name!r}: its type cannot change ({row.type} -> {doc.type})")
    url, source = doc.url, None
    if doc.type == "slack":
        if url is None or not is_env_reference(url):
            raise ConfigError(
                f"alert channel {doc.name!r}: url is a secret; write it as env:VARIABLE, never as a value",
                hint="nothing was changed; write url: env:VARIABLE and export VARIABLE before applying",
            )
        source = url.split(":", 1)[1]
        url = os.environ.get(source)
        if url is None:
            if row is None:
                raise ConfigError(
                    f"alert channel {doc.name!r}: url reads env:{source}, which is not set",
                    hint=f"export {source} with the Slack webhook URL and apply again",
                )
            source = None  # the stored URL is kept
    elif doc.type == "webhook" and url is None:
        raise ConfigError(f"alert channel {doc.name!r}: a webhook channel needs its url", hint="add url: https://...")
    email = doc.type == "email"
    fields = ChannelFields(
        url=url, url_source=source, host=doc.host,
        port=doc.port if doc.port is not None else (DEFAULT_SMTP_PORT if email else None),
        starttls=doc.starttls if doc.starttls is not None else (True if email else None), sender=doc.sender,
        recipients=tuple(doc.recipients or ()) if email else None, credential=doc.credential,
        no_credential=email and doc.credential is None and row is not None,
    )  # fmt: skip
    if row is None:
        add_channel(session, ctx, workspace.name, doc.name, doc.type, fields)
        return PlanItem("add", "alert channel", doc.name)
    changed = update_channel(session, ctx, row, fields)
    return PlanItem("change", "alert channel", doc.name, tuple(changed)) if changed else None


def _unknown_rule_channels(session: Session, workspace: Workspace, document: ConfigDocument) -> list[str]:
    """An error for each orchestration or group of the file whose alert rules name a channel that does not exist."""
    available = set(available_channels(session, workspace))
    existing = ", ".join(sorted(available)) or "none"
    problems = []
    items: list[tuple[str, OrchestrationDoc | GroupDoc]] = [
        *(("orchestration", o) for o in document.orchestrations), *(("group", g) for g in document.groups)
    ]  # fmt: skip
    for kind, item in items:
        missing = [name for name in channels_of_options(item.options) if name not in available]
        if missing:
            problems.append(
                f"{kind} {item.name!r}: its alert rules name no existing alert channel ({', '.join(missing)}; "
                f"existing: {existing})"
            )
    return problems


def _remove(session: Session, ctx: Context, workspace: Workspace, kind: str, name: str) -> None:
    # The services' delete functions refuse to remove an object still in use, naming its users.
    if kind == "credential":
        delete_credential(session, ctx, workspace.name, name)
    elif kind == "destination":
        delete_destination(session, ctx, workspace.name, name)
    elif kind == "alert channel":
        delete_channel(session, ctx, workspace.name, name)
    elif kind == "orchestration":
        delete_orchestration(session, ctx, workspace.name, name)
    else:
        delete_group(session, ctx, workspace.name, name)
    session.flush()


__all__ = [
    "AlertChannelDoc",
    "ConfigDocument",
    "LiteralDumper",
    "Plan",
    "PlanItem",
    "apply_document",
    "build_document",
    "default_secret_variable",
    "export_yaml",
    "parse_document",
]
