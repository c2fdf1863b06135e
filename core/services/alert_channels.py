"""Alert channels: where notices go (a signed webhook, a Slack incoming webhook, email over SMTP).

A channel is a workspace object. Like credentials, a channel is shared with sandboxes by reference: a rule names a
channel, found in the rule's workspace first and then in production (never copied into a sandbox, never promoted).

What is stored: ``settings`` hold what is not secret (a webhook's URL; an SMTP server's host, port, STARTTLS,
sender and recipients), ``secrets`` the Fernet record of what is (a Slack webhook's URL: whoever holds it may post),
``credential_id`` the credential holding a webhook's signing secret (``hmac-secret``) or an SMTP login
(``username-password``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from offramp.core.alerts.channels import (
    Channel,
    ChannelKind,
    Delivery,
    DeliveryPolicy,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
)
from offramp.core.alerts.notices import Notice
from offramp.core.errors import ConfigError, ObjectExistsError, ObjectInUseError, ObjectNotFoundError
from offramp.core.hints import offramp_command
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.credentials import credential_settings, resolve_credential
from offramp.core.services.naming import check_object_name
from offramp.core.services.workspaces import changing_workspace
from offramp.core.state.models import (
    AlertChannel,
    AlertDelivery,
    Credential,
    Orchestration,
    OrchestrationGroup,
    Workspace,
    utcnow,
)

CHANNEL_TYPES: tuple[ChannelKind, ...] = ("webhook", "slack", "email")
# The credential type each kind of channel takes (a Slack channel takes none: its URL is its secret).
CREDENTIAL_TYPES: dict[str, str] = {"webhook": "hmac-secret", "email": "username-password"}
DEFAULT_SMTP_PORT = 587
SLACK_URL = "url"  # the field of a Slack channel's secrets that holds its webhook URL
# A stand-in for checking a webhook channel's settings before its credential is read (never sent anywhere).
_CHECK_SECRET = SecretStr("x" * 16)


@dataclass(frozen=True)
class ChannelFields:
    """What `alerts channels add|update` and apply give a channel; None: not given (kept by an update).

    Args:
        url: A webhook's URL, or a Slack channel's webhook URL (a secret: never printed, stored encrypted).
        url_source: The environment variable a Slack URL was read from (an export refers to it).
        host: The SMTP server.
        port: Its port (587 when an email channel is added without one).
        starttls: Whether to upgrade the SMTP connection with STARTTLS (on when added without it).
        sender: The From address of alert emails.
        recipients: The To addresses.
        credential: The credential's name: a webhook's ``hmac-secret``, an email channel's ``username-password``.
        no_credential: Remove an email channel's login (an update).
    """

    url: str | None = None
    url_source: str | None = None
    host: str | None = None
    port: int | None = None
    starttls: bool | None = None
    sender: str | None = None
    recipients: tuple[str, ...] | None = None
    credential: str | None = None
    no_credential: bool = False


# -- finding channels ----------------------------------------------------------------------------------------------


def _production_of(session: Session, workspace: Workspace) -> Workspace | None:
    """Production, whose channels a sandbox shares; None when ``workspace`` is production itself."""
    from offramp.core.environment import DEFAULT_WORKSPACE
    from offramp.core.services.config_snapshot import is_production

    if is_production(workspace):
        return None
    return session.scalar(select(Workspace).where(Workspace.name == DEFAULT_WORKSPACE))


def _named(session: Session, workspace: Workspace, name: str) -> AlertChannel | None:
    query = select(AlertChannel).where(AlertChannel.workspace_id == workspace.id, AlertChannel.name == name)
    return session.scalar(query)


def list_channels(session: Session, workspace: Workspace) -> list[AlertChannel]:
    """The channels of ``workspace`` itself, by name."""
    query = select(AlertChannel).where(AlertChannel.workspace_id == workspace.id).order_by(AlertChannel.name)
    return list(session.scalars(query))


def shared_channels(session: Session, workspace: Workspace) -> list[AlertChannel]:
    """Production's channels a sandbox's rules may name (those it has none of its own name for); empty for
    production."""
    production = _production_of(session, workspace)
    if production is None:
        return []
    own = {row.name for row in list_channels(session, workspace)}
    return [row for row in list_channels(session, production) if row.name not in own]


def available_channels(session: Session, workspace: Workspace) -> list[str]:
    """The channel names a rule of ``workspace`` may name: its own, then production's it shares."""
    return sorted({row.name for row in [*list_channels(session, workspace), *shared_channels(session, workspace)]})


