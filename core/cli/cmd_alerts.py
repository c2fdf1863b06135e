"""`offramp alerts channels|rules|test|history`: where alert notices go, and when an orchestration or group sends
them."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from offramp.core.cli.cmd_credentials import say_changed
from offramp.core.cli.common import (
    ActorOption,
    JsonOption,
    WorkspaceOption,
    build_context,
    reading,
    transaction,
    workspace_name,
)
from offramp.core.cli.output import print_json, print_mapping, print_table, say, when
from offramp.core.errors import ConfigError, DestinationError
from offramp.core.hints import offramp_command

app = typer.Typer(
    help="Alert channels (webhook, Slack, email) and the rules that notify them.\n\n"
    "A channel is a workspace object (a sandbox also finds production's); the rules are the option `alerts` of an "
    "orchestration or a group: one notice per change of state (failure, recovery, ...).",
    no_args_is_help=True,
)
channels_app = typer.Typer(
    help="Where notices go: a signed webhook, a Slack incoming webhook, or email.\n\n"
    "A run waits at most OFFRAMP_ALERT_DEADLINE_SECONDS (default 20) for its notices; what is not delivered by then "
    "stays pending and is sent again later.",
    no_args_is_help=True,
)
rules_app = typer.Typer(help="When an orchestration or a group sends notices, and to which channels.",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(channels_app, name="channels")
app.add_typer(rules_app, name="rules")

NameArgument = Annotated[str, typer.Argument(help="Alert channel name.")]
UrlOption = Annotated[
    str | None, typer.Option("--url", help="A webhook channel's URL (https://, or http:// to loopback).")
]
UrlEnvOption = Annotated[
    str | None,
    typer.Option(
        "--url-env",
        metavar="VARIABLE",
        help="A Slack channel: the environment variable holding its incoming-webhook URL (a secret; without it, "
        "the URL is asked for without echo).",
    ),
]
CredentialOption = Annotated[
    str | None,
    typer.Option(
        "--credential",
        help="A webhook's hmac-secret credential (signs the notices), or an email channel's username-password "
        "credential (the SMTP login).",
    ),
]
HostOption = Annotated[str | None, typer.Option("--host", help="An email channel's SMTP server.")]
PortOption = Annotated[int | None, typer.Option("--port", help="The SMTP server's port (default 587).")]
StartTlsOption = Annotated[
    bool | None,
    typer.Option("--starttls/--no-starttls", help="Upgrade the SMTP connection with STARTTLS (default: on)."),
]
SenderOption = Annotated[str | None, typer.Option("--sender", help="The From address of alert emails.")]
ToOption = Annotated[
    list[str] | None, typer.Option("--to", help="A recipient of alert emails; repeat for more (replaces the list).")
]


# The flags each type of channel takes (--credential: a webhook's and an email channel's).
_TYPE_FLAGS: dict[str, tuple[str, ...]] = {
    "webhook": ("--url", "--credential"),
    "slack": ("--url", "--url-env"),
    "email": ("--host", "--port", "--starttls", "--sender", "--to", "--credential", "--no-credential"),
}


def _refuse_other_flags(name: str, kind: str, given: Mapping[str, object]) -> None:
    """Refuse a flag that is not of a ``kind`` channel (``--type email --url ...``): it would be ignored silently."""
    takes = _TYPE_FLAGS.get(kind)
    if takes is None:
        return  # not a type: the service says so
    for flag, value in given.items():
        if value is not None and value is not False and flag not in takes:
            raise ConfigError(
                f"alert channel {name!r}: {flag} is not a setting of {kind} channels (they take {', '.join(takes)})",
                hint=f"leave out {flag}",
            )


def _slack_url(name: str, url: str | None, url_env: str | None, required: bool) -> tuple[str | None, str | None]:
    """A Slack channel's URL and the variable it was read from: from --url-env, else asked without echo."""
    if url is not None:
        raise ConfigError(
            f"alert channel {name!r}: a Slack webhook URL is a secret, and --url would leave it in the shell's "
            "history and the process list",
            hint="export it in a variable and give --url-env VARIABLE, or leave both out to type it when asked",
        )
    if url_env is not None:
        value = os.environ.get(url_env)
        if not value:
            raise ConfigError(
                f"--url-env {url_env}: the variable is not set", hint=f"export {url_env} with the Slack webhook URL"
            )
        return value, url_env
    if not required:
        return None, None
    if not sys.stdin.isatty():
        raise ConfigError(
            f"alert channel {name!r}: a Slack channel needs its incoming-webhook URL",
            hint="give it with --url-env VARIABLE (the variable holding the URL)",
        )
    return typer.prompt("Slack incoming-webhook URL (input hidden)", hide_input=True), None