def _not_found(session: Session, workspace: Workspace, names: Sequence[str]) -> ObjectNotFoundError:
    existing = ", ".join(available_channels(session, workspace)) or "none"
    listed = ", ".join(repr(name) for name in names)
    where = f"workspace {workspace.name!r}"
    if _production_of(session, workspace) is not None:
        where = f"sandbox {workspace.name!r} or production"
    noun = "alert channel" if len(names) == 1 else "alert channels"
    return ObjectNotFoundError(
        f"no {noun} named {listed} in {where} (existing: {existing})",
        hint="add one with `"
        + offramp_command("alerts", "channels", "add", "--help")
        + "`, or see `"
        + offramp_command("alerts", "channels", "list", workspace=workspace.name)
        + "`",
    )


def resolve_channel(session: Session, workspace: Workspace, name: str) -> AlertChannel:
    """The channel a rule of ``workspace`` means by ``name``: the workspace's own, else (in a sandbox) production's.
    The error lists the channels that exist."""
    own = _named(session, workspace, name)
    if own is not None:
        return own
    production = _production_of(session, workspace)
    shared = _named(session, production, name) if production is not None else None
    if shared is not None:
        return shared
    raise _not_found(session, workspace, [name])


def check_channels(session: Session, workspace: Workspace, names: Iterable[str]) -> None:
    """Refuse channel names that no channel of ``workspace`` (or of production, for a sandbox) has, naming the
    channels that do exist."""
    available = set(available_channels(session, workspace))
    missing = [name for name in names if name not in available]
    if missing:
        raise _not_found(session, workspace, missing)


def own_channel(session: Session, workspace: Workspace, name: str, command: str) -> AlertChannel:
    """The channel ``name`` of ``workspace`` itself, for a command that changes it; production's channel, shared
    with a sandbox, is refused there with the command that changes it in production."""
    own = _named(session, workspace, name)
    if own is not None:
        return own
    production = _production_of(session, workspace)
    if production is not None and _named(session, production, name) is not None:
        raise ConfigError(
            f"alert channel {name!r} belongs to production and is shared with sandbox {workspace.name!r}: a "
            f"sandbox uses it but does not {command} it",
            # No pasteable command: one run from the sandbox's shell would act on the sandbox again.
            hint=f"{command} it in production (the same command without -w {workspace.name}), for every workspace "
            "that uses it",
        )
    names = ", ".join(row.name for row in list_channels(session, workspace)) or "none"
    raise ObjectNotFoundError(
        f"no alert channel named {name!r} in workspace {workspace.name!r} (existing: {names})",
        hint="see `" + offramp_command("alerts", "channels", "list", workspace=workspace.name) + "`",
    )


# -- checking and storing -----------------------------------------------------------------------------------------


def _check_type(type_name: str) -> ChannelKind:
    for kind in CHANNEL_TYPES:
        if kind == type_name:
            return kind
    raise ConfigError(
        f"alert channel type {type_name!r} is not one of {', '.join(CHANNEL_TYPES)}",
        hint="give --type webhook, --type slack or --type email",
    )


def _credential_of(session: Session, workspace: Workspace, name: str, channel: str, kind: str) -> Credential:
    """The credential ``name`` a ``kind`` channel takes, checked to be of the type it needs."""
    wanted = CREDENTIAL_TYPES.get(kind)
    if wanted is None:
        raise ConfigError(
            f"alert channel {channel!r}: a {kind} channel takes no credential (its webhook URL is its secret)",
            hint="leave out --credential",
        )
    row = resolve_credential(session, workspace, name)
    if row.type != wanted:
        raise ConfigError(
            f"alert channel {channel!r}: credential {name!r} is a {row.type} credential; a {kind} channel takes a "
            f"{wanted} credential",
            hint="add one with `" + offramp_command("credentials", "add", "--help") + f"` (--type {wanted})",
        )
    return row


def check_login_host(channel: str, settings: dict[str, Any], credential: Credential | None) -> None:
    """Refuse an email channel whose SMTP server is not the one its login is for (the credential's ``host``, and
    ``port`` when it has one): the password goes to that server only, whichever workspace the channel is in."""
    if credential is None or credential.type != CREDENTIAL_TYPES["email"]:
        return
    host = str(credential.settings.get("host") or "")
    port = credential.settings.get("port")
    channel_host = str(settings.get("host") or "")
    channel_port = int(settings.get("port") or DEFAULT_SMTP_PORT)
    if host.lower() != channel_host.lower():
        raise ConfigError(
            f"alert channel {channel!r}: --host {channel_host} is not the SMTP server of credential "
            f"{credential.name!r} (host {host or 'not set'}); its password is sent to that server only",
            hint=f"give --host {host}" if host else "set the credential's host with `"
            + offramp_command("credentials", "update", credential.name, "--help") + "`",
        )  # fmt: skip
    if port is not None and int(port) != channel_port:
        raise ConfigError(
            f"alert channel {channel!r}: --port {channel_port} is not the port of credential {credential.name!r} "
            f"({port}); its password is sent to that server's port only",
            hint=f"give --port {port}",
        )


def _settings_of(kind: ChannelKind, fields: ChannelFields, stored: dict[str, Any]) -> dict[str, Any]:
    """The plain settings of a ``kind`` channel: ``stored`` with what ``fields`` give over it."""
    if kind == "webhook":
        url = fields.url if fields.url is not None else stored.get("url")
        return {"url": url}
    if kind == "slack":
        return {}
    recipients = fields.recipients if fields.recipients is not None else stored.get("recipients")
    return {
        "host": fields.host if fields.host is not None else stored.get("host"),
        "port": fields.port if fields.port is not None else stored.get("port", DEFAULT_SMTP_PORT),
        "starttls": fields.starttls if fields.starttls is not None else stored.get("starttls", True),
        "sender": fields.sender if fields.sender is not None else stored.get("sender"),
        "recipients": list(recipients or []),
    }


def _check_settings(name: str, kind: ChannelKind, settings: dict[str, Any], slack_url: str | None,
                    has_login: bool) -> None:  # fmt: skip
    """Raise ConfigError naming what is missing or wrong, before anything is stored (the channels' own checks)."""
    if kind == "webhook":
        if not settings.get("url"):
            raise ConfigError(f"alert channel {name!r}: a webhook channel needs --url", hint="give --url https://...")
        WebhookChannel(name, settings["url"], _CHECK_SECRET)
    elif kind == "slack":
        if not slack_url:
            raise ConfigError(
                f"alert channel {name!r}: a Slack channel needs its incoming-webhook URL",
                hint="give it with --url-env VARIABLE (the variable holding the URL), or type it when prompted",
            )
        SlackChannel(name, SecretStr(slack_url))
    else:
        missing = [flag for flag, key in (("--host", "host"), ("--sender", "sender"), ("--to", "recipients"))
                   if not settings.get(key)]  # fmt: skip
        if missing:
            raise ConfigError(
                f"alert channel {name!r}: an email channel needs {', '.join(missing)}",
                hint="give the SMTP server with --host, the From address with --sender and each recipient with --to",
            )
        login = ("user", SecretStr("x")) if has_login else (None, None)
        EmailChannel(
            name, settings["host"], settings["sender"], tuple(settings["recipients"]), port=int(settings["port"]),
            starttls=bool(settings["starttls"]), username=login[0], password=login[1],
        )  # fmt: skip


def _secret_record(ctx: Context, value: str, source: str | None) -> dict[str, Any]:
    return {"ciphertext": ctx.secret_box.encrypt(value), "changed_at": utcnow().isoformat(), "source": source}


def slack_url(ctx: Context, row: AlertChannel) -> str:
    """A Slack channel's webhook URL, decrypted (to send a notice; never to print)."""
    record = row.secrets[SLACK_URL]
    return ctx.secret_box.decrypt(record["ciphertext"], f"alert channel {row.name!r} field {SLACK_URL}")