@channels_app.command("add")
def channels_add(
    name: NameArgument,
    type_name: Annotated[str, typer.Option("--type", "-t", help="webhook, slack or email.")],
    url: UrlOption = None,
    url_env: UrlEnvOption = None,
    credential: CredentialOption = None,
    host: HostOption = None,
    port: PortOption = None,
    starttls: StartTlsOption = None,
    sender: SenderOption = None,
    to: ToOption = None,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Add an alert channel: --type webhook --url URL --credential HMAC, --type slack [--url-env VARIABLE], or
    --type email --host HOST --sender FROM --to ADDRESS [--credential LOGIN].

    An email channel's login (a username-password credential) is for one SMTP server, its host: --host must be it.
    The end of a run waits at most OFFRAMP_ALERT_DEADLINE_SECONDS (20 by default) for its channels, sent to at once;
    a notice not delivered by then stays pending and is sent again later (the scheduler, the next run).
    """
    from offramp.core.services import alert_channels as service

    flags = {"--url": url, "--url-env": url_env, "--credential": credential, "--host": host, "--port": port,
             "--starttls": starttls, "--sender": sender, "--to": to}  # fmt: skip
    if type_name != "slack":  # a Slack URL given with --url is refused below, with why
        _refuse_other_flags(name, type_name, flags)
    ctx = build_context(actor)
    fields = service.ChannelFields(
        url=url, host=host, port=port, starttls=starttls, sender=sender,
        recipients=tuple(to) if to else None, credential=credential,
    )  # fmt: skip
    if type_name == "slack":
        _refuse_other_flags(name, type_name, {**flags, "--url": None})
        value, source = _slack_url(name, url, url_env, required=True)
        fields = service.ChannelFields(url=value, url_source=source, credential=credential)
    elif url_env is not None:
        fields = service.ChannelFields(**{**fields.__dict__, "url_source": url_env})
    with transaction(ctx) as session:
        row = service.add_channel(session, ctx, workspace_name(ctx, workspace), name, type_name, fields)
        say(f"Added alert channel {row.name} ({row.type}) to workspace {row.workspace.name}.")


@channels_app.command("update")
def channels_update(
    name: NameArgument,
    url: UrlOption = None,
    url_env: UrlEnvOption = None,
    credential: CredentialOption = None,
    no_credential: Annotated[
        bool, typer.Option("--no-credential", help="An email channel: send without logging in.")
    ] = False,
    host: HostOption = None,
    port: PortOption = None,
    starttls: StartTlsOption = None,
    sender: SenderOption = None,
    to: ToOption = None,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Change an alert channel: what is given changes, everything else is kept (a Slack URL with --url-env)."""
    from offramp.core.services import alert_channels as service
    from offramp.core.services.workspaces import get_workspace

    ctx = build_context(actor)
    ws = workspace_name(ctx, workspace)
    with reading(ctx) as session:
        kind = service.own_channel(session, get_workspace(session, ws), name, "update").type
    flags = {"--url": url, "--url-env": url_env, "--credential": credential, "--no-credential": no_credential,
             "--host": host, "--port": port, "--starttls": starttls, "--sender": sender, "--to": to}  # fmt: skip
    _refuse_other_flags(name, kind, {**flags, "--url": None} if kind == "slack" else flags)
    fields = service.ChannelFields(
        url=url, host=host, port=port, starttls=starttls, sender=sender, recipients=tuple(to) if to else None,
        credential=credential, no_credential=no_credential,
    )  # fmt: skip
    if kind == "slack":
        value, source = _slack_url(name, url, url_env, required=False)
        fields = service.ChannelFields(**{**fields.__dict__, "url": value, "url_source": source})
    elif url_env is not None:
        raise ConfigError(f"alert channel {name!r}: --url-env is for a Slack channel's URL", hint="give --url")
    with transaction(ctx) as session:
        changed = service.edit_channel(session, ctx, ws, name, fields)
    say_changed("alert channel", name, changed)


def _summary(row: Any) -> str:
    settings = row.settings
    if row.type == "webhook":
        from offramp.core.services.alert_channels import shown_url

        return shown_url(str(settings.get("url", "")))
    if row.type == "slack":
        return "incoming webhook (URL kept secret)"
    return f"{settings.get('host')}:{settings.get('port')} -> {', '.join(settings.get('recipients', []))}"


@channels_app.command("list")
def channels_list(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """List alert channels; in a sandbox, its own and production's, which it shares (marked shared)."""
    from offramp.core.services import alert_channels as service
    from offramp.core.services.workspaces import get_workspace

    ctx = build_context()
    with reading(ctx) as session:
        seen_from = get_workspace(session, workspace_name(ctx, workspace))
        rows = [*service.list_channels(session, seen_from), *service.shared_channels(session, seen_from)]
        data: list[dict[str, Any]] = [
            {
                "name": row.name,
                "type": row.type,
                "target": _summary(row),
                "credential": row.credential.name if row.credential is not None else None,
                "used_by": service.rule_users(session, row),
                "updated_at": row.updated_at,
                **({"shared_from": row.workspace.name} if row.workspace_id != seen_from.id else {}),
            }
            for row in sorted(rows, key=lambda r: r.name)
        ]
    if json_output:
        print_json(data)
        return
    print_table(
        "Alert channels",
        ["name", "type", "sends to", "credential", "used by", "updated"],
        [
            [
                d["name"] + (f" (shared from {d['shared_from']})" if "shared_from" in d else ""),
                d["type"],
                d["target"],
                d["credential"] or "",
                ", ".join(d["used_by"]),
                when(d["updated_at"]),
            ]  # fmt: skip
            for d in data
        ],
    )


@channels_app.command("show")
def channels_show(name: NameArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Show an alert channel: its settings and credential; a Slack URL only as set / not set."""
    from offramp.core.services import alert_channels as service
    from offramp.core.services.workspaces import get_workspace

    ctx = build_context()
    with reading(ctx) as session:
        row = service.resolve_channel(session, get_workspace(session, workspace_name(ctx, workspace)), name)
        data = service.describe_channel(session, row)
    if json_output:
        print_json(data)
    else:
        print_mapping(f"alert channel {name}", {k: v for k, v in data.items() if k != "name"})


@channels_app.command("delete")
def channels_delete(name: NameArgument, workspace: WorkspaceOption = None, actor: ActorOption = None) -> None:
    """Delete an alert channel; refused while an alert rule names it. Its delivery history stays."""
    from offramp.core.services import alert_channels as service

    ctx = build_context(actor)
    with transaction(ctx) as session:
        service.delete_channel(session, ctx, workspace_name(ctx, workspace), name)
    say(f"Deleted alert channel {name}.")


# -- rules ---------------------------------------------------------------------------------------------------------

TargetArgument = Annotated[str, typer.Argument(metavar="TARGET", help="The orchestration (or, with --group, group).")]
GroupFlag = Annotated[bool, typer.Option("--group", help="TARGET is an orchestration group.")]
# The threshold rules that --unset may switch off.
THRESHOLDS = ("reject_rate_above", "runtime_above", "row_count_drop_above")


@rules_app.command("set")
def rules_set(
    target: TargetArgument,
    group: GroupFlag = False,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", "-c", help="A channel that gets the notices; repeat for more (replaces the list)."),
    ] = None,
    on_failure: Annotated[bool | None, typer.Option("--on-failure/--no-on-failure", help="A run fails.")] = None,
    on_partial_failure: Annotated[
        bool | None,
        typer.Option("--on-partial-failure/--no-on-partial-failure", help="A run ends with some events failed."),
    ] = None,
    on_recovery: Annotated[
        bool | None,
        typer.Option("--on-recovery/--no-on-recovery", help="The first succeeded run after a failure notice."),
    ] = None,
    reject_rate_above: Annotated[
        float | None, typer.Option("--reject-rate-above", help="Rejected rows over rows read above this (0.05).")
    ] = None,
    runtime_above: Annotated[
        float | None, typer.Option("--runtime-above", metavar="SECONDS", help="A run takes longer than this.")
    ] = None,
    row_count_drop_above: Annotated[
        float | None,
        typer.Option(
            "--row-count-drop-above", metavar="PERCENT", help="Rows read drop more than this % from the last success."
        ),
    ] = None,
    on_needs_reauthorization: Annotated[
        bool | None,
        typer.Option(
            "--on-needs-reauthorization/--no-on-needs-reauthorization", help="A credential needs re-authorizing."
        ),
    ] = None,
    unset: Annotated[
        list[str] | None,
        typer.Option("--unset", metavar="RULE", help=f"Switch a threshold rule off: {', '.join(THRESHOLDS)}."),
    ] = None,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Set the alert rules of an orchestration (or a group): what is given changes, the rest is kept.

    The first time, --channel is needed; the defaults alert on failure, on recovery and on a credential needing
    re-authorizing.
    """
    from offramp.core.services import alert_rules

    unknown = sorted(set(unset or []) - set(THRESHOLDS))
    if unknown:
        raise ConfigError(f"--unset {', '.join(unknown)}: not a threshold rule", hint=f"give {', '.join(THRESHOLDS)}")
    changes: dict[str, Any] = {
        key: value
        for key, value in (
            ("channels", list(channel) if channel else None), ("on_failure", on_failure),
            ("on_partial_failure", on_partial_failure), ("on_recovery", on_recovery),
            ("reject_rate_above", reject_rate_above), ("runtime_above", runtime_above),
            ("row_count_drop_above", row_count_drop_above), ("on_needs_reauthorization", on_needs_reauthorization),
        )
        if value is not None
    }  # fmt: skip
    ctx = build_context(actor)
    ws = workspace_name(ctx, workspace)
    with transaction(ctx) as session:
        changed = alert_rules.set_rules(session, ctx, ws, target, changes, unset or [], group=group)
    kind = "group" if group else "orchestration"
    say(f"Alert rules of {kind} {target}: {', '.join(changed)} changed." if changed else
        f"Alert rules of {kind} {target}: nothing to change.")  # fmt: skip


@rules_app.command("show")
def rules_show(
    target: TargetArgument, group: GroupFlag = False, workspace: WorkspaceOption = None, json_output: JsonOption = False
) -> None:
    """Show the alert rules of an orchestration (or a group), every default included, and where they stand."""
    from offramp.core.services import alert_rules

    ctx = build_context()
    with reading(ctx) as session:
        data = alert_rules.describe_rules(session, workspace_name(ctx, workspace), target, group=group)
    if json_output:
        print_json(data)
        return
    if data["rules"] is None:
        kind = "group" if group else "orchestration"
        say(f"{kind.capitalize()} {target} has no alert rules.")
        return
    print_mapping(f"alert rules of {data['target_kind']} {target}", {k: v for k, v in data.items() if k != "target"})


@rules_app.command("clear")
def rules_clear(
    target: TargetArgument, group: GroupFlag = False, workspace: WorkspaceOption = None, actor: ActorOption = None
) -> None:
    """Remove the alert rules of an orchestration (or a group): its runs send no notices any more."""
    from offramp.core.services import alert_rules

    ctx = build_context(actor)
    with transaction(ctx) as session:
        cleared = alert_rules.clear_rules(session, ctx, workspace_name(ctx, workspace), target, group=group)
    kind = "group" if group else "orchestration"
    say(
        f"Cleared the alert rules of {kind} {target}."
        if cleared
        else f"{kind.capitalize()} {target} had no alert rules."
    )


# -- test and history ----------------------------------------------------------------------------------------------


class _NotTheFinalError(logging.Filter):
    """Drops the channel's last warning (that it gave up): `alerts test` ends with the same words as its error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "could not deliver the notice" not in record.getMessage()


@app.command("test")
def test(
    channel: Annotated[str, typer.Argument(metavar="CHANNEL", help="Alert channel name.")],
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Send a test notice through a channel (recorded like any delivery); exit 1 with the error when it fails."""
    from offramp.core.services import alert_channels as service

    ctx = build_context()
    # The channel logs its retries as they happen, and its final error, which this command says as its error.
    said_once = _NotTheFinalError()
    channel_log = logging.getLogger("offramp.core.alerts")
    channel_log.addFilter(said_once)
    try:
        delivery = service.send_test(ctx, workspace_name(ctx, workspace), channel)
    finally:
        channel_log.removeFilter(said_once)
    if not delivery.ok and json_output:
        error = delivery.error or f"alert channel {channel!r} could not deliver the test notice"
        print_json({"channel": channel, "ok": False, "attempts": delivery.attempts, "error": error})
        raise typer.Exit(1)
    if not delivery.ok:
        raise DestinationError(
            delivery.error or f"alert channel {channel!r} could not deliver the test notice",
            hint="fix the channel (see `"
            + offramp_command("alerts", "channels", "update", "--help")
            + "`), then test it again",
        )
    if json_output:
        print_json({"channel": channel, "ok": True, "attempts": delivery.attempts})
        return
    tries = "" if delivery.attempts == 1 else f" (after {delivery.attempts} attempts)"
    say(f"Alert channel {channel} delivered the test notice{tries}.")


@app.command("history")
def history(
    since: Annotated[
        float, typer.Option("--since", metavar="HOURS", help="Deliveries of the last HOURS hours.")
    ] = 24.0,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """List alert deliveries, newest first: which notice went to which channel, and whether it arrived."""
    from offramp.core.services import alert_channels as service

    ctx = build_context()
    with reading(ctx) as session:
        rows = service.list_deliveries(
            session, workspace=workspace_name(ctx, workspace), since=service.hours_ago(since)
        )
        data = [service.delivery_json(row) for row in rows]
    if json_output:
        print_json(data)
        return
    print_table(
        f"Alert deliveries of the last {since:g} h",
        ["at", "channel", "target", "run", "notice", "status", "attempts", "error"],
        [
            [
                d["at"][:19],
                d["channel"],
                d["target"] or "",
                d["run_id"] or "",
                d["kind"],
                d["status"],
                d["attempts"],
                d["error"] or "",
            ]
            for d in data
        ],  # fmt: skip
    )