def add_channel(
    session: Session, ctx: Context, workspace_name: str, name: str, type_name: str, fields: ChannelFields
) -> AlertChannel:
    """Check and store a new channel (a Slack URL encrypted before it reaches the session); audited."""
    check_object_name("alert channel", name)
    kind = _check_type(type_name)
    workspace = changing_workspace(session, workspace_name)
    if _named(session, workspace, name) is not None:
        raise ObjectExistsError(
            f"alert channel {name!r} already exists in workspace {workspace.name!r}",
            hint="pick another name, or change it with `" + offramp_command("alerts", "channels", "update", "--help")
            + "`",
        )  # fmt: skip
    if kind != "slack" and fields.url_source is not None:
        raise ConfigError(
            f"alert channel {name!r}: --url-env is for a Slack channel's URL (a secret); a {kind} channel's URL is "
            "not secret",
            hint="give it with --url" if kind == "webhook" else "leave out --url-env",
        )
    if kind == "webhook" and fields.credential is None:
        raise ConfigError(
            f"alert channel {name!r}: a webhook channel signs its notices with an hmac-secret credential",
            hint="give it with --credential (add one with `"
            + offramp_command("credentials", "add", "--help") + "`, --type hmac-secret)",
        )  # fmt: skip
    credential = (
        _credential_of(session, workspace, fields.credential, name, kind) if fields.credential is not None else None
    )
    credential_id = credential.id if credential is not None else None
    settings = _settings_of(kind, fields, {})
    url = fields.url if kind == "slack" else None
    _check_settings(name, kind, settings, url, credential_id is not None)
    check_login_host(name, settings, credential)
    secrets = {SLACK_URL: _secret_record(ctx, url, fields.url_source)} if url is not None else {}
    row = AlertChannel(
        workspace=workspace, name=name, type=kind, credential_id=credential_id, settings=settings, secrets=secrets
    )
    session.add(row)
    session.flush()
    audit.record(
        session, ctx.actor, "create", "alert_channel", name, workspace.name,
        {"type": kind, "fields": sorted([*settings, *secrets, *(["credential"] if credential_id else [])])},
    )  # fmt: skip
    return row


def update_channel(session: Session, ctx: Context, row: AlertChannel, fields: ChannelFields) -> list[str]:
    """Change what ``fields`` give, keep the rest; return the fields that changed (the Slack URL by name only)."""
    kind = _check_type(row.type)
    if kind == "slack" and any(v is not None for v in (fields.host, fields.port, fields.sender, fields.recipients)):
        raise ConfigError(f"alert channel {row.name!r}: a Slack channel has only its URL", hint="give --url-env")
    credential_id = row.credential_id
    if fields.no_credential:
        if kind == "webhook":
            raise ConfigError(
                f"alert channel {row.name!r}: a webhook channel always signs with a credential",
                hint="give another one with --credential",
            )
        credential_id = None
    elif fields.credential is not None:
        credential_id = _credential_of(session, row.workspace, fields.credential, row.name, kind).id
    settings = _settings_of(kind, fields, row.settings)
    url: str | None = None
    if kind == "slack":
        url = fields.url if fields.url is not None else slack_url(ctx, row)
    _check_settings(row.name, kind, settings, url, credential_id is not None)
    check_login_host(row.name, settings, session.get(Credential, credential_id) if credential_id else None)
    changed = sorted(key for key in {*settings, *row.settings} if settings.get(key) != row.settings.get(key))
    if credential_id != row.credential_id:
        changed.append("credential")
    secrets = dict(row.secrets)
    if kind == "slack" and fields.url is not None:
        if fields.url != slack_url(ctx, row):
            secrets[SLACK_URL] = _secret_record(ctx, fields.url, fields.url_source)
            changed.append(SLACK_URL)
        elif fields.url_source != row.secrets[SLACK_URL].get("source") and fields.url_source is not None:
            secrets[SLACK_URL] = {**row.secrets[SLACK_URL], "source": fields.url_source}  # only where it is read
    if changed:
        row.settings, row.credential_id = settings, credential_id
        audit.record(
            session, ctx.actor, "update", "alert_channel", row.name, row.workspace.name, {"fields": sorted(changed)}
        )
    if secrets != row.secrets:
        row.secrets = secrets
    session.flush()
    return sorted(changed)


def edit_channel(session: Session, ctx: Context, workspace_name: str, name: str, fields: ChannelFields) -> list[str]:
    """`alerts channels update NAME`: the channel of the workspace itself, changed as :func:`update_channel`."""
    workspace = changing_workspace(session, workspace_name)
    return update_channel(session, ctx, own_channel(session, workspace, name, "update"), fields)


# -- who uses a channel -------------------------------------------------------------------------------------------


def channels_of_options(options: dict[str, Any] | None) -> list[str]:
    """The channels an ``alerts`` option (as stored) names; empty when there is none."""
    alerts = (options or {}).get("alerts")
    if not isinstance(alerts, dict):
        return []
    channels = alerts.get("channels")
    return [str(name) for name in channels] if isinstance(channels, list) else []


def rule_users(session: Session, row: AlertChannel) -> list[str]:
    """The orchestrations and groups whose alert rules name ``row``: in its workspace, and (a production channel)
    in the sandboxes that find it by name (those without a channel of their own by that name)."""
    home = row.workspace
    workspaces = [home]
    if _production_of(session, home) is None:
        sandboxes = session.scalars(
            select(Workspace).where(Workspace.id != home.id, Workspace.deleted_at.is_(None)).order_by(Workspace.name)
        )
        workspaces += [ws for ws in sandboxes if _named(session, ws, row.name) is None]
    users: list[str] = []
    for ws in workspaces:
        where = "" if ws.id == home.id else f" (sandbox {ws.name})"
        for kind, model in (("orchestration", Orchestration), ("group", OrchestrationGroup)):
            query = select(model.name, model.options).where(model.workspace_id == ws.id).order_by(model.name)
            users += [f"{kind} {name}{where}" for name, options in session.execute(query)
                      if row.name in channels_of_options(options)]  # fmt: skip
    return users


def channel_users(session: Session, credential: Credential) -> list[tuple[str, str]]:
    """The channels that use ``credential`` (a webhook's signing secret, an email channel's login), as (channel,
    workspace): in its workspace, and (production's credential) in the sandboxes that share it."""
    query = (
        select(AlertChannel.name, Workspace.name)
        .join(Workspace, AlertChannel.workspace_id == Workspace.id)
        .where(AlertChannel.credential_id == credential.id)
    )
    home = credential.workspace.name
    return sorted(((str(n), str(w)) for n, w in session.execute(query)), key=lambda u: (u[1] != home, u[1], u[0]))


def channel_users_said(session: Session, credential: Credential) -> list[str]:
    """:func:`channel_users` as `credentials show` lists them: ``alert channel NAME`` (``(sandbox SANDBOX)``)."""
    home = credential.workspace.name
    return [f"alert channel {name}" + ("" if ws == home else f" (sandbox {ws})")
            for name, ws in channel_users(session, credential)]  # fmt: skip


def refuse_credential_delete(session: Session, credential: Credential) -> None:
    """Refuse deleting a credential an alert channel uses, naming the channels and their workspaces, with the
    commands that free it (another credential of its type, else delete the channel)."""
    users = channel_users(session, credential)
    if not users:
        return
    named = ", ".join(f"{name} (workspace {ws})" for name, ws in users)
    home = credential.workspace
    commands: list[str] = []
    for name, ws in users:
        if ws != home.name:
            continue  # a command for a sandbox's channel would act in another workspace than this one's
        from offramp.core.services.credentials import list_credentials, shared_credentials

        candidates = [*list_credentials(session, home), *shared_credentials(session, home)]
        # Another login must be for the same SMTP server (check_login_host would refuse it otherwise).
        others = sorted(c.name for c in candidates if c.type == credential.type and c.id != credential.id
                        and c.settings.get("host") == credential.settings.get("host"))  # fmt: skip
        if others:
            commands.append(offramp_command("alerts", "channels", "update", name, "--credential", others[0],
                                            workspace=ws))  # fmt: skip
        else:
            commands.append(offramp_command("alerts", "channels", "delete", name, workspace=ws))
    hint = "free it first: " + "; ".join(f"`{command}`" for command in commands) if commands else "free it first"
    if any(ws != home.name for _, ws in users):
        hint += (", and change or delete the sandboxes' channels in their sandbox (see `"
                 + offramp_command("alerts", "channels", "update", "--help") + "`)")  # fmt: skip
    noun = "alert channel" if len(users) == 1 else "alert channels"
    raise ObjectInUseError(
        f"credential {credential.name!r} is used by {noun} {named}",
        hint=hint,
        users=[f"alert channel {name} ({ws})" for name, ws in users],
    )


def delete_channel(session: Session, ctx: Context, workspace_name: str, name: str) -> None:
    """Delete a channel no alert rule names (refused naming the rules' owners); its deliveries stay as history."""
    workspace = changing_workspace(session, workspace_name)
    row = own_channel(session, workspace, name, "delete")
    users = rule_users(session, row)
    if users:
        first = users[0].split(" ")
        hint = "take it out of their alert rules first"
        if len(users) == 1 and "(sandbox" not in users[0]:
            command = ["alerts", "rules", "clear", first[1], *(["--group"] if first[0] == "group" else [])]
            hint += f" (`{offramp_command(*command, workspace=workspace.name)}`, or set other channels with "
            hint += f"`{offramp_command('alerts', 'rules', 'set', '--help')}`)"
        else:
            hint += f" (see `{offramp_command('alerts', 'rules', 'set', '--help')}`)"
        raise ObjectInUseError(f"alert channel {name!r} is used by the alert rules of {', '.join(users)}",
                               hint=hint, users=users)  # fmt: skip
    session.delete(row)
    session.flush()
    audit.record(session, ctx.actor, "delete", "alert_channel", name, workspace.name, {"type": row.type})


def drop_channels(session: Session, ctx: Context, workspace: Workspace, shown_name: str) -> None:
    """Delete every channel of a sandbox being deleted (``shown_name``: its name before it is retired), before its
    credentials, which a channel may name; audited one by one."""
    for row in list_channels(session, workspace):
        session.delete(row)
        session.flush()
        audit.record(session, ctx.actor, "delete", "alert_channel", row.name, shown_name, {"type": row.type})


# -- showing -------------------------------------------------------------------------------------------------------


def shown_url(url: str) -> str:
    """A webhook URL as `channels list|show` print it: a user name, password or query string (where a token may
    sit) masked."""
    parts = urlsplit(url)
    if not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def describe_channel(session: Session, row: AlertChannel) -> dict[str, Any]:
    """What `alerts channels show` prints: the settings, the credential's name, the Slack URL only as set / not
    set, the rules that use it. Never a secret."""
    data: dict[str, Any] = {
        "name": row.name,
        "workspace": row.workspace.name,
        "type": row.type,
        "settings": {**row.settings, **({"url": shown_url(str(row.settings["url"]))} if "url" in row.settings else {})},
        "credential": row.credential.name if row.credential is not None else None,
    }
    if row.type == "slack":
        record = row.secrets.get(SLACK_URL)
        data["secrets"] = {SLACK_URL: f"set (changed {record['changed_at']})" if record else "not set"}
    data["used_by"] = rule_users(session, row)
    data["created_at"] = row.created_at.isoformat()
    data["updated_at"] = row.updated_at.isoformat()
    return data


# -- sending -------------------------------------------------------------------------------------------------------


def open_channel(ctx: Context, row: AlertChannel, policy: DeliveryPolicy | None = None) -> Channel:
    """The channel object that delivers notices for ``row``: its secrets and its credential's read now."""
    policy = policy or DeliveryPolicy()
    settings = row.settings
    if row.type == "webhook":
        if row.credential is None:
            raise ConfigError(f"alert channel {row.name!r} has no signing credential", hint="give it --credential")
        secret = getattr(credential_settings(ctx, row.credential), "secret")  # noqa: B009 - an hmac-secret's field
        return WebhookChannel(row.name, settings["url"], secret, policy=policy)
    if row.type == "slack":
        return SlackChannel(row.name, SecretStr(slack_url(ctx, row)), policy=policy)
    username: str | None = None
    password: SecretStr | None = None
    if row.credential is not None:
        # Checked again here: the credential's host may have changed since the channel was added.
        check_login_host(row.name, settings, row.credential)
        login = credential_settings(ctx, row.credential)
        username, password = getattr(login, "username"), getattr(login, "password")  # noqa: B009
    return EmailChannel(
        row.name, settings["host"], settings["sender"], tuple(settings["recipients"]),
        port=int(settings.get("port", DEFAULT_SMTP_PORT)), starttls=bool(settings.get("starttls", True)),
        username=username, password=password, policy=policy,
    )  # fmt: skip


def record_pending(
    session: Session,
    notice: Notice,
    channel: str,
    channel_type: str,
    *,
    target_kind: str | None = None,
) -> AlertDelivery:
    """One delivery of ``notice`` to ``channel``, recorded ``pending`` before it is sent."""
    row = AlertDelivery(
        workspace=notice.workspace, channel=channel, channel_type=channel_type,
        target_kind=target_kind, target_name=notice.target if target_kind is not None else None,
        run_id=notice.run_id, kind=notice.kind, status="pending", attempts=0, notice=notice.as_json(),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def record_result(session: Session, delivery_id: int, delivery: Delivery, *, keep_pending: bool = False) -> None:
    """What became of a pending delivery: ``delivered`` or ``failed`` (``keep_pending``: not delivered, to be sent
    again), with the attempts and the error. A delivery no longer pending (another process finished it) is left."""
    row = session.get(AlertDelivery, delivery_id)
    if row is None or row.status != "pending":
        return
    row.status = "delivered" if delivery.ok else ("pending" if keep_pending else "failed")
    row.attempts = delivery.attempts
    row.error = delivery.error
    row.delivered_at = utcnow() if delivery.ok else None


def claim_pending(session: Session, delivery_id: int, attempts: int, *, max_attempts: int) -> AlertDelivery | None:
    """Claim a pending delivery to send it again: its attempts raised by one and its time set to now (when it was
    last tried), if it still has the ``attempts`` it was read with (a compare-and-set: of two processes, one claims
    it). One that had ``max_attempts`` already is marked failed instead. None when not claimed."""
    if attempts >= max_attempts:
        session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id == delivery_id, AlertDelivery.status == "pending")
            .values(status="failed", error=f"not delivered after {attempts} attempts (the last ones' processes "
                    "stopped before it was sent)")
        )  # fmt: skip
        return None
    claimed = session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.id == delivery_id, AlertDelivery.status == "pending", AlertDelivery.attempts == attempts)
        .values(attempts=attempts + 1, at=utcnow())
    )  # fmt: skip
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    return session.get(AlertDelivery, delivery_id, populate_existing=True)


def send_test(ctx: Context, workspace_name: str, name: str, policy: DeliveryPolicy | None = None) -> Delivery:
    """`alerts test CHANNEL`: send a test notice through the channel, recording the delivery."""
    from offramp.core.alerts.notices import make_test_notice
    from offramp.core.services.workspaces import get_workspace

    with ctx.store.session() as session:
        workspace = get_workspace(session, workspace_name)
        row = resolve_channel(session, workspace, name)
        channel = open_channel(ctx, row, policy)
        notice = make_test_notice(workspace.name, row.name)
        pending = record_pending(session, notice, row.name, row.type)
        pending_id = pending.id
    delivery = channel.deliver(notice)
    with ctx.store.session() as session:
        record_result(session, pending_id, delivery)
    return delivery


def list_deliveries(
    session: Session, *, workspace: str | None = None, since: datetime | None = None, limit: int = 200
) -> list[AlertDelivery]:
    """Deliveries, newest first: of one workspace (None: all), since a time (None: all)."""
    query = select(AlertDelivery).order_by(AlertDelivery.at.desc(), AlertDelivery.id.desc()).limit(limit)
    if workspace is not None:
        query = query.where(AlertDelivery.workspace == workspace)
    if since is not None:
        query = query.where(AlertDelivery.at >= since)
    return list(session.scalars(query))


def delivery_json(row: AlertDelivery) -> dict[str, Any]:
    """A delivery as `alerts history --json` prints it (no secret: the notice holds none)."""
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "workspace": row.workspace,
        "channel": row.channel,
        "channel_type": row.channel_type,
        "target_kind": row.target_kind,
        "target": row.target_name,
        "run_id": row.run_id,
        "kind": row.kind,
        "status": row.status,
        "attempts": row.attempts,
        "error": row.error,
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
    }


def hours_ago(hours: float) -> datetime:
    """The time ``hours`` before now (UTC)."""
    return utcnow() - timedelta(hours=hours)


__all__ = [
    "CHANNEL_TYPES",
    "CREDENTIAL_TYPES",
    "ChannelFields",
    "add_channel",
    "available_channels",
    "channels_of_options",
    "channel_users",
    "channel_users_said",
    "check_channels",
    "check_login_host",
    "claim_pending",
    "delete_channel",
    "delivery_json",
    "drop_channels",
    "describe_channel",
    "edit_channel",
    "hours_ago",
    "list_channels",
    "list_deliveries",
    "open_channel",
    "own_channel",
    "record_pending",
    "record_result",
    "refuse_credential_delete",
    "resolve_channel",
    "rule_users",
    "send_test",
    "shared_channels",
    "shown_url",
    "slack_url",
    "update_channel",
]
